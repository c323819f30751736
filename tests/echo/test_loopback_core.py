"""A loopback input by name (the host's words) and by behaviour (what it records). Pure."""

from __future__ import annotations

import pytest

from doctor.audio.echo.analysis import EchoAnalysis, Verdict
from doctor.audio.echo.loopback import looks_like_loopback
from doctor.devices.loopback import loopback_by_name
from doctor.devices.soundserver import ServerDevice


@pytest.mark.parametrize(
    "name",
    [
        "Monitor of Built-in Audio Analog Stereo",
        "alsa_output.pci-0000_00_1f.3.analog-stereo.monitor",
        "BlackHole 2ch",
        "Loopback Audio",
        "Stereo Mix (Realtek(R) Audio)",
        "What U Hear (Sound Blaster)",
        "CABLE Output (VB-Audio Virtual Cable)",
        "Soundflower (2ch)",
    ],
)
def test_loopback_names(name: str) -> None:
    assert loopback_by_name(name) is not None


@pytest.mark.parametrize(
    "name",
    [
        "MacBook Pro Microphone",
        "Microphone (Realtek(R) Audio)",
        "USB PnP Sound Device: Audio (hw:1,0)",
        "default",
        "pulse",
        "Jabra Evolve2 65",
        "Monitoring Headset Mic",  # "monitor" as part of a word is not a monitor source
    ],
)
def test_microphone_names(name: str) -> None:
    assert loopback_by_name(name) is None


def test_the_servers_monitor_chain_names_it() -> None:
    src = ServerDevice("probe_mic", "ProbeMic", 48000, 1, monitor_of="Probe")
    reason = loopback_by_name("default", src)
    assert reason is not None and "'Probe'" in reason
    mic = ServerDevice("alsa_input.usb", "Jabra Evolve2 65 Mono", 16000, 1)
    assert loopback_by_name("default", mic) is None


def _echo(erl: float | None, floor: float | None, verdict: Verdict = Verdict.ECHO) -> EchoAnalysis:
    return EchoAnalysis(verdict, score_s=10.0, delay_ms=5.0, erl_db=erl, noise_level_dbfs=floor)


@pytest.mark.parametrize(
    ("erl", "floor", "verdict", "expected"),
    [
        (0.0, None, Verdict.ECHO, True),  # exact zeros at rest, a lossless copy
        (-0.4, -141.0, Verdict.ECHO, True),  # resampler residue is still digital silence
        (1.5, -120.0, Verdict.ECHO, True),
        (-18.0, None, Verdict.ECHO, False),  # an attenuated software loop: an ordinary echo
        (0.0, -45.0, Verdict.ECHO, False),  # a room is never digitally silent
        (-30.0, -60.0, Verdict.ECHO, False),  # a laptop's speaker and microphone
        (None, None, Verdict.ECHO, False),
        (0.0, None, Verdict.NO_ECHO, False),
    ],
)
def test_loopback_by_behaviour(
    erl: float | None, floor: float | None, verdict: Verdict, expected: bool
) -> None:
    assert looks_like_loopback(_echo(erl, floor, verdict)) is expected
