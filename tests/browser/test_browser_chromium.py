"""Chromium (Debian's, through Playwright) against the real page server and a sandbox."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import pytest
from browsers import FAKE_MEDIA, chromium
from clirun import assert_valid_report, cli_env
from conftest import PulseSetup
from pagerun import checks_by_id, run_case, run_until, sandbox_args

# pytest-timeout: a page round may take its CLI's 200 s on a loaded machine, and the
# measured-AEC tests up to five rounds
pytestmark = [pytest.mark.real_parts, pytest.mark.timeout(1200)]

DENY = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream=deny"]
MIC = ["microphone"]
NO_CHROME_WIDE_AEC = ["--disable-features=ChromeWideEchoCancellation"]


def _browser_checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in checks_by_id(report).items() if k.startswith("browser-")}


def test_chromium_clean_setup_passes_every_check(
    room_pulse: PulseSetup, plain_sandbox: Callable[..., Any]
) -> None:
    """In 1 of about 8 runs here (CI at 7dc5f07; 4 local runs passed) Chromium's capture
    delivered only zeros from the room's microphone while the noise played, and the doctor
    rightly said `silent_input` for that run. Not investigated yet (see the closing note of
    session 26): that one cause, and only it, gets up to three runs."""
    sb = plain_sandbox()
    env = {**room_pulse.env, "ASSEMBLYAI_API_KEY": sb.api_key}
    launch = functools.partial(chromium, env=room_pulse.env, permissions=MIC, audible=True)

    def heard(report: dict[str, Any]) -> bool:
        return bool(_browser_checks(report)["browser-microphone"]["cause"] != "silent_input")

    (report, answer, stderr, rc), seen = run_until(launch, sandbox_args(sb), env, heard, attempts=3)
    assert_valid_report(report)
    checks = _browser_checks(report)
    bad = {
        k: (c["status"], c["cause"], c["summary"])
        for k, c in checks.items()
        if c["status"] != "pass"
    }
    assert not bad, (bad, len(seen))
    assert rc == 0
    assert len(checks) == 10 and checks_by_id(report)["wss"]["status"] == "pass"
    assert report["environment"]["browser"]["engine"] == "Blink"
    assert checks["browser-sample-rate"]["evidence"]["context_rate_hz"] == 24000
    assert [r["verdict"] for r in checks["browser-echo"]["evidence"]["runs"]] == ["no_echo"] * 2
    # the page showed the CLI's verdicts, and the browser's session is in the support block
    assert {c["id"] for c in answer["checks"]} == set(checks)
    sid = checks["browser-wss"]["evidence"]["session_id"]
    assert sid and sid in report["support"]["session_ids"]
    assert sb.api_key not in json.dumps(report) + json.dumps(answer) + stderr


def test_chromium_permission_denied(plain_sandbox: Callable[..., Any]) -> None:
    sb = plain_sandbox()
    env = cli_env({"ASSEMBLYAI_API_KEY": sb.api_key})
    report, _, _, rc = run_case(functools.partial(chromium, args=DENY), sandbox_args(sb), env)
    checks = _browser_checks(report)
    assert rc == 1
    perm = checks["browser-permission"]
    assert (perm["status"], perm["cause"]) == ("fail", "permission_denied")
    assert perm["evidence"]["error"]["name"] == "NotAllowedError"
    assert perm["evidence"]["state_after"] == "denied"
    for cid in ("browser-microphone", "browser-echo", "browser-sample-rate"):
        assert checks[cid]["status"] == "skip"
        assert checks[cid]["evidence"]["root_cause"] == "permission_denied"
    assert checks["browser-wss"]["status"] == "pass"  # the network side does not need the mic


def test_chromium_no_input_device(tmp_path: Any, plain_sandbox: Callable[..., Any]) -> None:
    sb = plain_sandbox()
    no_sound = cli_env({"PULSE_SERVER": f"unix:{tmp_path}/no-such-socket"})
    env = {**no_sound, "ASSEMBLYAI_API_KEY": sb.api_key}
    launch = functools.partial(chromium, env=no_sound, permissions=MIC)
    report, _, _, rc = run_case(launch, sandbox_args(sb), env)
    mic = _browser_checks(report)["browser-microphone"]
    assert (rc, mic["status"], mic["cause"]) == (1, "fail", "no_input_device")
    assert mic["evidence"]["error"]["name"] == "NotFoundError"


def test_chromium_insecure_origin(plain_sandbox: Callable[..., Any]) -> None:
    sb = plain_sandbox()
    env = cli_env({"ASSEMBLYAI_API_KEY": sb.api_key})
    launch = functools.partial(
        chromium, args=[*FAKE_MEDIA, "--host-resolver-rules=MAP probe.example 127.0.0.1"]
    )
    report, _, _, rc = run_case(
        launch, sandbox_args(sb), env, url=lambda u: u.replace("127.0.0.1", "probe.example")
    )
    checks = _browser_checks(report)
    env_check = checks["browser-env"]
    assert (rc, env_check["status"], env_check["cause"]) == (1, "fail", "insecure_context")
    assert env_check["evidence"]["api_present"]["mediaDevices"] is False
    assert env_check["evidence"]["origin"].startswith("http://probe.example:")
    assert checks["browser-permission"]["evidence"]["root_cause"] == "insecure_context"


def _wss_case(sb: Any, *cli_args: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The WebSocket cases deny the microphone: they do not need it, and it is faster."""
    env = cli_env({"ASSEMBLYAI_API_KEY": sb.api_key})
    report, _, stderr, _ = run_case(
        functools.partial(chromium, args=DENY), [*sandbox_args(sb), *cli_args], env
    )
    assert_valid_report(report)
    assert "bad-token-value-123" not in json.dumps(report) + stderr
    return checks_by_id(report)["browser-wss"], report


