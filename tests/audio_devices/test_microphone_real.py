"""`microphone` through the real CLI, PortAudio, ALSA's pulse plugin and a private PulseAudio."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from devices_helpers import broken_portaudio_env, check_of, refusing_pcm_env, report_of
from pulse_fixture import VOICE, PulseServer, private_pulse, run_cli, tone_into


@pytest.fixture
def silent_source(pulse_server: PulseServer) -> Iterator[str]:
    """A `module-null-source`: a microphone that delivers digital zeros."""
    module = pulse_server.load_module(
        "module-null-source", "source_name=silentmic", "rate=48000", "channels=1"
    )
    try:
        yield "silentmic"
    finally:
        pulse_server.unload_module(module)


def test_working_mic_passes_with_the_tone_level(pulse_server: PulseServer) -> None:
    with tone_into(pulse_server, VOICE, amplitude=0.5):
        code, report = report_of(["check", "microphone"], pulse_server.mic_env())
    mic = check_of(report, "microphone")
    assert mic["status"] == "pass", mic
    assert code == 0
    ev = mic["evidence"]
    # A 0.5 full-scale sine: peak -6 dBFS, RMS -9 dBFS, no zeros.
    assert -8.0 < ev["peak_dbfs"] < -4.0
    assert -11.0 < ev["level_dbfs"] < -7.0
    assert ev["zero_fraction"] < 0.01
    assert ev["rate_hz"] == 24000 and ev["duration_s"] == pytest.approx(0.5, abs=0.01)
    assert ev["device"] == "default" and ev["host_api"] == "ALSA" and ev["is_default"] is True


def test_input_device_by_name_part(pulse_server: PulseServer) -> None:
    with tone_into(pulse_server, VOICE):
        _, report = report_of(
            ["check", "microphone", "--input-device", "PULS"], pulse_server.mic_env()
        )
    mic = check_of(report, "microphone")
    assert mic["status"] == "pass", mic
    assert mic["evidence"]["device"] == "pulse" and mic["evidence"]["is_default"] is False


def test_silent_source_is_silent_input(pulse_server: PulseServer, silent_source: str) -> None:
    env = pulse_server.client_env(PULSE_SOURCE=silent_source)
    code, report = report_of(["check", "microphone"], env)
    mic = check_of(report, "microphone")
    assert (mic["status"], mic["cause"]) == ("fail", "silent_input"), mic
    assert code == 1
    assert mic["evidence"]["zero_fraction"] == 1.0
    assert mic["evidence"]["level_dbfs"] == -120.0
    assert mic["fix"]["guide"] == "audio_level"
    assert any("Privacy & Security" in s for s in mic["fix"]["steps"])


def test_quiet_tone_is_low_level_warning(pulse_server: PulseServer) -> None:
    with tone_into(pulse_server, VOICE, amplitude=2e-4):  # about -74 dBFS peak
        code, report = report_of(["check", "microphone"], pulse_server.mic_env())
    mic = check_of(report, "microphone")
    assert (mic["status"], mic["cause"]) == ("warn", "low_level"), mic
    assert code == 0  # a warning does not fail the run
    assert mic["evidence"]["level_dbfs"] < -70.0
    assert mic["evidence"]["zero_fraction"] < 0.99


def test_a_playing_monitor_is_a_loopback_not_a_working_mic(pulse_server: PulseServer) -> None:
    """The fixture's default source copies the default sink: with a tone playing it has a
    fine level, and it is still no microphone."""
    with tone_into(pulse_server, amplitude=0.5):
        code, report = report_of(["check", "microphone"], pulse_server.env)
    mic = check_of(report, "microphone")
    assert (mic["status"], mic["cause"]) == ("fail", "loopback_input"), mic
    assert code == 1
    assert mic["evidence"]["input_monitor_of"] == "Probe" and mic["evidence"]["level_dbfs"] > -12
    assert "records what plays" in mic["summary"] or "dBFS of whatever is playing" in mic["summary"]
    assert mic["fix"]["guide"] == "loopback_input"


def test_only_monitors_means_no_microphone_at_all() -> None:
    """With every remapped microphone unloaded, the server's sources are all `.monitor`s:
    pointing at another one cannot help, and the summary says so."""
    with private_pulse() as pulse:
        for line in pulse.pactl("list", "short", "modules").splitlines():
            if "module-remap-source" in line:
                pulse.unload_module(int(line.split("\t")[0]))
        code, report = report_of(
            ["check", "microphone"], pulse.client_env(PULSE_SOURCE="probe.monitor")
        )
    mic = check_of(report, "microphone")
    assert (mic["status"], mic["cause"], code) == ("fail", "loopback_input", 1), mic
    assert mic["evidence"]["server_real_sources"] == []
    assert "no microphone at all" in mic["summary"]


def test_the_remapped_loopback_is_not_counted_as_a_real_microphone() -> None:
    """Only the monitors and `probe_mic` (a remap of a monitor, the input just called a
    loopback) left: `probe_mic` was listed as a real microphone to switch to."""
    with private_pulse() as pulse:
        for line in pulse.pactl("list", "short", "modules").splitlines():
            if "module-remap-source" in line and "source_name=voice_mic" in line:
                pulse.unload_module(int(line.split("\t")[0]))
        code, report = report_of(["check", "microphone"], pulse.env)
    mic = check_of(report, "microphone")
    assert (mic["cause"], code) == ("loopback_input", 1), mic
    assert mic["evidence"]["server_real_sources"] == [], mic["evidence"]
    assert "no microphone at all" in mic["summary"]


def test_a_loopback_with_a_real_microphone_beside_it_lists_it(pulse_server: PulseServer) -> None:
    code, report = report_of(["check", "microphone"], pulse_server.env)
    mic = check_of(report, "microphone")
    assert (mic["cause"], code) == ("loopback_input", 1), mic
    assert mic["evidence"]["server_real_sources"] == ["voice_mic"]
    assert "no microphone at all" not in mic["summary"]


def test_no_sound_server_is_no_input_device(no_sound_env: dict[str, str]) -> None:
    if os.path.isdir("/dev/snd"):
        pytest.skip("this machine has sound cards, so PortAudio lists devices without a server")
    code, report = report_of(["check", "microphone"], no_sound_env)
    mic = check_of(report, "microphone")
    assert (mic["status"], mic["cause"]) == ("fail", "no_input_device"), mic
    assert code == 1
    ev = mic["evidence"]
    assert ev["devices_total"] == 0
    assert ev["sound_server_reachable"] is False and ev["dev_snd_exists"] is False
    assert "user_in_audio_group" in ev
    assert "no sound server reachable" in mic["summary"] and "no /dev/snd" in mic["summary"]


def test_a_mistyped_input_device_is_a_usage_error(pulse_server: PulseServer) -> None:
    """Before: `no_input_device` with "plug in a microphone", exit 1."""
    r = run_cli(["check", "microphone", "--input-device", "no-such-mic"], pulse_server.env)
    assert r.returncode == 2, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert "'no-such-mic' names no input device" in line and "1: default" in line
    assert "voice_mic" in line  # the server's sources are named too


def test_an_ambiguous_input_device_names_its_matches(pulse_server: PulseServer) -> None:
    """Before: "2 input devices match 'ul'" without saying which, exit 1."""
    r = run_cli(["check", "microphone", "--input-device", "e"], pulse_server.env)
    assert r.returncode == 2, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert "matches 2 input devices (0: pulse; 1: default)" in line


def test_a_server_source_name_is_accepted(pulse_server: PulseServer) -> None:
    """`voice_mic` is a PulseAudio source, not a PortAudio device: it is reached through ALSA's
    pulse device. The env's default source is the loopback `probe_mic`, so a recording that
    ignored the name would be `loopback_input`."""
    _, report = report_of(["check", "microphone", "--input-device", "voice_mic"], pulse_server.env)
    mic = check_of(report, "microphone")
    assert mic["cause"] not in ("no_input_device", "loopback_input"), mic
    assert mic["evidence"]["device"] in ("pulse", "default"), mic


def test_refusing_input_is_open_failed_with_the_host_error(
    pulse_server: PulseServer, tmp_path: Path
) -> None:
    env = refusing_pcm_env(pulse_server.env, tmp_path)
    code, report = report_of(["check", "microphone", "--input-device", "badmic"], env)
    mic = check_of(report, "microphone")
    assert mic["status"] == "fail", mic
    assert code == 1
    # PortAudio reports ALSA's -EIO: not a permission problem, so open_failed with the codes.
    assert mic["cause"] == "open_failed"
    ev = mic["evidence"]
    assert ev["portaudio_error_code"] == -9999
    assert ev["portaudio_error_name"] == "paUnanticipatedHostError"
    # About 1 run in 12, PortAudio itself loses its last-host-error record and reports
    # "<host API not found> error 0" (measured: 2 of 25); otherwise it is ALSA's -EIO.
    if ev["host_api_error_code"] != 0:
        assert ev["host_api_error_code"] == -5 and ev["host_api_error_source"] == "ALSA", ev
        assert "Input/output error" in mic["summary"]


def test_missing_portaudio_skips_the_microphone(pulse_server: PulseServer, tmp_path: Path) -> None:
    env = broken_portaudio_env(pulse_server.env, tmp_path)
    code, report = report_of(["check", "microphone"], env)
    environment, mic = check_of(report, "environment"), check_of(report, "microphone")
    assert (environment["status"], environment["cause"]) == ("fail", "portaudio_missing")
    assert (mic["status"], mic["cause"]) == ("skip", "prerequisite_failed")
    assert code == 1


def test_missing_portaudio_without_environment_check(
    pulse_server: PulseServer, tmp_path: Path
) -> None:
    env = broken_portaudio_env(pulse_server.env, tmp_path)
    _, report = report_of(["check", "microphone", "--skip", "environment"], env)
    mic = check_of(report, "microphone")
    assert (mic["status"], mic["cause"]) == ("fail", "portaudio_missing"), mic
    assert "libportaudio" in mic["evidence"]["portaudio_error"]
    assert mic["fix"]["guide"] == "portaudio"
