"""The pure core: the page's facts as browser-* results (no browser, no I/O)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from doctor.browser.echo import EchoRun, echo_verdict
from doctor.browser.verdicts import (
    browser_info,
    env_result,
    judge,
    microphone_result,
    page_timeout_result,
    permission_result,
    processing_result,
    sample_rate_result,
    wss_result,
)
from doctor.result import Status, passed, problem

CLEAN: dict[str, Any] = {
    "ua": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36",
    "platform": "Linux",
    "env": {
        "secure_context": True,
        "origin": "http://127.0.0.1:5000",
        "api_present": {
            k: True
            for k in (
                "mediaDevices",
                "getUserMedia",
                "AudioContext",
                "audioWorklet",
                "AudioWorkletNode",
                "permissions",
                "WebSocket",
            )
        },
    },
    "permission": {"query_supported": True, "state_before": "prompt", "state_after": "granted"},
    "devices": {"inputs": 2, "outputs": 2},
    "gum": {"ok": True, "ms": 40, "label": "Mic"},
    "processing": {
        "requested": {"echoCancellation": True, "noiseSuppression": False, "autoGainControl": True},
        "settings": {
            "echoCancellation": True,
            "noiseSuppression": False,
            "autoGainControl": True,
            "channelCount": 1,
            "sampleRate": 48000,
        },
    },
    "contexts": [
        {
            "label": "api_rate",
            "requested_rate_hz": 24000,
            "context_rate_hz": 24000,
            "state_initial": "suspended",
            "state_after": "running",
            "resume_ms": 3,
        },
        {
            "label": "default_rate",
            "requested_rate_hz": None,
            "context_rate_hz": 48000,
            "state_initial": "running",
            "state_after": "running",
            "resume_ms": 0,
        },
    ],
    "measure": {
        "label": "api_rate",
        "context_rate_hz": 24000,
        "worklet_rate_hz": 24000,
        "delivered_input_hz": 24010,
        "delivered_output_hz": 23990,
        "level_rms_dbfs": -35.0,
        "level_peak_dbfs": -20.0,
        "zero_fraction": 0.0,
        "clip_runs": 0,
        "track_muted": False,
        "output_latency_ms": 30,
        "base_latency_ms": 10,
    },
    "session": {"has_token": True},
    "wss": {
        "ended_by": "close",
        "events": [
            {"t_ms": 10, "type": "open"},
            {
                "t_ms": 30,
                "type": "message",
                "message_type": "session.ready",
                "session_id": "sess_1",
            },
            {"t_ms": 40, "type": "message", "message_type": "session.ended"},
            {"t_ms": 41, "type": "close", "code": 1000, "reason": "", "was_clean": True},
        ],
    },
}


def facts(**changes: Any) -> dict[str, Any]:
    """CLEAN with dotted-path changes, e.g. facts(**{"env.secure_context": False})."""
    out = copy.deepcopy(CLEAN)
    for path, value in changes.items():
        node = out
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        node[last] = value
    return out


NO_ECHO = passed("no echo")


def test_clean_facts_pass_every_check_and_name_the_browser() -> None:
    results, info = judge(CLEAN, NO_ECHO, None, None)
    assert [r.status for r in results] == [Status.PASS] * len(results)
    assert [r.id for r in results][:3] == [
        "browser-env",
        "browser-permission",
        "browser-microphone",
    ]
    assert all(r.id.startswith("browser-") and r.title for r in results)
    assert (info.engine, info.name, info.version) == ("Blink", "Chrome", "156.0.0.0")


@pytest.mark.parametrize(
    ("ua", "engine", "name"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0",
            "Gecko",
            "Firefox",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/18.4 Safari/605.1.15",
            "WebKit",
            "Safari",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/60.5 Safari/605.1.15",
            "WebKit",
            "WebKitGTK",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/140.0.0.0 Safari/537.36 Edg/140.0.0.0",
            "Blink",
            "Edge",
        ),
        ("curl/8", "unknown", "unknown"),
    ],
)
def test_engine_from_user_agent(ua: str, engine: str, name: str) -> None:
    info = browser_info({"ua": ua})
    assert (info.engine, info.name) == (engine, name)


def test_insecure_context_fails_and_everything_needing_the_mic_skips_with_that_cause() -> None:
    f = facts(
        **{
            "env.secure_context": False,
            "env.api_present.mediaDevices": False,
            "env.api_present.getUserMedia": False,
            "gum": {},
        }
    )
    results, _ = judge(f, NO_ECHO, None, None)
    by = {r.id: r for r in results}
    assert by["browser-env"].cause == "insecure_context"
    assert by["browser-env"].fix is not None and "HTTPS" in " ".join(by["browser-env"].fix.steps)
    for cid in ("browser-permission", "browser-microphone", "browser-echo"):
        assert by[cid].status is Status.SKIP
        assert by[cid].evidence["root_cause"] == "insecure_context"


def test_missing_worklet_in_a_secure_context() -> None:
    r = env_result(facts(**{"env.api_present.audioWorklet": False}))
    assert (r.status, r.cause) == (Status.FAIL, "no_audio_worklet")


@pytest.mark.parametrize(
    ("message", "status", "cause"),
    [
        ("Permission denied", Status.FAIL, "permission_denied"),
        ("Permission denied by system", Status.FAIL, "permission_blocked_by_os"),
        ("Permission dismissed", Status.WARN, "permission_dismissed"),
    ],
)
def test_not_allowed_is_told_apart_by_message(message: str, status: Status, cause: str) -> None:
    f = facts(gum={"ok": False, "error": {"name": "NotAllowedError", "message": message}})
    r = permission_result(f)
    assert (r.status, r.cause) == (status, cause)
    assert r.fix is not None


def test_permission_query_missing_is_not_a_problem() -> None:
    r = permission_result(facts(permission={"query_supported": False}))
    assert r.status is Status.PASS and "no permissions query" in r.summary


@pytest.mark.parametrize(
    ("error", "inputs", "cause"),
    [
        ({"name": "NotFoundError", "message": "Requested device not found"}, 0, "no_input_device"),
        (
            {"name": "OverconstrainedError", "message": "Invalid constraint"},
            0,
            "no_input_device",
        ),  # WebKit with no device
        (
            {"name": "OverconstrainedError", "message": "", "constraint": "sampleRate"},
            2,
            "constraints_unsatisfiable",
        ),
        ({"name": "NotReadableError", "message": "Could not start audio source"}, 1, "device_busy"),
        ({"name": "AbortError", "message": ""}, 1, "device_busy"),
    ],
)
def test_microphone_errors(error: dict[str, str], inputs: int, cause: str) -> None:
    f = facts(gum={"ok": False, "error": error}, devices={"inputs": inputs, "outputs": 1})
    r = microphone_result(f)
    assert (r.status, r.cause) == (Status.FAIL, cause)


@pytest.mark.parametrize(
    ("changes", "status", "cause"),
    [
        (
            {"measure.zero_fraction": 1.0, "measure.level_rms_dbfs": None},
            Status.FAIL,
            "silent_input",
        ),
        ({"measure.track_muted": True}, Status.FAIL, "silent_input"),
        ({"measure.level_rms_dbfs": -75.0}, Status.WARN, "low_level"),
        ({"measure.clip_runs": 3}, Status.WARN, "clipping"),
    ],
)
def test_microphone_levels(changes: dict[str, Any], status: Status, cause: str) -> None:
    r = microphone_result(facts(**changes))
    assert (r.status, r.cause) == (status, cause)


@pytest.mark.parametrize("level", ["loud", True, [1], None])
def test_a_level_that_is_not_a_number_is_no_level_never_a_crash(level: Any) -> None:
    results, _ = judge(facts(**{"measure.level_rms_dbfs": level}), NO_ECHO, None, None)
    r = next(r for r in results if r.id == "browser-microphone")
    assert (r.status, r.cause) == (Status.WARN, "low_level")


def test_absent_settings_keys_are_unknown_never_off() -> None:
    f = facts(**{"processing.settings": {"echoCancellation": True, "sampleRate": 44100}})
    r = processing_result(f)
    assert r.status is Status.PASS
    assert set(r.evidence["unreported"]) == {"autoGainControl", "noiseSuppression", "channelCount"}
    assert "unknown, not off" in r.summary


def test_aec_reported_off_warns() -> None:
    r = processing_result(facts(**{"processing.settings.echoCancellation": False}))
    assert (r.status, r.cause) == (Status.WARN, "aec_off")


@pytest.mark.parametrize(
    ("changes", "status", "cause"),
    [
        (
            {"contexts": [{"requested_rate_hz": 24000, "context_rate_hz": 48000}]},
            Status.WARN,
            "context_rate_ignored",
        ),
        (
            {
                "contexts": [
                    {
                        "requested_rate_hz": 24000,
                        "error": {"name": "NotSupportedError", "message": "x"},
                    }
                ]
            },
            Status.FAIL,
            "context_rate_rejected",
        ),
        (
            {
                "contexts": [
                    {
                        "requested_rate_hz": 24000,
                        "context_rate_hz": 24000,
                        "mic_connect_error": {"name": "NotSupportedError", "message": "y"},
                    }
                ]
            },
            Status.FAIL,
            "mic_source_rate_mismatch",
        ),
        ({"measure.delivered_input_hz": 48000}, Status.FAIL, "clock_mismatch"),
        ({"measure.delivered_output_hz": 22050}, Status.FAIL, "clock_mismatch"),
    ],
)
def test_sample_rates(changes: dict[str, Any], status: Status, cause: str) -> None:
    r = sample_rate_result(facts(**changes))
    assert (r.status, r.cause) == (status, cause)


@pytest.mark.parametrize("delivered", [24200, 22900])
def test_a_busy_machine_delivering_a_few_percent_too_few_frames_is_no_clock_mismatch(
    delivered: int,
) -> None:
    r = sample_rate_result(facts(**{"measure.delivered_input_hz": delivered}))
    assert r.status is Status.PASS


def test_suspended_context_fails_autoplay() -> None:
    f = facts(
        contexts=[
            {
                "requested_rate_hz": 24000,
                "context_rate_hz": 24000,
                "state_initial": "suspended",
                "state_after": "suspended",
                "resume_ms": None,
                "resume_timeout_ms": 1500,
            }
        ]
    )
    results, _ = judge(f, NO_ECHO, None, None)
    r = next(r for r in results if r.id == "browser-autoplay")
    assert (r.status, r.cause) == (Status.FAIL, "audio_context_suspended")


def _wss(events: list[dict[str, Any]], ended_by: str = "close") -> dict[str, Any]:
    return facts(wss={"events": events, "ended_by": ended_by})


CLOSED_1006 = [
    {"t_ms": 5, "type": "error"},
    {"t_ms": 6, "type": "close", "code": 1006, "reason": "", "was_clean": False},
]


def test_1006_before_open_takes_the_cause_of_the_clis_own_handshake() -> None:
    from doctor import guide

    cli = problem(
        Status.FAIL,
        "unauthorized",
        "the WebSocket upgrade was refused with HTTP 401",
        {"http_status": 401},
        guide.fix("token_auth"),
    )
    r = wss_result(_wss(CLOSED_1006), cli)
    assert (r.status, r.cause) == (Status.FAIL, "unauthorized")
    assert r.evidence["close_code"] == 1006
    assert r.evidence["cli_handshake"]["http_status"] == 401
    assert "1006" in r.summary


def test_1006_before_open_when_the_cli_gets_through_points_at_the_browser() -> None:
    r = wss_result(_wss(CLOSED_1006), passed("opened"))
    assert (r.status, r.cause) == (Status.FAIL, "closed_before_open")
    assert "worked" in r.summary


@pytest.mark.parametrize(
    ("events", "ended_by", "cause"),
    [
        (
            [
                {"type": "open"},
                {
                    "type": "message",
                    "message_type": "session.error",
                    "error_code": "unauthorized",
                    "error_message": "Authentication failed",
                },
                {"type": "close", "code": 1008, "reason": "", "was_clean": True},
            ],
            "close",
            "unauthorized",
        ),
        (
            [{"type": "open"}, {"type": "close", "code": 1008, "reason": "UNAUTHORIZED"}],
            "close",
            "unauthorized",
        ),
        (
            [{"type": "open"}, {"type": "close", "code": 1008, "reason": "POLICY"}],
            "close",
            "policy_close",
        ),
        (
            [{"type": "open"}, {"type": "close", "code": 1011, "reason": "INTERNAL_ERROR"}],
            "close",
            "server_error_close",
        ),
        (
            [{"type": "open"}, {"type": "close", "code": 1006, "reason": ""}],
            "close",
            "abrupt_close",
        ),
        ([{"type": "error"}], "error_without_close", "ws_blocked"),
        ([{"type": "open"}], "timeout", "no_session_ready"),
    ],
)
def test_websocket_outcomes(events: list[dict[str, Any]], ended_by: str, cause: str) -> None:
    r = wss_result(_wss(events, ended_by), None)
    assert (r.status, r.cause) == (Status.FAIL, cause)
    assert r.fix is not None


def _error_then_close(code: str, message: str, close: int) -> list[dict[str, Any]]:
    return [
        {"type": "open"},
        {"type": "message", "message_type": "session.error", "error_code": code,
         "error_message": message},
        {"type": "close", "code": close, "reason": code, "was_clean": True},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("code", "message", "close", "cause", "guide_id"),
    [  # what the sandbox's faults send (doctor/sandbox/connection.py)
        ("INTERNAL_ERROR", "Internal error while setting up the connection", 1011,
         "server_error", "service_side"),  # internal-error
        ("server_error", "Server at capacity, retry later", 1008,
         "server_error", "service_side"),  # at-capacity
        ("FORBIDDEN", "Forbidden", 1008, "forbidden", "account_access"),
        ("unauthorized", "Authentication failed", 1008, "unauthorized", "token_auth"),
        ("Server.Error-X", "odd", 1008, "no_session_ready", "service_side"),
    ],
)  # fmt: skip
def test_session_errors_get_the_token_cores_cause_and_fix(
    code: str, message: str, close: int, cause: str, guide_id: str
) -> None:
    """browser-wss and the CLI's `token` check name one cause and fix for one frame."""
    from doctor.net.auth_outcome import Failure, session_outcome

    r = wss_result(_wss(_error_then_close(code, message, close)), None)
    core = session_outcome(
        Failure("session_error", "ready", error_code=code, error_message=message,
                close_code=close, close_reason=code, close_frame=True),
        "token",
    )  # fmt: skip
    assert (r.status, r.cause, core.cause) == (Status.FAIL, cause, cause)
    assert r.fix is not None and r.fix.guide == guide_id
    assert code in r.summary and r.evidence["error_code"] == code