def test_chromium_bad_token_refused_at_the_upgrade_is_explained_by_the_cli(
    plain_sandbox: Callable[..., Any],
) -> None:
    wss, _ = _wss_case(plain_sandbox("--auth-failure", "http"), "--token", "bad-token-value-123")
    assert (wss["status"], wss["cause"]) == ("fail", "unauthorized")
    assert wss["evidence"]["close_code"] == 1006  # all the page could see
    assert wss["evidence"]["cli_handshake"]["http_status"] == 401  # what the CLI saw


def test_chromium_bad_token_refused_after_the_upgrade(
    plain_sandbox: Callable[..., Any],
) -> None:
    wss, report = _wss_case(plain_sandbox(), "--token", "bad-token-value-123")
    assert (wss["status"], wss["cause"]) == ("fail", "unauthorized")
    assert (wss["evidence"]["close_code"], wss["evidence"]["error_code"]) == (1008, "unauthorized")
    assert "cli_handshake" not in wss["evidence"]
    assert any(c["code"] == 1008 for c in report["support"]["closes"])


def test_chromium_server_refusing_the_upgrade(plain_sandbox: Callable[..., Any]) -> None:
    wss, _ = _wss_case(plain_sandbox("--fault", "handshake-forbidden"))
    assert (wss["status"], wss["cause"]) == ("fail", "forbidden")
    assert wss["evidence"]["cli_handshake"]["http_status"] == 403


def test_chromium_forbidden_after_the_upgrade_gets_the_token_cores_account_fix(
    plain_sandbox: Callable[..., Any],
) -> None:
    wss, _ = _wss_case(plain_sandbox("--fault", "forbidden-after-upgrade"))
    assert (wss["status"], wss["cause"]) == ("fail", "forbidden")
    assert wss["fix"]["guide"] == "account_access"
    assert (wss["evidence"]["close_code"], wss["evidence"]["error_code"]) == (1008, "FORBIDDEN")


def test_chromium_wrong_api_key_fails_the_websocket_with_the_token_fix(
    plain_sandbox: Callable[..., Any],
) -> None:
    sb = plain_sandbox()
    env = cli_env({"ASSEMBLYAI_API_KEY": "sk-wrong-key-abcdef123456"})
    report, _, stderr, rc = run_case(functools.partial(chromium, args=DENY), sandbox_args(sb), env)
    wss = checks_by_id(report)["browser-wss"]
    assert (rc, wss["status"], wss["cause"]) == (1, "fail", "unauthorized")
    assert wss["fix"]["guide"] == "token_auth"
    assert "sk-wrong-key-abcdef123456" not in json.dumps(report) + stderr


def test_chromium_refused_port_is_named_by_the_cli(plain_sandbox: Callable[..., Any]) -> None:
    import socket

    sb = plain_sandbox()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    wss, _ = _wss_case(sb, "--ws-url", f"ws://127.0.0.1:{port}/v1/ws")
    assert (wss["status"], wss["cause"]) == ("fail", "connection_refused")


