"""`sample-rate` against a private PulseAudio (resamples anything) and JACK dummies (one rate)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from devices_helpers import check_of, report_of
from pulse_fixture import JackServer, PulseServer, jack_dummy, private_pulse, run_cli

from doctor.checks.audio_devices import resample_hint


def test_pulse_desktop_passes_with_the_native_rate_in_evidence(pulse_server: PulseServer) -> None:
    """A desktop whose sound server resamples 48 kHz hardware to 24 kHz streams is the
    normal, working case: no warning (a warning every healthy machine shows is noise)."""
    code, report = report_of(["check", "sample-rate"], pulse_server.env)
    sr = check_of(report, "sample-rate")
    assert (sr["status"], sr["cause"]) == ("pass", None), sr
    assert code == 0
    ev = sr["evidence"]
    assert ev["input_opens_at_24000_hz"] is True and ev["output_opens_at_24000_hz"] is True
    assert 24000 in ev["input_accepted_rates_hz"] and 24000 in ev["output_accepted_rates_hz"]
    # PortAudio says 44100 for ALSA's pulse device; the server knows the sink runs at 48 kHz
    assert ev["input_native_rate_hz"] == 48000.0 and ev["output_native_rate_hz"] == 48000.0
    assert ev["output_server_device"] == "probe" and ev["input_server_device"] == "probe_mic"
    assert "natively at 48000 Hz" in sr["summary"]


def test_a_hands_free_rate_behind_the_server_warns(tmp_path: Path) -> None:
    """A source fixed at 16 kHz (what a Bluetooth headset in HFP mode gives the server)."""
    with private_pulse() as pulse:
        pulse.load_module("module-null-sink", "sink_name=headset", "rate=16000", "channels=1")
        pulse.load_module(
            "module-remap-source",
            "master=headset.monitor",
            "source_name=headset_mic",
            "source_properties=device.description=HeadsetMic",
        )
        code, report = report_of(
            ["check", "sample-rate"], pulse.client_env(PULSE_SOURCE="headset_mic")
        )
    sr = check_of(report, "sample-rate")
    assert (sr["status"], sr["cause"]) == ("warn", "native_rate_differs"), sr
    assert code == 0
    ev = sr["evidence"]
    assert ev["input_native_rate_hz"] == 16000.0 and ev["output_native_rate_hz"] == 48000.0
    assert "'HeadsetMic' runs at 16000 Hz" in sr["summary"] and "hands-free" in sr["summary"]
    assert sr["fix"]["guide"] == "native_rate"


@pytest.mark.parametrize(
    "bus,wording",
    [
        ("usb", "a USB device set to a telephone rate"),
        ("bluetooth", "a Bluetooth hands-free (telephone) profile"),
    ],
)
def test_a_16k_source_is_named_from_its_bus(bus: str, wording: str) -> None:
    """A USB microphone at 16 kHz is not a Bluetooth headset: the summary says what the
    server's device.bus says (the bus is kept in evidence)."""
    with private_pulse() as pulse:
        pulse.load_module("module-null-sink", "sink_name=narrow", "rate=16000", "channels=1")
        pulse.load_module(
            "module-remap-source",
            "master=narrow.monitor",
            "source_name=narrow_mic",
            f'source_properties="device.description=NarrowMic device.bus={bus}"',
        )
        code, report = report_of(
            ["check", "sample-rate"], pulse.client_env(PULSE_SOURCE="narrow_mic")
        )
    sr = check_of(report, "sample-rate")
    assert (sr["status"], sr["cause"], code) == ("warn", "native_rate_differs", 0), sr
    assert sr["evidence"]["input_bus"] == bus
    assert f"'NarrowMic' runs at 16000 Hz ({wording})" in sr["summary"], sr["summary"]
    assert "above 8000 Hz" in sr["summary"]
    if bus == "usb":
        assert "Bluetooth hands-free (telephone) profile" not in sr["summary"]


def test_jack_at_16k_only_fails_and_names_the_telephone_rate() -> None:
    with jack_dummy(16000) as jack:
        code, report = report_of(
            ["check", "sample-rate", "--input-device", "system", "--output-device", "system"],
            jack.env,
        )
    sr = check_of(report, "sample-rate")
    assert (sr["status"], sr["cause"]) == ("fail", "rate_unsupported"), sr
    assert code == 1
    assert sr["evidence"]["input_accepted_rates_hz"] == [16000]
    assert "telephone rate" in sr["summary"] and "above 8000 Hz is lost" in sr["summary"]


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


def test_jack_microphone_at_48k_only_records_at_its_rate_and_echo_runs(
    jack_server: JackServer,
) -> None:
    """A device that opens at 48 kHz only is a working microphone, not a missing one: it is
    recorded at its own rate (the app resamples) and the echo probe runs on it."""
    _, report = report_of(
        ["check", "microphone", "echo", "--input-device", "system", "--output-device", "system"],
        jack_server.env,
    )
    mic = check_of(report, "microphone")
    assert mic["cause"] != "open_failed", mic
    assert mic["evidence"]["rate_hz"] == 48000
    assert mic["evidence"]["opens_at_24000_hz"] is False
    if mic["status"] == "pass":
        assert "48000 Hz" in mic["summary"] and "resample" in mic["summary"]
    else:  # the dummy driver's input is digital silence: said so, not "plug in a mic"
        assert mic["cause"] == "silent_input", mic
    echo = check_of(report, "echo")
    assert echo["status"] != "skip", echo


def test_unknown_output_device_is_a_usage_error(pulse_server: PulseServer) -> None:
    r = run_cli(["check", "sample-rate", "--output-device", "hdmi-nowhere"], pulse_server.env)
    assert r.returncode == 2, r.stderr
    assert "'hdmi-nowhere' names no output device" in r.stderr


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


def test_a_narrow_output_alone_is_not_said_to_hurt_recognition() -> None:
    """An 8 kHz sink: the output carries the agent's voice to the user, never to the
    recogniser, so the warning says the voice sounds muffled, not that recognition suffers."""
    with private_pulse() as pulse:
        pulse.load_module("module-null-sink", "sink_name=phone", "rate=8000", "channels=1")
        code, report = report_of(["check", "sample-rate"], pulse.mic_env(PULSE_SINK="phone"))
    sr = check_of(report, "sample-rate")
    assert (sr["status"], sr["cause"], code) == ("warn", "native_rate_differs", 0), sr
    assert sr["evidence"]["output_native_rate_hz"] == 8000.0
    assert "hurts recognition" not in sr["summary"]
    assert "muffled" in sr["summary"]
