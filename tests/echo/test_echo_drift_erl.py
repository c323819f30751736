"""Accuracy of drift and echo return loss (issue 8): the two estimators that missed targets.

Seeded signals, pure cores. Each test states what the previous estimator did wrong, and
fails on it.
"""

from __future__ import annotations

import numpy as np
import pytest
from echo_cases import corpus

from doctor.audio.echo.analysis import analyse_echo, coherence_levels, prepare, warp
from doctor.audio.echo.drift import (
    MAX_RESIDUAL,
    SegmentOffsets,
    fit_slope,
    residual_drift,
    segment_offsets,
)
from doctor.audio.echo.dsp import ANALYSIS_RATE_HZ, sinc_interpolate, to_analysis_rate

RATE = corpus.RATE_HZ
FS = ANALYSIS_RATE_HZ


def _case(drift_ppm: float, seed: int = 4, **kw: float) -> corpus.Case:
    kw = {"erl_db": -30.0, "nrl_db": -50.0, "delay_ms": 180.0, **kw}
    return corpus.make_case(
        "drift", corpus.speech_like(10, seed=seed), seed=seed, drift_ppm=drift_ppm, **kw
    )


# --- drift ----------------------------------------------------------------------------------


@pytest.mark.parametrize("drift_ppm", [-1000.0, -250.0, 417.0, 1000.0])
def test_drift_is_measured_to_a_few_ppm(drift_ppm: float) -> None:
    """Block-peak line fits were off by 100-200 ppm through a 200 Hz loudspeaker."""
    case = _case(drift_ppm)
    played, recorded = corpus.pcm16(case)
    a = analyse_echo(played, RATE, recorded, RATE)
    assert a.drift_ppm is not None and abs(a.drift_ppm - drift_ppm) <= 3.0, a.drift_ppm
    assert a.delay_ms is not None and abs(a.delay_ms - 180.0) <= 0.2


def test_no_drift_reads_zero() -> None:
    case = _case(0.0, seed=6)
    played, recorded = corpus.pcm16(case)
    a = analyse_echo(played, RATE, recorded, RATE)
    assert a.drift_ppm is not None and abs(a.drift_ppm) <= 2.0


def _aligned(case: corpus.Case, eps_ppm: float) -> tuple[np.ndarray, np.ndarray]:
    p = prepare(*corpus.pcm16(case)[:1], RATE, corpus.pcm16(case)[1], RATE)
    tau = case.delay_ms / 1000 * FS if case.delay_ms is not None else 0.0
    return warp(p.x, eps_ppm * 1e-6, len(p.y) / 2, shift=tau, length=len(p.y)), p.y


def test_residual_is_found_through_a_dispersive_path() -> None:
    """150 ppm wrong to start with: one pass recovers a good part of it, in the right
    direction (the settling loop in the detector repeats it; see the tests above)."""
    case = _case(400.0, seed=8, rt60_s=0.4)
    x_al, y = _aligned(case, 250.0)
    residual = residual_drift(x_al, y)
    assert residual is not None
    assert 60e-6 <= residual <= 160e-6, residual
    x_al, y = _aligned(case, 400.0)
    exact = residual_drift(x_al, y)
    assert exact is not None and abs(exact) <= 2e-6


def test_offsets_are_blind_to_the_bulk_delay() -> None:
    """The whole capture's phase is the reference, so a misplaced alignment (8 ms here,
    beyond the ±5 ms search) does not stop the drift from being read."""
    case = _case(-600.0, seed=9)
    p = prepare(*corpus.pcm16(case)[:1], RATE, corpus.pcm16(case)[1], RATE)
    tau = 180 / 1000 * FS + 64
    off = segment_offsets(warp(p.x, -500e-6, len(p.y) / 2, shift=tau, length=len(p.y)), p.y)
    slope = fit_slope(off)
    assert slope is not None and -110e-6 <= slope <= -50e-6, slope


def test_no_echo_gives_no_residual() -> None:
    case = corpus.make_case("noise", corpus.speech_like(8, seed=10), seed=11, echo=False)
    x_al, y = _aligned(case, 0.0)
    assert residual_drift(x_al, y) is None