def test_chromium_echo_loop_detected_when_the_aec_ignores_page_playback(
    loop_pulse: PulseSetup, plain_sandbox: Callable[..., Any]
) -> None:
    sb = plain_sandbox()
    env = {**loop_pulse.env, "ASSEMBLYAI_API_KEY": sb.api_key}
    launch = functools.partial(
        chromium, args=NO_CHROME_WIDE_AEC, env=loop_pulse.env, permissions=MIC, audible=True
    )
    report, _, _, rc = run_case(launch, sandbox_args(sb), env)
    checks = _browser_checks(report)
    echo = checks["browser-echo"]
    assert (rc, echo["status"], echo["cause"]) == (1, "fail", "echo_detected")
    assert [r["verdict"] for r in echo["evidence"]["runs"]] == ["echo", "echo"]
    assert all(r["erl_db"] > -10 for r in echo["evidence"]["runs"])  # a loss-free loop
    assert echo["fix"]["guide"] == "echo_loop"
    assert checks["browser-latency"]["evidence"]["round_trip_ms"] > 0


def test_chromium_echo_loop_removed_by_its_echo_canceller(
    loop_pulse: PulseSetup, plain_sandbox: Callable[..., Any]
) -> None:
    """Chromium 156's canceller, measured on this 2-core machine at loads 0.5-2: on this
    loss-free loop, in 4 of 16 runs it did not converge in one of the two contexts (ERL -28
    to +4 dB over both sweeps, after its 2.5 s or 1 s warm-up); a 60 ms delayed loop (1 of
    10) and a delayed -12 dB one (2 of 10) did no better. The doctor rightly reported those
    runs as echo, and CI failed on this test twice when it had two attempts. Its subject is
    the run that converged, so it gets up to five (all five missing: about 0.1 % at 0.25)."""
    sb = plain_sandbox()
    env = {**loop_pulse.env, "ASSEMBLYAI_API_KEY": sb.api_key}
    launch = functools.partial(chromium, env=loop_pulse.env, permissions=MIC, audible=True)

    def cancelled(report: dict[str, Any]) -> bool:
        return bool(_browser_checks(report)["browser-echo"]["status"] == "pass")

    (report, _, _, _), seen = run_until(launch, sandbox_args(sb), env, cancelled, attempts=5)
    echo = _browser_checks(report)["browser-echo"]
    assert echo["status"] == "pass", (echo["summary"], seen)
    assert [r["verdict"] for r in echo["evidence"]["runs"]] == ["no_echo", "no_echo"]
    # nothing else plays into this loop, so the microphone hears digital silence
    assert _browser_checks(report)["browser-microphone"]["cause"] == "silent_input"


# --- behaviour no local engine shows, injected into the page (tests of our logic) ---------

SAFARI_EMULATION = """(() => {
  const Native = window.AudioContext;
  window.AudioContext = class extends Native {  // old Safari: the sampleRate option ignored
    constructor(options) { const { sampleRate, ...rest } = options || {}; super(rest); }
  };
  const keep = ['deviceId', 'groupId', 'echoCancellation', 'sampleRate', 'volume'];
  const get = MediaStreamTrack.prototype.getSettings;  // WebKit's getSettings() key set
  MediaStreamTrack.prototype.getSettings = function () {
    return Object.fromEntries(Object.entries(get.call(this)).filter(([k]) => keep.includes(k)));
  };
})();"""

FIREFOX_THROW_EMULATION = """(() => {
  const create = AudioContext.prototype.createMediaStreamSource;
  AudioContext.prototype.createMediaStreamSource = function (stream) {
    if (this.sampleRate === 24000) {
      throw new DOMException('Connecting AudioNodes from AudioContexts with different '
        + 'sample-rate is currently not supported.', 'NotSupportedError');
    }
    return create.call(this, stream);
  };
})();"""

WRONG_CLOCK_EMULATION = """(() => {
  const Native = window.AudioContext;
  window.AudioContext = class extends Native {  // declares 24000, runs at the device rate
    constructor(options) { super({}); this.declared = options && options.sampleRate; }
    get sampleRate() { return this.declared || super.sampleRate; }
  };
})();"""


SLOW_RESUME_EMULATION = """(() => {  // a cold audio server: resume() settles after 2.5 s
  const resume = AudioContext.prototype.resume;
  AudioContext.prototype.resume = function () {
    return new Promise((r) => setTimeout(r, 2500)).then(() => resume.call(this));
  };
})();"""

