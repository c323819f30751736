"""The live echo probe: two exponential sine sweeps, and what the capture says about them.

Pure: builds the probe signal and analyses a (played, recorded) pair that share a
timeline (sample 0 of both is the moment playback started, as the recorder arranged).
A sweep is broadband and impulsive after deconvolution, so each sweep gives its own delay;
their difference over 3 s is the clock drift, and two levels 10 dB apart expose AGC or a
non-linear path when their echo return losses disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from doctor.audio.echo.analysis import (
    ECHO_S,
    FRAME,
    FS,
    EchoAnalysis,
    LagWindow,
    Verdict,
    analyse_prepared,
    coherence_levels,
    detection_gain_db,
    prepare,
    surrogates,
    warp,
)
from doctor.audio.echo.dsp import (
    Array,
    cross_correlate,
    db,
    fft_size_for,
    frame_power,
    parabolic_peak,
    robust_z,
    spectrum,
)

LEAD_S = 0.5
SWEEP_S = 2.0
GAP_S = 1.0
TAIL_S = 1.5
SWEEP_RMS_DBFS = -20.0
SECOND_SWEEP_DB = -10.0
SWEEP_HZ = (100.0, 10000.0)
FADE_S = 0.02
PROBE_WINDOW = LagWindow(-0.05, 1.5)  # Bluetooth output latency; a margin for timing jitter
NOISE_S = 0.4
ERL_DISAGREE_DB = 2.0
NEAR_END_DB = 10.0


@dataclass(frozen=True)
class Probe:
    samples: Array  # float, full scale 1.0
    rate_hz: int
    sweeps: tuple[tuple[float, float], ...]  # (start_s, end_s)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate_hz


def sweep(
    rate_hz: int, seconds: float = SWEEP_S, f1: float = SWEEP_HZ[0], f2: float = SWEEP_HZ[1]
) -> Array:
    """Exponential sine sweep at -20 dBFS RMS with short fades (no clicks)."""
    f2 = min(f2, 0.45 * rate_hz)
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    k = np.log(f2 / f1)
    x = np.sin(2 * np.pi * f1 * seconds / k * (np.exp(t / seconds * k) - 1))
    fade = int(FADE_S * rate_hz)
    ramp = np.sin(np.linspace(0, np.pi / 2, fade)) ** 2
    x[:fade] *= ramp
    x[-fade:] *= ramp[::-1]
    return np.asarray(x * (10 ** (SWEEP_RMS_DBFS / 20) * np.sqrt(2)), dtype=np.float64)


def make_probe(rate_hz: int) -> Probe:
    """[0.5 s silence | sweep | 1 s | sweep -10 dB | 1.5 s]: 7 s."""
    s = sweep(rate_hz)

    def gap(sec: float) -> Array:
        return np.zeros(round(sec * rate_hz))

    second = s * 10 ** (SECOND_SWEEP_DB / 20)
    samples = np.concatenate([gap(LEAD_S), s, gap(GAP_S), second, gap(TAIL_S)])
    first_start = LEAD_S
    second_start = LEAD_S + SWEEP_S + GAP_S
    return Probe(
        samples,
        rate_hz,
        ((first_start, first_start + SWEEP_S), (second_start, second_start + SWEEP_S)),
    )


@dataclass(frozen=True)
class ProbeAnalysis:
    analysis: EchoAnalysis
    sweep_delays_ms: tuple[float | None, ...]
    sweep_erl_db: tuple[float | None, ...]
    erl_disagree: bool
    near_end_activity: bool
    near_end_level_dbfs: float | None

    @property
    def erl_spread_db(self) -> float | None:
        vals = [v for v in self.sweep_erl_db if v is not None]
        return None if len(vals) < 2 else max(vals) - min(vals)

    def evidence(self) -> dict[str, Any]:
        out = self.analysis.evidence()
        out.pop("delay_track", None)
        out.update(
            {
                "probe": "two exponential sine sweeps 100 Hz-10 kHz, 2 s, -20 dBFS RMS and -30",
                "sweep_delays_ms": [
                    None if d is None else round(d, 2) for d in self.sweep_delays_ms
                ],
                "sweep_erl_db": [None if e is None else round(e, 1) for e in self.sweep_erl_db],
                "sweep_erl_spread_db": (
                    None if self.erl_spread_db is None else round(self.erl_spread_db, 1)
                ),
                "sweeps_disagree": self.erl_disagree,
                "near_end_activity": self.near_end_activity,
                "near_end_level_dbfs": (
                    None if self.near_end_level_dbfs is None else round(self.near_end_level_dbfs, 1)
                ),
            }
        )
        return out


def _sweep_delay(x: Array, y: Array, start: int, end: int, lo: int, hi: int) -> float | None:
    """Delay (samples at 8 kHz) of one sweep, None when it is not clearly there."""
    ref = np.zeros(len(x))
    ref[start:end] = x[start:end]
    n_fft = fft_size_for(len(ref), len(y), lo, hi)
    cap = spectrum(y, n_fft)

    def z_of(r: Array) -> Array:
        return robust_z(np.abs(cross_correlate(spectrum(r, n_fft), cap, n_fft, lo, hi, 1.0)))

    z = z_of(ref)
    null = max(float(z_of(s).max()) for s in surrogates(ref))
    k = int(np.argmax(z))
    if z[k] < ECHO_S * max(1.0, null):
        return None
    return lo + parabolic_peak(z, k)


def analyse_probe(
    probe: Probe, recorded: Array, recorded_rate_hz: int, window: LagWindow = PROBE_WINDOW
) -> ProbeAnalysis:
    """Echo of the probe in a capture whose sample 0 is the start of playback."""
    p = prepare(probe.samples, probe.rate_hz, recorded, recorded_rate_hz)
    lo, hi = int(window.min_s * FS), int(window.max_s * FS)
    bounds = [(int(a * FS), int(b * FS)) for a, b in probe.sweeps]
    delays: list[float | None] = []
    if len(p.y):
        hi = min(hi, len(p.y) - 1)
        delays = [_sweep_delay(p.x, p.y, a, b, lo, hi) for a, b in bounds]
    drift = 0.0
    if len(delays) == 2 and delays[0] is not None and delays[1] is not None:
        spacing = bounds[1][0] - bounds[0][0]
        drift = float(np.clip((delays[1] - delays[0]) / spacing * 1e6, -1500, 1500))
    # The sweeps' delays give the drift to ~10 ppm. The phase-referenced refinement that
    # speech gets (echo_drift) does not apply: a sweep visits each frequency once, so
    # within a sweep every segment matches the reference phase by construction.
    analysis = analyse_prepared(p, window=window, drift_ppm=drift)
    delays_ms = tuple(None if d is None else d / FS * 1000 for d in delays)
    if analysis.verdict in (Verdict.MIC_SILENT, Verdict.INSUFFICIENT_REFERENCE):
        return ProbeAnalysis(analysis, delays_ms, (), False, False, None)

    # noise floor from the lead-in, before any echo can arrive
    noise_frames = frame_power(p.y[: int(NOISE_S * FS)], FRAME)
    noise = float(noise_frames.mean()) if len(noise_frames) else 0.0
    nrl = db(noise / p.ref_power) if noise > 0 else -120.0
    analysis = replace(
        analysis,
        noise_level_dbfs=db(noise) if noise > 0 else None,
        nrl_db=nrl,
        floor_erl_db=nrl - detection_gain_db(p.ref_active_s),
    )

    erls: list[float | None] = []
    delay_s = analysis.delay_ms / 1000 if analysis.delay_ms is not None else None
    eps = (analysis.drift_ppm or 0.0) * 1e-6
    if analysis.verdict is Verdict.ECHO and delay_s is not None:
        tau = delay_s * FS / (1 - eps)
        x_al = warp(p.x, eps, len(p.y) / 2, shift=tau, length=len(p.y))
        tail = int(0.3 * FS)
        for a, b in bounds:
            s, e = a + int(delay_s * FS), min(len(p.y), b + int(delay_s * FS) + tail)
            erls.append(coherence_levels(x_al[s:e], p.y[s:e]).erl_db if e - s > 2048 else None)
    valid = [v for v in erls if v is not None]
    disagree = len(valid) == 2 and abs(valid[0] - valid[1]) > ERL_DISAGREE_DB

    near_level, quietest = _gap_levels(p.y, bounds, delay_s or 0.0)
    near = (
        near_level is not None
        and quietest is not None
        and near_level > quietest + NEAR_END_DB
        and near_level > -70.0
    )
    return ProbeAnalysis(analysis, delays_ms, tuple(erls), disagree, near, near_level)


def _gap_levels(
    y: Array, bounds: list[tuple[int, int]], delay_s: float
) -> tuple[float | None, float | None]:
    """Loudest and quietest 100 ms where neither sweep nor its echo can be. Steady noise
    varies by a dB or two between such frames; someone talking, by far more."""
    busy = np.zeros(len(y), dtype=bool)
    d = int(delay_s * FS)
    for a, b in bounds:
        busy[a : min(len(y), b + d + int(0.35 * FS))] = True
    frames = frame_power(y[~busy], int(0.1 * FS)) if (~busy).any() else np.zeros(0)
    if len(frames) < 2:
        return None, None
    return db(float(frames.max())), db(float(frames.min()))