def test_no_token_skips_the_websocket() -> None:
    r = wss_result(facts(session={"has_token": False, "token_error": "no API key"}), None)
    assert (r.status, r.cause) == (Status.SKIP, "no_credentials")


def test_page_timeout_is_a_failure_with_a_fix() -> None:
    r = page_timeout_result(2.5)
    assert (r.id, r.status, r.cause) == ("browser-page", Status.FAIL, "no_page_results")
    assert "2.5 s" in r.summary and r.fix is not None


def _run(label: str, rate: int, verdict: str | None, delay: float | None = None) -> EchoRun:
    return EchoRun(label, rate, verdict, f"{verdict}", {"label": label}, delay)


def test_echo_cancelled_only_at_the_device_rate_is_the_firefox_finding() -> None:
    r, rt = echo_verdict(
        [_run("api_rate", 24000, "echo", 120.0), _run("default_rate", 48000, "no_echo")]
    )
    assert (r.status, r.cause) == (Status.FAIL, "aec_ineffective_at_context_rate")
    assert r.fix is not None and "device rate" in r.fix.title
    assert rt == 120.0


def test_echo_at_both_rates_is_an_echo_loop() -> None:
    r, _ = echo_verdict(
        [_run("api_rate", 24000, "echo", 90.0), _run("default_rate", 48000, "echo", 80.0)]
    )
    assert (r.status, r.cause) == (Status.FAIL, "echo_detected")