BLOCKED_RESUME_EMULATION = """(() => {  // autoplay blocked: resume() never settles
  AudioContext.prototype.resume = function () { return new Promise(() => {}); };
  const Native = window.AudioContext;
  window.AudioContext = class extends Native {
    constructor(options) { super(options); this.suspend(); }
  };
})();"""


def _emulated(script: str, sandbox: Any) -> dict[str, dict[str, Any]]:
    env = cli_env({"ASSEMBLYAI_API_KEY": sandbox.api_key})
    launch = functools.partial(chromium, args=FAKE_MEDIA, init_script=script)
    report, _, _, _ = run_case(launch, sandbox_args(sandbox), env)
    assert_valid_report(report)
    return _browser_checks(report)


def test_emulated_safari_ignoring_the_rate_and_reporting_fewer_settings(
    plain_sandbox: Callable[..., Any],
) -> None:
    checks = _emulated(SAFARI_EMULATION, plain_sandbox())
    rate = checks["browser-sample-rate"]
    assert (rate["status"], rate["cause"]) == ("warn", "context_rate_ignored")
    assert rate["evidence"]["context_rate_hz"] != 24000
    proc = checks["browser-processing"]
    assert proc["status"] == "pass"  # absent keys are unknown, never off
    assert {"autoGainControl", "noiseSuppression"} <= set(proc["evidence"]["unreported"])


def test_emulated_firefox_refusing_a_mic_in_a_24khz_context(
    plain_sandbox: Callable[..., Any],
) -> None:
    checks = _emulated(FIREFOX_THROW_EMULATION, plain_sandbox())
    rate = checks["browser-sample-rate"]
    assert (rate["status"], rate["cause"]) == ("fail", "mic_source_rate_mismatch")
    assert rate["fix"]["guide"] == "browser_mixed_rates"
    assert checks["browser-microphone"]["status"] == "pass"  # measured at the default rate
    assert [r["label"] for r in checks["browser-echo"]["evidence"]["runs"]] == ["default_rate"]


def test_emulated_context_declaring_a_rate_its_clock_does_not_run_at(
    plain_sandbox: Callable[..., Any],
) -> None:
    checks = _emulated(WRONG_CLOCK_EMULATION, plain_sandbox())
    rate = checks["browser-sample-rate"]
    assert (rate["status"], rate["cause"]) == ("fail", "clock_mismatch")
    assert rate["evidence"]["delivered_output_hz"] > 30000


def test_chromium_download_report_when_the_cli_is_gone(plain_sandbox: Callable[..., Any]) -> None:
    from pagerun import start_cli

    sb = plain_sandbox()
    # the browser first: its start, slow on a loaded machine, must not eat the CLI's 8 s
    with chromium(args=DENY) as driver:
        cli = start_cli([*sandbox_args(sb), "--timeout", "8"], cli_env())
        try:
            driver.goto(cli.url)
            driver.wait_for("window.__doctorReady === true", 20)
        except BaseException:
            cli.proc.kill()
            cli.proc.communicate()
            raise
        report, _, _ = cli.finish(30)  # the CLI gives up while the page is open
        assert checks_by_id(report)["browser-page"]["evidence"]["last_step"] is None
        driver.click("#start")
        done = driver.wait_for("window.__doctorDone", 60)
        assert "error" in done
        assert driver.evaluate("document.getElementById('download').hidden") is False
        assert "Download report" in driver.evaluate("document.getElementById('status').textContent")


def test_emulated_slow_resume_is_waited_for_not_called_blocked(
    plain_sandbox: Callable[..., Any],
) -> None:
    """Firefox ESR on a fresh PulseAudio took over 1.5 s to resume in CI: slow is not blocked."""
    checks = _emulated(SLOW_RESUME_EMULATION, plain_sandbox())
    autoplay = checks["browser-autoplay"]
    assert autoplay["status"] == "pass", autoplay["summary"]
    assert autoplay["evidence"]["contexts"][0]["resume_ms"] >= 2500


def test_emulated_resume_that_never_settles_fails_autoplay(
    plain_sandbox: Callable[..., Any],
) -> None:
    checks = _emulated(BLOCKED_RESUME_EMULATION, plain_sandbox())
    autoplay = checks["browser-autoplay"]
    assert (autoplay["status"], autoplay["cause"]) == ("fail", "audio_context_suspended")
    assert "waited 8000 ms" in autoplay["summary"]
