"""Level findings, sample-rate estimation (numpy and espeak-ng speech) and --fix conversion."""

from __future__ import annotations

import numpy as np
import pytest
from audio_format_signals import espeak, espeak_available, resample, speech_like, to_i16
from realparts import need_tool
from scipy import signal

from doctor.audio.format.analyze import validate_bytes
from doctor.audio.format.convert import StreamResampler, convert
from doctor.audio.levels.stream import LevelStats
from doctor.audio.rate.estimate import CANDIDATES_HZ, estimate_rate

X = speech_like(4.0, seed=11)


def test_level_stats_int16_and_float_paths_agree() -> None:
    a = to_i16(X)
    s1, s2 = LevelStats(), LevelStats()
    for k in range(0, a.size, 1000):
        s1.update_int16(a[k : k + 1000])
    s2.update_float(a.astype(np.float32) / 32768)
    s1.finish()
    s2.finish()
    assert s1.summary() == s2.summary()
    assert s1.rms() == pytest.approx(float(np.sqrt(np.mean((a / 32768.0) ** 2))), rel=1e-4)


def test_level_stats_parallel_parts_do_not_change_the_figures() -> None:
    """A chunk large enough to be split across threads gives what small chunks give."""
    a = np.tile(to_i16(X), 8)  # 768 000 samples: above the size that is split into parts
    big, small = LevelStats(), LevelStats()
    big.update_int16(a[:7])  # leave a carry so the parts start mid-frame
    big.update_int16(a[7:])
    for k in range(0, a.size, 480):
        small.update_int16(a[k : k + 480])
    big.finish()
    small.finish()
    assert big.summary() == small.summary()
    assert big.hist == small.hist


@pytest.mark.parametrize(
    "make,code",
    [
        (lambda: np.zeros(48000), "silence"),
        (lambda: np.clip(X * 20, -1, 1), "clipping"),
        (lambda: X * 0.5 + 0.1, "dc_offset"),
        (lambda: X * 0.002, "low_level"),
    ],
)
def test_level_problems(make: object, code: str) -> None:
    v = validate_bytes(to_i16(make()).tobytes())  # type: ignore[operator]
    assert code in v.codes()
    assert v.verdict == "valid"  # level problems are warnings: the bytes are well-formed


def test_tones_are_not_rate_estimated() -> None:
    t = np.arange(48000) / 24000
    est = estimate_rate(0.3 * np.sin(2 * np.pi * 440 * t), 24000)
    assert est.rate_hz is None


@pytest.mark.parametrize("f0,scale", [(100, 0.95), (130, 1.0), (180, 1.05), (210, 1.1)])
def test_numpy_speech_at_24k_is_estimated_24k(f0: float, scale: float) -> None:
    est = estimate_rate(speech_like(6.0, f0=f0, formant_scale=scale, seed=int(f0)), 24000)
    assert est.rate_hz in (22050, 24000), est.to_dict()


@pytest.mark.parametrize("true_rate", [8000, 48000])
def test_numpy_speech_far_rates_are_found(true_rate: int) -> None:
    x = resample(speech_like(6.0, f0=130, seed=2), 24000, true_rate)
    v = validate_bytes(to_i16(x).tobytes())
    est = v.stats["rate"]["estimated_rate_hz"]
    assert est is not None and abs(np.log(est / true_rate)) < abs(np.log(24000 / true_rate))


TEXTS = [
    "The quick brown fox jumps over the lazy dog. Please call me back when you get this.",
    "Hello, I would like to book a table for two people tomorrow evening at seven o'clock.",
    "My account number is four five six, and I need help resetting my password today.",
]
VOICES = [
    ("en", 30, 150),
    ("en", 70, 160),
    ("en+f3", 50, 170),
    ("en+f4", 60, 150),
    ("en-us", 40, 190),
    ("en+m3", 35, 140),
]


Confusion = dict[int, dict[int | None, int]]


@pytest.fixture(scope="module")
def confusion() -> tuple[Confusion, dict[int, int]]:
    """Estimates by true rate, and how many clips validate-audio flags per true rate."""
    need_tool("espeak-ng")
    table: Confusion = {r: {} for r in CANDIDATES_HZ}
    flagged = dict.fromkeys(CANDIDATES_HZ, 0)
    for i, (voice, pitch, speed) in enumerate(VOICES):
        x, sr = espeak(" ".join(TEXTS[i % 3 :] + TEXTS[: i % 3]), voice, pitch, speed)
        for r in CANDIDATES_HZ:
            y = resample(x, sr, r)
            est = estimate_rate(y, 24000).rate_hz
            table[r][est] = table[r].get(est, 0) + 1
            flagged[r] += "sample_rate_mismatch" in validate_bytes(to_i16(y).tobytes()).codes()
    return table, flagged


def test_espeak_rate_confusion(confusion: tuple[Confusion, dict[int, int]]) -> None:
    """espeak-ng speech resampled to each rate and labelled 24 kHz (see the report's figures)."""
    assert espeak_available()
    table, flagged = confusion
    n = len(VOICES)
    # 24 kHz speech is never taken for a far rate; 22.05 kHz is its honest neighbour
    assert sum(c for r, c in table[24000].items() if r in (22050, 24000)) == n
    # far rates are mostly found; the 8k/48k direction always at least moves away from 24k
    assert table[8000].get(8000, 0) >= n - 1
    # 16 kHz sent as 24 kHz, the common mistake (was found 1 time in 6)
    assert table[16000].get(16000, 0) >= n - 1
    assert table[48000].get(48000, 0) + table[48000].get(44100, 0) >= n - 1
    assert table[44100].get(44100, 0) + table[44100].get(48000, 0) >= n - 1
    correct = sum(table[r].get(r, 0) for r in CANDIDATES_HZ)
    assert correct / (n * len(CANDIDATES_HZ)) >= 0.5, table
    # what validate-audio says: never a mismatch on 24 kHz (nor on 22.05, 9 % off)
    assert flagged[24000] == 0 and flagged[22050] == 0, flagged
    assert flagged[8000] >= n - 1, flagged
    # 16 kHz (x1.5) is estimated (above) but no longer claimed at any length: it puts no cue
    # out of human range, and random voices at 24 kHz (a child, a high woman) were claimed
    # 16 kHz on 9-17 s clips (issue 14; bench_rate_accuracy.py --long-stress)
    assert flagged[16000] == 0, flagged


def test_stream_resampler_equals_resample_poly() -> None:
    x = np.random.default_rng(0).standard_normal(100_003).astype(np.float32)
    for src in (48000, 44100, 16000, 8000, 22050):
        rs = StreamResampler(src)
        parts = [rs.feed(x[i : i + 7777]) for i in range(0, x.size, 7777)] + [rs.finish()]
        ref = signal.resample_poly(x.astype(np.float64), rs.up, rs.down)
        assert np.array_equal(np.concatenate(parts), ref)


def test_convert_float_stereo_48k_to_api_format() -> None:
    y = resample(X, 24000, 48000) * 0.5
    blob = np.stack([y, y], 1).astype("<f4").tobytes()
    out = b"".join(
        convert([blob[i : i + 10_000] for i in range(0, len(blob), 10_000)], "f32le", 2, 48000)
    )
    back = np.frombuffer(out, "<i2") / 32768
    assert back.size == X.size
    assert np.corrcoef(back[1000:-1000], X[1000:-1000] * 0.5)[0, 1] > 0.999
    v = validate_bytes(out)
    assert v.verdict == "valid", v.codes()
