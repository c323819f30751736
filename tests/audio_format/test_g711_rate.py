"""Headerless G.711 is timed and converted at 8000 Hz (the API's pcmu/pcma rate).

A reviewer's `sox -r 8000 -e mu-law` one-second tone read as "mulaw, 24000 Hz … 0.33 s", and
--fix wrote 0.33 s with the 300 Hz tone at 900 Hz, which validate-audio then called valid.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from audio_format_signals import alaw_encode, mulaw_encode
from clirun import run_cli

from doctor.audio.format.analyze import validate_bytes


def tone(seconds: float = 1.0, hz: float = 300.0, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def peak_hz(pcm: bytes) -> float:
    y = np.frombuffer(pcm, "<i2").astype(float)
    return float(np.fft.rfftfreq(y.size, 1 / 24000)[int(np.argmax(np.abs(np.fft.rfft(y))))])


@pytest.mark.parametrize("encode,encoding", [(mulaw_encode, "mulaw"), (alaw_encode, "alaw")])
def test_headerless_g711_is_timed_at_8000_hz(
    encode: Callable[[np.ndarray], bytes], encoding: str
) -> None:
    v = validate_bytes(encode(tone()))
    assert v.detected.encoding == encoding
    assert v.detected.sample_rate_hz == 8000
    assert v.stats["duration_s"] == pytest.approx(1.0)
    assert v.stats["source_format"]["rate_hz"] == 8000


def test_fix_of_headerless_mulaw_keeps_the_length_and_the_pitch(tmp_path: Path) -> None:
    src = tmp_path / "real.ul"
    src.write_bytes(mulaw_encode(tone()))
    out = tmp_path / "fixed.raw"
    r = run_cli("validate-audio", str(src), "--fix", str(out), "--no-color")
    assert "mulaw, 8000 Hz" in r.stdout and "audio: 1.00 s" in r.stdout, r.stdout
    assert "resampled 8000 Hz to 24000 Hz" in r.stdout
    assert out.stat().st_size == 48000  # one second at 24 kHz, not 0.33 s
    assert abs(peak_hz(out.read_bytes()) - 300) < 2


def test_source_rate_overrides_the_g711_rate(tmp_path: Path) -> None:
    src = tmp_path / "real.ul"
    src.write_bytes(mulaw_encode(tone(rate=16000)))
    out = tmp_path / "fixed.raw"
    r = run_cli("validate-audio", str(src), "--source-rate", "16000", "--fix", str(out))
    assert "mulaw, 16000 Hz" in r.stdout and "audio: 1.00 s" in r.stdout, r.stdout
    assert out.stat().st_size == 48000
    assert abs(peak_hz(out.read_bytes()) - 300) < 2