def test_echo_runs_without_recordings_mean_playback_failed() -> None:
    r, _ = echo_verdict([_run("api_rate", 24000, None)])
    assert (r.status, r.cause) == (Status.FAIL, "playback_failed")


def test_no_echo_at_either_rate_passes() -> None:
    r, rt = echo_verdict(
        [_run("api_rate", 24000, "no_echo"), _run("default_rate", 48000, "no_echo")]
    )
    assert r.status is Status.PASS and rt is None


def test_no_guide_text_is_garbled_by_the_redactor() -> None:
    """Every report passes through the redactor: a guide text that looks like a secret in a
    URL (`?token=`, `&key=`) reaches the user as `?token=****...` (review r17 #5)."""
    from doctor import guide
    from doctor.report.redact import Redactor

    redactor = Redactor()
    for entry in guide.ENTRIES.values():
        for text in (entry.title, entry.why, *entry.steps, *entry.commands, entry.url):
            # the query-parameter rule only: the proxy entry's `USER:PASSWORD@` example is
            # masked by the userinfo rule (left as it is, outside the browser block)
            assert "=****" not in redactor.scrub(text), (entry.id, text)


def test_a_microphone_that_delivered_no_samples_is_silent_not_a_level_of_none() -> None:
    f = facts(**{"measure.samples": 0, "measure.level_rms_dbfs": None, "measure.zero_fraction": 0})
    results, _ = judge(f, NO_ECHO, None, None)
    r = next(r for r in results if r.id == "browser-microphone")
    assert (r.status, r.cause) == (Status.FAIL, "silent_input")
    assert "None" not in r.summary


