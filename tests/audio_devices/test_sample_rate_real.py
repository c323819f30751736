"""`sample-rate` against a private PulseAudio (resamples anything) and a JACK dummy at 48 kHz."""

from __future__ import annotations

import os

import pytest
from devices_helpers import check_of, report_of
from pulse_fixture import JackServer, PulseServer

from doctor.checks.audio_devices import resample_hint


def test_pulse_opens_at_24k_but_runs_natively_at_another_rate(pulse_server: PulseServer) -> None:
    code, report = report_of(["check", "sample-rate"], pulse_server.env)
    sr = check_of(report, "sample-rate")
    assert (sr["status"], sr["cause"]) == ("warn", "native_rate_differs"), sr
    assert code == 0
    ev = sr["evidence"]
    assert ev["input_opens_at_24000_hz"] is True and ev["output_opens_at_24000_hz"] is True
    assert 24000 in ev["input_accepted_rates_hz"] and 24000 in ev["output_accepted_rates_hz"]
    assert ev["input_native_rate_hz"] == 44100.0  # what PortAudio reports for ALSA pulse
    assert "44100 Hz" in sr["summary"] and "Bluetooth" not in sr["summary"]
    assert sr["fix"]["guide"] == "native_rate"


def test_jack_at_48k_only_is_rate_unsupported(jack_server: JackServer) -> None:
    code, report = report_of(
        ["check", "sample-rate", "--input-device", "system", "--output-device", "system"],
        jack_server.env,
    )
    sr = check_of(report, "sample-rate")
    assert (sr["status"], sr["cause"]) == ("fail", "rate_unsupported"), sr
    assert code == 1
    ev = sr["evidence"]
    assert ev["input_host_api"] == "JACK Audio Connection Kit"
    assert ev["input_opens_at_24000_hz"] is False and ev["output_opens_at_24000_hz"] is False
    assert ev["input_accepted_rates_hz"] == [48000]
    assert ev["output_accepted_rates_hz"] == [48000]
    assert "48000 Hz" in sr["summary"]
    assert ev["suggested_resample"] == [
        "mic_24k = scipy.signal.resample_poly(mic, 1, 2)",
        "out = scipy.signal.resample_poly(reply_24k, 2, 1)",
    ]
    assert sr["fix"]["guide"] == "sample_rate"
    assert any("system accepts 48000 Hz" in s for s in sr["fix"]["steps"])


def test_jack_microphone_reports_the_portaudio_code(jack_server: JackServer) -> None:
    _, report = report_of(["check", "microphone", "--input-device", "system"], jack_server.env)
    mic = check_of(report, "microphone")
    assert (mic["status"], mic["cause"]) == ("fail", "open_failed"), mic
    assert mic["evidence"]["portaudio_error_code"] == -9997
    assert "24000 Hz" in mic["summary"]


def test_unknown_output_device_is_no_output_device(pulse_server: PulseServer) -> None:
    code, report = report_of(
        ["check", "sample-rate", "--output-device", "hdmi-nowhere"], pulse_server.env
    )
    sr = check_of(report, "sample-rate")
    assert (sr["status"], sr["cause"]) == ("fail", "no_output_device"), sr
    assert code == 1
    assert sr["evidence"]["input_opens_at_24000_hz"] is True  # the input was still measured


def test_no_devices_names_both_sides(no_sound_env: dict[str, str]) -> None:
    if os.path.isdir("/dev/snd"):
        pytest.skip("this machine has sound cards, so PortAudio lists devices without a server")
    _, report = report_of(["check", "sample-rate"], no_sound_env)
    sr = check_of(report, "sample-rate")
    assert (sr["status"], sr["cause"]) == ("fail", "no_input_device"), sr
    assert "no input device" in sr["summary"] and "no output device" in sr["summary"]


@pytest.mark.parametrize(
    ("kind", "rate", "expected"),
    [
        ("input", 48000, "mic_24k = scipy.signal.resample_poly(mic, 1, 2)"),
        ("output", 48000, "out = scipy.signal.resample_poly(reply_24k, 2, 1)"),
        ("input", 44100, "mic_24k = scipy.signal.resample_poly(mic, 80, 147)"),
        ("output", 16000, "out = scipy.signal.resample_poly(reply_24k, 2, 3)"),
        ("input", 8000, "mic_24k = scipy.signal.resample_poly(mic, 3, 1)"),
    ],
)
def test_resample_hint(kind: str, rate: int, expected: str) -> None:
    assert resample_hint(kind, rate) == expected  # type: ignore[arg-type]
