"""--fix and source rates: a broken WAV rate field is refused, an odd legal rate stays cheap.

A reviewer's WAV with rate 0xFFFFFFFF made --fix use 6.8 GB and die of MemoryError (1 Hz:
5.5 GB and still running at 60 s); 383999 Hz took 33 s per 10 s of audio with exact factors.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from audio_format_signals import speech_like, to_i16, wav_bytes
from clirun import run_cli

from doctor.audio.format.analyze import validate_bytes
from doctor.audio.format.convert import StreamResampler, convert

PCM = to_i16(speech_like(1.0, seed=5)).tobytes()


def with_rate(rate: int, pcm: bytes = PCM) -> bytes:
    """A 16-bit mono WAV whose fmt rate field says `rate` (any 32-bit value)."""
    data = bytearray(wav_bytes(pcm, 24000))
    data[24:28] = struct.pack("<I", rate)
    return bytes(data)


@pytest.mark.parametrize("rate", [1, 100, 999, 384001, 0xFFFFFFFF])
def test_a_rate_outside_the_source_rate_bounds_is_not_convertible(rate: int) -> None:
    v = validate_bytes(with_rate(rate))
    assert not v.convertible
    assert v.refuse_reason is not None and "--source-rate" in v.refuse_reason
    assert f"{rate} Hz" in v.refuse_reason


@pytest.mark.parametrize("rate", [1000, 8000, 44100, 384000])
def test_a_rate_within_the_bounds_stays_convertible(rate: int) -> None:
    v = validate_bytes(with_rate(rate))
    assert v.convertible and v.refuse_reason is None


def test_fix_refuses_a_1_hz_header_in_one_line_and_source_rate_overrides(tmp_path: Path) -> None:
    src = tmp_path / "r1.wav"
    pcm = PCM[:200]  # 100 samples: the old code's 24000x resampling of them stays small
    src.write_bytes(with_rate(1, pcm))
    out = tmp_path / "fixed.raw"
    r = run_cli("validate-audio", str(src), "--fix", str(out))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "--source-rate" in r.stderr and "1 Hz" in r.stderr
    assert not out.exists()
    r = run_cli("validate-audio", str(src), "--fix", str(out), "--source-rate", "24000")
    assert out.read_bytes() == pcm, r.stderr


@pytest.mark.parametrize("rate", [1001, 44101, 383999])
def test_odd_rates_resample_with_bounded_factors(rate: int) -> None:
    rs = StreamResampler(rate)
    assert max(rs.up, rs.down) <= 1000
    assert abs(rs.up / rs.down * rate / 24000 - 1) <= 5e-4


def test_an_odd_rate_keeps_the_tone_and_the_duration() -> None:
    rate = 44101
    t = np.arange(2 * rate) / rate
    x = to_i16(0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32)).tobytes()
    y = np.frombuffer(b"".join(convert([x], "s16le", 1, rate)), "<i2").astype(float)
    assert abs(y.size - 48000) <= 48000 * 5e-4
    spectrum = np.abs(np.fft.rfft(y[1000:-1000]))
    peak = np.fft.rfftfreq(y.size - 2000, 1 / 24000)[int(np.argmax(spectrum))]
    assert abs(peak - 440) < 1.0


def test_usual_rates_keep_exact_factors() -> None:
    assert (StreamResampler(44100).up, StreamResampler(44100).down) == (80, 147)
    assert (StreamResampler(8000).up, StreamResampler(8000).down) == (3, 1)