def _run_with_copy(gain_db: float, noise_db: float = -90.0) -> dict[str, Any]:
    """An echo-test run whose microphone hears the probe 100 ms later at `gain_db`, over
    white noise at `noise_db` RMS."""
    import base64

    import numpy as np

    from doctor.audio.echo.probe import make_probe

    rate = 48000
    probe = make_probe(rate).samples
    mic = np.zeros(len(probe) + rate // 2)
    mic[rate // 10 : rate // 10 + len(probe)] = probe * 10 ** (gain_db / 20)
    mic += np.random.default_rng(3).normal(0, 10 ** (noise_db / 20), len(mic))
    pcm = (np.clip(mic, -1, 1) * 32767).astype("<i2").tobytes()
    return {
        "label": "default_rate",
        "context_rate_hz": rate,
        "recorded_pcm16_b64": base64.b64encode(pcm).decode(),
    }


def test_an_aec_residual_far_below_the_playback_is_cancelled_not_an_echo() -> None:
    """Firefox ESR at the device rate left a -30 to -66 dB residual in CI: with
    echoCancellation on, that is the canceller working (browser.md: a leak above -30 dB)."""
    from doctor.browser.echo import analyse_run

    residual = analyse_run(_run_with_copy(-40.0))
    assert residual.verdict == "no_echo"
    assert residual.evidence["core_verdict"] == "echo" and "cancelled" in residual.summary
    leak = analyse_run(_run_with_copy(-12.0))
    assert leak.verdict == "echo"


def test_a_weak_match_far_below_the_playback_is_cancelled_not_measure_again() -> None:
    """Firefox ESR at 48 kHz left a weak match (S 1.77) at -36.9 dB here, which read
    "inconclusive, measure again": a warning about a canceller that works."""
    from doctor.browser.echo import analyse_run

    weak = analyse_run(_run_with_copy(-35.0, noise_db=-23.0))  # S 2.0 at -38 dB
    assert weak.evidence["core_verdict"] == "inconclusive", weak.evidence
    assert weak.verdict == "no_echo" and "at most a residual" in weak.summary
    loud = analyse_run(_run_with_copy(-15.0, noise_db=-4.0))  # S 2.0 at -16 dB
    assert loud.verdict == "inconclusive", loud.evidence