def test_line_fit_is_robust_and_refuses_thin_evidence() -> None:
    t = np.arange(12) * 4096.0 + 4096
    line = 3e-5 * (t - t.mean()) + 0.4
    off = line.copy()
    off[[2, 7]] += [9.0, -6.0]  # pitch side lobes picked in two segments
    w = np.full(12, 20.0)
    slope = fit_slope(SegmentOffsets(t, off, w))
    assert slope == pytest.approx(3e-5, rel=1e-6)
    assert fit_slope(SegmentOffsets(t[:3], off[:3], w[:3])) is None  # too few
    short = np.arange(6) * 1000.0  # 0.6 s span
    assert fit_slope(SegmentOffsets(short, 1e-5 * short, np.ones(6))) is None
    steep = (2 * MAX_RESIDUAL) * (t - t.mean())
    assert fit_slope(SegmentOffsets(t, steep, w)) is None


# --- echo return loss -----------------------------------------------------------------------


def _linear_pair(enr_db: float, seed: int, seconds: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """An aligned reference and a capture: gain -50 dB plus pink noise at -50 - ENR dB."""
    x = to_analysis_rate(corpus.speech_like(seconds, seed=seed), RATE)
    rng = np.random.default_rng(seed)
    px = float(np.mean(x**2))
    n = to_analysis_rate(corpus.noise(int(seconds * RATE), seed + 1), RATE)
    n *= np.sqrt(px * 10 ** ((-50 - enr_db) / 10) / float(np.mean(n**2)))
    y = x * 10 ** (-50 / 20) + n
    return x, y + 1e-9 * rng.standard_normal(len(y))


def _clipped_per_bin(x: np.ndarray, y: np.ndarray) -> float:
    """The previous estimator: the bias correction clipped at zero in every bin."""
    from scipy import signal

    kw = {"fs": FS, "nperseg": 4096, "noverlap": 2048}
    f, sxx = signal.welch(x, **kw)
    _, syy = signal.welch(y, **kw)
    _, sxy = signal.csd(x, y, **kw)
    band = (f >= 100) & (f <= 3800)
    k_eff = (1 + (len(x) - 4096) // 2048) / 1.06
    cross = np.abs(sxy[band]) ** 2
    noise = np.maximum(syy[band] - cross / sxx[band], 0)
    p = np.maximum(cross - sxx[band] * noise / k_eff, 0) / sxx[band]
    return float(10 * np.log10(p.sum() / sxx[band].sum()))


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_weak_echo_is_not_read_louder_than_it_is(seed: int) -> None:
    """ENR -20 dB: the per-bin clipped correction reads 2-7 dB high; summing first is right."""
    x, y = _linear_pair(-20.0, seed)
    erl = coherence_levels(x, y).erl_db
    assert erl is not None and abs(erl - -50.0) <= 1.5, erl
    assert _clipped_per_bin(x, y) > -50.0 + 1.8  # what the fix is about


def test_strong_echo_is_exact() -> None:
    x, y = _linear_pair(20.0, 24)
    erl = coherence_levels(x, y).erl_db
    assert erl is not None and abs(erl - -50.0) <= 0.1


def test_corpus_truth_is_the_path_gain() -> None:
    """An echo that runs past the end of the capture has the same ERL as one that fits."""
    talk = corpus.speech_like(4, seed=30)
    cut = corpus.make_case("cut", talk, seed=31, erl_db=-20, delay_ms=900, nrl_db=-90)
    whole = corpus.make_case(
        "whole", talk, seed=31, erl_db=-20, delay_ms=900, nrl_db=-90, capture_extra_s=1.5
    )
    for case in (cut, whole):
        played, recorded = corpus.pcm16(case)
        a = analyse_echo(played, RATE, recorded, RATE)
        assert a.erl_db is not None and abs(a.erl_db - -20.0) <= 0.3, (case.name, a.erl_db)


# --- the warp's kernel table ------------------------------------------------------------------


def test_tabled_kernel_matches_the_exact_one() -> None:
    rng = np.random.default_rng(3)
    x = to_analysis_rate(rng.standard_normal(20000), FS)
    pos = np.arange(200, 19800) * (1 + 731e-6) + 0.123
    exact = sinc_interpolate(x, pos, phases=None)
    tabled = sinc_interpolate(x, pos)
    err = float(np.sqrt(np.mean((exact - tabled) ** 2) / np.mean(exact**2)))
    assert 20 * np.log10(err) < -60
