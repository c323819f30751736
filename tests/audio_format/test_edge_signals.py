"""Bytes that are not speech and say nothing about their encoding: a constant, a clipped
square wave, a single sample. Each is read as PCM16 (the API's format); what the levels
show is said, and no encoding or channel layout is claimed from it."""

from __future__ import annotations

import numpy as np

from doctor.audio.format.analyze import validate_bytes

ENCODING_CODES = {"big_endian", "stereo_interleaved", "mulaw_samples", "uint8_samples", "noise"}


def _pcm(x: np.ndarray) -> bytes:
    return np.asarray(x, dtype="<i2").tobytes()


def test_a_constant_is_a_dc_offset_not_two_equal_channels() -> None:
    v = validate_bytes(_pcm(np.full(24_000, 8000)))
    assert not set(v.codes()) & ENCODING_CODES, v.codes()
    assert "dc_offset" in v.codes() and "too_little_signal" in v.codes()


def test_a_clipped_square_wave_is_clipping_not_big_endian() -> None:
    t = np.arange(24_000) / 24_000
    v = validate_bytes(_pcm(np.where(np.sin(2 * np.pi * 100 * t) >= 0, 32767, -32768)))
    assert not set(v.codes()) & ENCODING_CODES, v.codes()
    assert "clipping" in v.codes()


def test_quiet_big_endian_audio_is_still_found() -> None:
    """The rail guard leaves the tie-break it guards: tiny samples stored big-endian."""
    t = np.arange(24_000) / 24_000
    x = (60 * np.sin(2 * np.pi * 220 * t)).astype(">i2").tobytes()
    assert "big_endian" in validate_bytes(x).codes()


def test_one_sample_is_too_little_to_judge_and_has_no_level_finding() -> None:
    v = validate_bytes(_pcm(np.array([1234])))
    assert v.codes() == ["too_little_signal"], v.codes()
    assert v.verdict == "valid"


def test_duplicated_stereo_speech_is_still_two_channels() -> None:
    rng = np.random.default_rng(3)
    mono = np.convolve(rng.normal(0, 3000, 24_000), np.ones(8) / 8, "same").astype("<i2")
    v = validate_bytes(np.repeat(mono, 2).tobytes())
    assert "stereo_interleaved" in v.codes(), v.codes()


def test_mono_repeated_sample_by_sample_and_duplicated_to_stereo_is_two_channels() -> None:
    """A naive 8 -> 24 kHz upsampling repeats each sample 3 times; duplicated into two equal
    channels, most neighbours across pairs are equal too, and it is still stereo."""
    rng = np.random.default_rng(4)
    mono = np.convolve(rng.normal(0, 3000, 8_000), np.ones(4) / 4, "same").astype("<i2")
    v = validate_bytes(np.repeat(np.repeat(mono, 3), 2).tobytes())
    assert "stereo_interleaved" in v.codes(), v.codes()


def test_8_bit_silences_are_too_little_signal_with_no_level_finding() -> None:
    """u8 (0x80 and a step about it), mu-law (0xFF/0x7F/0xFE/0x7E), A-law (0xD5): their
    PCM16 reading is a near full-scale offset or noise, which no finding may describe."""
    rng = np.random.default_rng(5)
    cases = {
        "u8 silence": b"\x80" * 8000,
        "u8 near-silence": rng.choice([0x7F, 0x80, 0x81], 8000, p=[0.2, 0.6, 0.2]),
        "mu-law near-silence": rng.choice([0xFF, 0x7F, 0xFE, 0x7E], 8000),
        "A-law silence": b"\xd5" * 8000,
    }
    for name, b in cases.items():
        data = b if isinstance(b, bytes) else np.asarray(b, np.uint8).tobytes()
        v = validate_bytes(data)
        assert v.codes() == ["too_little_signal"], (name, v.codes())


def test_quiet_u8_speech_is_u8() -> None:
    """Quiet unsigned 8-bit audio (bytes about 0x80) is named u8, not PCM16 at -1 FS."""
    t = np.arange(8_000) / 8_000
    x = 0.05 * np.sin(2 * np.pi * 200 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    v = validate_bytes(np.round(128 + 127 * x).astype(np.uint8).tobytes())
    assert "uint8_samples" in v.codes() and "dc_offset" not in v.codes(), v.codes()


def test_an_idle_minus_one_head_keeps_the_level_findings_of_what_follows() -> None:
    """0xFF bytes are PCM16 -1 (an idle converter), silence in every reading: levels are
    still judged, so the clipping after 6 s of it is said."""
    t = np.arange(24_000) / 24_000
    loud = np.clip(1.5 * np.sin(2 * np.pi * 220 * t), -1, 1) * 32767
    v = validate_bytes(_pcm(np.concatenate([np.full(6 * 24_000, -1), loud])))
    assert "clipping" in v.codes(), v.codes()


def test_zeros_before_speech_are_not_noise() -> None:
    """A head of digital zeros (longer than the detector reads) then speech-like sound:
    the detector measured nothing, so nothing is called noise."""
    rng = np.random.default_rng(6)
    tone = np.convolve(rng.normal(0, 3000, 48_000), np.ones(8) / 8, "same")
    v = validate_bytes(_pcm(np.concatenate([np.zeros(6 * 24_000), tone])))
    assert "noise" not in v.codes(), v.codes()
