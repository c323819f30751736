"""Pure audio of the sandbox: G.711, turn detection, the synthetic voice."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import numpy as np
import pytest

from doctor.sandbox import audio


def _audioop() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return importlib.import_module("audioop")
        except ImportError:
            pytest.skip("audioop (the reference G.711 codec) left the stdlib in Python 3.13")


ALL = np.arange(-32768, 32768, dtype=np.int64).astype(np.int16)


def test_ulaw_matches_the_stdlib_reference() -> None:
    ref = _audioop()
    assert audio.ulaw_encode(ALL) == ref.lin2ulaw(ALL.tobytes(), 2)
    codes = bytes(range(256))
    assert audio.ulaw_decode(codes).tobytes() == ref.ulaw2lin(codes, 2)


def test_alaw_matches_the_stdlib_reference() -> None:
    ref = _audioop()
    assert audio.alaw_encode(ALL) == ref.lin2alaw(ALL.tobytes(), 2)
    codes = bytes(range(256))
    assert audio.alaw_decode(codes).tobytes() == ref.alaw2lin(codes, 2)


def test_g711_known_values() -> None:
    zero = np.zeros(1, np.int16)
    assert audio.ulaw_encode(zero) == b"\xff"
    assert audio.alaw_encode(zero) == b"\xd5"
    assert audio.ulaw_decode(b"\x00")[0] == -32124
    assert audio.alaw_decode(b"\xaa")[0] == 32256


@pytest.mark.parametrize("encoding", ["audio/pcm", "audio/pcmu", "audio/pcma"])
def test_encode_then_decode_keeps_the_signal(encoding: str) -> None:
    voice = audio.synth_voice(0.3)
    data = audio.encode(voice, encoding)
    samples, rate = audio.decode(data, encoding)
    assert rate == (24000 if encoding == "audio/pcm" else 8000)
    ref = voice if rate == 24000 else voice[::3]
    assert samples.size == ref.size
    corr = np.corrcoef(samples.astype(float), ref.astype(float))[0, 1]
    assert corr > 0.99


def test_pcm_is_little_endian_int16() -> None:
    assert audio.encode(np.array([1, -2], np.int16), "audio/pcm") == b"\x01\x00\xfe\xff"


def test_synth_voice_level_length_and_spectrum() -> None:
    v = audio.synth_voice(1.0, level_dbfs=-18.0)
    assert v.dtype == np.int16 and v.size == 24000
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean((v / 32768.0) ** 2)))
    assert abs(rms_dbfs - -18.0) < 0.5
    spectrum = np.abs(np.fft.rfft(v.astype(float)))
    freqs = np.fft.rfftfreq(v.size, 1 / 24000)
    speech_band = spectrum[(freqs > 100) & (freqs < 4000)].sum()
    assert speech_band / spectrum.sum() > 0.9
    assert audio.synth_voice(0.0).size == 0
    assert not np.array_equal(audio.synth_voice(0.5, seed=1), audio.synth_voice(0.5, seed=2))


def speech_then_silence(lead_s: float, speech_s: float, tail_s: float) -> np.ndarray:
    z = lambda s: np.zeros(round(s * 24000), np.int16)  # noqa: E731
    return np.concatenate([z(lead_s), audio.synth_voice(speech_s, seed=5), z(tail_s)])


def test_turn_detector_finds_start_stop_and_length() -> None:
    det = audio.TurnDetector(24000, min_silence_ms=500)
    events = det.feed(speech_then_silence(0.4, 1.2, 1.0))
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"]
    assert events[0].at_s == pytest.approx(0.4, abs=0.04)
    assert events[1].speech_s == pytest.approx(1.2, abs=0.06)


def test_turn_detector_is_independent_of_chunking() -> None:
    pcm = speech_then_silence(0.2, 0.8, 1.2)
    whole = audio.TurnDetector(24000).feed(pcm)
    det = audio.TurnDetector(24000)
    pieces = [e for i in range(0, pcm.size, 777) for e in det.feed(pcm[i : i + 777])]
    assert pieces == whole and len(whole) == 2


def test_short_pauses_do_not_end_a_turn_and_quiet_noise_is_not_speech() -> None:
    det = audio.TurnDetector(24000, min_silence_ms=1000)
    pcm = np.concatenate([speech_then_silence(0.1, 0.5, 0.5), speech_then_silence(0, 0.5, 0.2)])
    assert [e.kind for e in det.feed(pcm)] == ["speech_started"]
    rng = np.random.default_rng(0)
    hiss = (rng.standard_normal(48000) * 32768 * 10 ** (-60 / 20)).astype(np.int16)
    assert audio.TurnDetector(24000).feed(hiss) == []


def test_turn_detector_at_8khz_and_rate_change() -> None:
    det = audio.TurnDetector(8000, min_silence_ms=300)
    pcm = speech_then_silence(0.1, 0.5, 0.5)[::3]
    assert [e.kind for e in det.feed(pcm)] == ["speech_started", "speech_stopped"]
    det.set_rate(24000)
    det.set_min_silence(300)
    events = det.feed(speech_then_silence(0.1, 0.5, 0.5))
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"]
    assert events[0].at_s > 1.0  # stream time kept counting across the change
