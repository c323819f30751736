"""Does the capture contain the played audio? Delay, drift, echo return loss, floor.

Pure core of the `echo` check and `agent-doctor echo` (method: /work/shared/echo-method.md):
block-wise GCC-PHAT stacked over a drift grid finds delay and clock drift; one coherent
GCC-PHAT pass on the drift-compensated reference gives a CFAR z-score, divided by what
time-reversed surrogate references reach on the same capture (S). S, unlike a raw z or a
correlation coefficient, does not move with the search window or the reference length,
so one threshold (2.5) holds for files and for live probes.

Drift is then settled on the capture itself (`echo_drift`: segment delays referenced to
the path's own phase, which a dispersive loudspeaker cannot bias), and the echo return
loss comes from bias-corrected Welch coherence of the aligned signals.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from doctor.audio.echo.drift import DriftMeter, fit_slope
from doctor.audio.echo.dsp import (
    ANALYSIS_RATE_HZ,
    FRAME_S,
    Array,
    active_frames,
    as_float,
    cross_correlate,
    db,
    fft_size_for,
    frame_power,
    parabolic_peak,
    robust_z,
    sinc_interpolate,
    smoothed_power,
    spectrum,
    to_analysis_rate,
)

ECHO_S = 2.5
INCONCLUSIVE_S = 1.75
SILENT_PEAK = 1e-7
MIN_REFERENCE_S = 0.5
CLIP_LEVEL = 0.999
DRIFT_RANGE_PPM = 1500.0
BLOCK_S = 1.0
HOP_S = 0.5
BLOCK_BETA = 0.7
EARLIEST_WINDOW_S = 0.1
ERL_NPERSEG = 4096
# Hann segments overlapping by half are not independent: K of them average like K / 1.056
HANN_HALF_OVERLAP = 1.056
SURROGATES = 3
DRIFT_PASSES = 5
DRIFT_SETTLED = 1e-6
SETTLE_TAPS = 8  # a shorter warp kernel while settling: drift needs phase, not -60 dB

FS = ANALYSIS_RATE_HZ
FRAME = int(FRAME_S * FS)


class Verdict(str, enum.Enum):
    ECHO = "echo"
    INCONCLUSIVE = "inconclusive"
    NO_ECHO = "no_echo"
    MIC_SILENT = "mic_silent"
    INSUFFICIENT_REFERENCE = "insufficient_reference"


@dataclass(frozen=True)
class LagWindow:
    """Delays searched, in seconds: capture time minus playback time."""

    min_s: float = 0.0
    max_s: float = 2.5

    def __post_init__(self) -> None:
        if not self.max_s > self.min_s:
            raise ValueError("the lag window is empty")


SHARED_TIMELINE = LagWindow(0.0, 2.5)


def search_window(seconds: float) -> LagWindow:
    """For files that do not share a timeline: the echo may sit anywhere within ±seconds."""
    return LagWindow(-abs(seconds), abs(seconds))


def erl_label(erl_db: float) -> str:
    """Heuristic severity (not validated against the service's VAD)."""
    if erl_db >= -20:
        return "loud: will re-trigger the agent's voice detection"
    if erl_db >= -40:
        return "audible"
    return "faint"


def detection_gain_db(active_s: float) -> float:
    """How far below the noise an echo is still found: 15 dB at 1.5 s of agent audio,
    20 dB at 3 s, 25 dB from 6 s (measured on the synthetic corpus)."""
    if active_s <= 0:
        return 10.0
    return float(np.clip(20.0 + 5.0 * np.log2(active_s / 3.0), 10.0, 25.0))


@dataclass(frozen=True)
class BlockDelay:
    """Where in the capture the echo was seen, block by block (under-runs show as jumps)."""

    t_s: float
    delay_ms: float
    z: float

    def to_dict(self) -> dict[str, float]:
        return {
            "t_s": round(self.t_s, 2),
            "delay_ms": round(self.delay_ms, 2),
            "z": round(self.z, 1),
        }


@dataclass(frozen=True)
class Correlation:
    """The coherent correlation (and the surrogates' envelope) for plots."""

    lags_ms: Array
    z: Array
    null_z: Array


@dataclass(frozen=True)
class EchoAnalysis:
    verdict: Verdict
    score_s: float | None = None
    z_coherent: float | None = None
    z_null: float | None = None
    delay_ms: float | None = None
    delay_start_ms: float | None = None
    drift_ppm: float | None = None
    erl_db: float | None = None
    echo_level_dbfs: float | None = None
    noise_level_dbfs: float | None = None
    nrl_db: float | None = None
    floor_erl_db: float | None = None
    reference_active_s: float = 0.0
    reference_overlap_s: float | None = None  # of that, inside the capture at the best lag
    reference_level_dbfs: float | None = None
    capture_peak_dbfs: float | None = None
    capture_clipped_fraction: float = 0.0
    capture_duration_s: float = 0.0
    lag_window: LagWindow = SHARED_TIMELINE
    track: tuple[BlockDelay, ...] = ()
    correlation: Correlation | None = field(default=None, repr=False, compare=False)

    @property
    def erl_label(self) -> str | None:
        return None if self.erl_db is None else erl_label(self.erl_db)

    def evidence(self) -> dict[str, Any]:
        """Numbers for the report; units in the key names."""

        def r(v: float | None, nd: int = 2) -> float | None:
            return None if v is None else round(float(v), nd)

        out: dict[str, Any] = {
            "verdict": self.verdict.value,
            "score_s": r(self.score_s),
            "z_coherent": r(self.z_coherent, 1),
            "z_null": r(self.z_null, 1),
            "echo_threshold_s": ECHO_S,
            "delay_ms": r(self.delay_ms),
            "delay_start_ms": r(self.delay_start_ms),
            "drift_ppm": r(self.drift_ppm, 1),
            "erl_db": r(self.erl_db, 1),
            "erl_label": self.erl_label,
            "echo_level_dbfs": r(self.echo_level_dbfs, 1),
            "noise_level_dbfs": r(self.noise_level_dbfs, 1),
            "nrl_db": r(self.nrl_db, 1),
            "floor_erl_db": r(self.floor_erl_db, 1),
            "reference_active_s": r(self.reference_active_s),
            "reference_overlap_s": r(self.reference_overlap_s),
            "reference_level_dbfs": r(self.reference_level_dbfs, 1),
            "capture_peak_dbfs": r(self.capture_peak_dbfs, 1),
            "capture_clipped_fraction": round(self.capture_clipped_fraction, 5),
            "capture_duration_s": r(self.capture_duration_s),
            "lag_window_s": [self.lag_window.min_s, self.lag_window.max_s],
        }
        if self.track:
            out["delay_track"] = [b.to_dict() for b in self.track]
        return out

    def describe(self) -> str:
        """One line a user can read."""
        v = self.verdict
        if v is Verdict.MIC_SILENT:
            return "the capture is digital silence: the microphone delivered nothing"
        if v is Verdict.INSUFFICIENT_REFERENCE:
            overlap = self.reference_overlap_s
            if overlap is not None and self.reference_active_s >= MIN_REFERENCE_S:
                return (
                    f"only {overlap:.2f} s of the active played audio overlaps the recording "
                    f"({self.capture_duration_s:.2f} s long) within the lags searched; at "
                    f"least {MIN_REFERENCE_S} s is needed to look for its echo"
                )
            return (
                f"only {self.reference_active_s:.1f} s of played audio is active; at least "
                f"{MIN_REFERENCE_S} s is needed to look for its echo"
            )
        if v is Verdict.ECHO:
            return (
                f"echo found {self.delay_ms:.0f} ms after playback, ERL "
                f"{_whole(self.erl_db)} dB ({self.erl_label}), S = {self.score_s:.1f}"
                if self.erl_db is not None and self.delay_ms is not None
                else f"echo found (S = {self.score_s:.1f})"
            )
        if v is Verdict.INCONCLUSIVE:
            return (
                f"inconclusive: a weak match (S = {self.score_s:.2f}, echo needs "
                f"{ECHO_S}); measure again with the live probe"
            )
        return (
            f"no echo detected (S = {self.score_s:.2f}); an echo stronger than ERL "
            f"{_whole(self.floor_erl_db)} dB would have been found, a weaker one cannot be "
            "excluded"
        )


def _whole(db: float | None) -> str:
    """Whole decibels without a "-0" (-0.3 dB rounds to 0, and `:.0f` prints "-0")."""
    return "?" if db is None else str(round(db))


# --- block stage: drift and a first delay ---------------------------------------------------


@dataclass(frozen=True)
class _Blocks:
    t_s: Array  # block centres, reference time
    z: NDArray[np.float32]  # (blocks, lags) robust z of |GCC-PHAT-beta|
    lo: int


def _block_correlations(
    x: Array, y: Array, lo: int, hi: int, active: NDArray[np.bool_]
) -> _Blocks | None:
    block = int(BLOCK_S * FS)
    hop = int(HOP_S * FS)
    if len(x) < block:
        return None
    starts = [
        s
        for s in range(0, len(x) - block + 1, hop)
        if active[s // FRAME : (s + block) // FRAME].mean() >= 0.25
    ]
    if len(starts) < 2:
        return None
    seg_len = block + hi - lo
    pad_left = max(0, -lo)
    pad_right = max(0, starts[-1] + block + hi - len(y))
    ypad = np.concatenate([np.zeros(pad_left), y, np.zeros(pad_right)])
    from scipy import fft

    n_fft = int(fft.next_fast_len(seg_len, real=True))
    n_lags = hi - lo + 1
    z = np.empty((len(starts), n_lags), dtype=np.float32)
    chunk = max(1, int(4e6 // n_fft))
    for c0 in range(0, len(starts), chunk):
        group = starts[c0 : c0 + chunk]
        xb = np.stack([x[s : s + block] for s in group])
        yb = np.stack([ypad[s + lo + pad_left : s + lo + pad_left + seg_len] for s in group])
        for j, (xs, ys) in enumerate(zip(xb, yb, strict=False)):
            corr = cross_correlate(
                spectrum(xs, n_fft), spectrum(ys, n_fft), n_fft, 0, n_lags - 1, BLOCK_BETA
            )
            z[c0 + j] = robust_z(np.abs(corr)).astype(np.float32)
    t = (np.asarray(starts, dtype=np.float64) + block / 2) / FS
    return _Blocks(t, z, lo)


def _stack_search(
    z: NDArray[np.float32], t_rel: Array, first: int, last: int, pool: int, eps_grid: Array
) -> tuple[float, float, int]:
    """Best (stacked value, drift, lag index) with each block shifted by drift * time."""
    first = max(0, first)
    last = min(z.shape[1], last)
    sub = z[:, first:last]
    n = sub.shape[1] // pool
    if n == 0:
        return 0.0, 0.0, first
    pooled = sub[:, : n * pool].reshape(len(sub), n, pool).max(axis=2)
    shifts = np.rint(eps_grid[:, None] * t_rel[None, :] * FS / pool).astype(np.int64)
    m = int(np.abs(shifts).max()) if shifts.size else 0
    padded = np.pad(pooled, ((0, 0), (m, m)))
    rows = np.arange(len(sub))[:, None]
    cols = np.arange(n)[None, :]
    best = (-np.inf, 0.0, first)
    for i, eps in enumerate(eps_grid):
        stacked = padded[rows, m + shifts[i][:, None] + cols].sum(axis=0)
        k = int(np.argmax(stacked))
        if stacked[k] > best[0]:
            best = (float(stacked[k]), float(eps), first + k * pool + pool // 2)
    return best


def _drift_from_blocks(blocks: _Blocks) -> tuple[float, int]:
    """Drift (capture-time slope of the delay) and the lag index at the blocks' middle."""
    t_mid = 0.5 * (blocks.t_s[0] + blocks.t_s[-1])
    t_rel = blocks.t_s - t_mid
    n_lags = blocks.z.shape[1]
    span = float(np.abs(t_rel).max())
    pool = max(8, int(np.ceil(n_lags / 4000)))
    coarse = np.arange(-DRIFT_RANGE_PPM, DRIFT_RANGE_PPM + 1, 50.0) * 1e-6
    _, eps, lag = _stack_search(blocks.z, t_rel, 0, n_lags, pool, coarse)
    if pool > 8:
        reach = pool + int(np.ceil(DRIFT_RANGE_PPM * 1e-6 * span * FS)) + 16
        _, eps, lag = _stack_search(blocks.z, t_rel, lag - reach, lag + reach, 8, coarse)
    reach = 8 + int(np.ceil(75e-6 * span * FS)) + 8
    fine = eps + np.arange(-75.0, 75.1, 12.5) * 1e-6
    _, eps, lag = _stack_search(blocks.z, t_rel, lag - reach, lag + reach, 1, fine)
    eps = _refine_drift(blocks, t_rel, eps, lag)
    return eps, lag


def _refine_drift(blocks: _Blocks, t_rel: Array, eps: float, lag: int) -> float:
    """Robust weighted line through each block's peak near the stacked prediction."""
    delays, times, weights = [], [], []
    for b in range(len(t_rel)):
        centre = round(lag + eps * t_rel[b] * FS)
        lo_i, hi_i = max(0, centre - 3), min(blocks.z.shape[1], centre + 4)
        if hi_i - lo_i < 3:
            continue
        seg = blocks.z[b, lo_i:hi_i].astype(np.float64)
        k = int(np.argmax(seg))
        if seg[k] < 5.0:
            continue
        delays.append(lo_i + parabolic_peak(seg, k))
        times.append(t_rel[b])
        weights.append(float(seg[k]))
    if len(delays) < 3 or (max(times) - min(times)) < 2.0:
        return eps
    d = np.asarray(delays)
    t = np.asarray(times)
    w = np.asarray(weights)
    keep = np.ones(len(d), dtype=bool)
    slope = eps * FS
    for _ in range(3):
        if keep.sum() < 3:
            break
        slope, intercept = np.polyfit(t[keep], d[keep], 1, w=np.sqrt(w[keep]))
        res = d - (slope * t + intercept)
        mad = float(np.median(np.abs(res[keep]))) * 1.4826
        keep = np.abs(res) <= max(3 * mad, 0.5)
    per_s = float(slope) / FS  # delay growth per second of reference time
    return float(
        np.clip(per_s / (1 + per_s), -2 * DRIFT_RANGE_PPM * 1e-6, 2 * DRIFT_RANGE_PPM * 1e-6)
    )


def _track(blocks: _Blocks) -> tuple[BlockDelay, ...]:
    out = []
    for b in range(len(blocks.t_s)):
        row = blocks.z[b].astype(np.float64)
        k = int(np.argmax(row))
        delay = (blocks.lo + parabolic_peak(row, k)) / FS
        out.append(BlockDelay(float(blocks.t_s[b] + delay), delay * 1000, float(row[k])))
    return tuple(out)


# --- coherent stage -------------------------------------------------------------------------


def warp(
    x: Array,
    eps: float,
    centre: float,
    shift: float = 0.0,
    length: int | None = None,
    half_width: int = 16,
) -> Array:
    """The reference on the capture's clock: out[n] = x(centre + (n - shift - centre)(1 - eps))."""
    n = np.arange(len(x) if length is None else length, dtype=np.float64)
    if eps == 0.0 and shift == 0.0 and length in (None, len(x)):
        return x
    if eps == 0.0 and float(shift).is_integer():
        s = int(shift)
        out = np.zeros(len(n))
        src = np.arange(len(n)) - s
        ok = (src >= 0) & (src < len(x))
        out[ok] = x[src[ok]]
        return out
    return sinc_interpolate(x, centre + (n - shift - centre) * (1.0 - eps), half_width)


@dataclass(frozen=True)
class _Coherent:
    magnitude: Array
    z: Array
    peak: float


def _coherent(
    x: Array, cap_spec: NDArray[np.complex128], cap_power: Array, n_fft: int, lo: int, hi: int
) -> _Coherent:
    corr = cross_correlate(spectrum(x, n_fft), cap_spec, n_fft, lo, hi, None, cap_power)
    mag = np.abs(corr)
    return _Coherent(mag, robust_z(mag), float(mag.max()))


def surrogates(x: Array, count: int = SURROGATES) -> list[Array]:
    """Time-reversed, rolled copies: same spectrum and rhythm, no relation to the capture."""
    rev = x[::-1]
    return [np.roll(rev, (k * len(x)) // (count + 1) + 997 * k) for k in range(count)]


def _direct_path(
    x_w: Array, cap_spec: NDArray[np.complex128], n_fft: int, lo: int, hi: int, detected: _Coherent
) -> float:
    """Lag index of the earliest arrival, to a fraction of a sample.

    The whitened matched filter detects best but keeps speech's own autocorrelation (pitch
    side lobes ms apart); full PHAT is sharp, so the direct path is looked for on it, near
    the detection peak and up to 100 ms before it.
    """

    def phat_z(ref: Array) -> Array:
        return robust_z(np.abs(cross_correlate(spectrum(ref, n_fft), cap_spec, n_fft, lo, hi, 1.0)))

    k_w = int(np.argmax(detected.z))
    phat = phat_z(x_w)
    null = max(float(phat_z(s).max()) for s in surrogates(x_w))
    significant = ECHO_S * max(1.0, null)
    near = 3 * FS // 1000
    a, b = max(0, k_w - near), min(len(phat), k_w + near + 1)
    k_p = a + int(np.argmax(phat[a:b]))
    if phat[k_p] < significant:  # too weak for PHAT: keep the detector's own peak
        return parabolic_peak(detected.magnitude, k_w)
    window = int(EARLIEST_WINDOW_S * FS)
    k = earliest_arrival(phat[: k_p + 1], significant, window)
    return parabolic_peak(phat, k)


def _settle_drift(x: Array, y: Array, eps: float, centre: float, tau: float) -> float:
    """Iterate the phase-referenced residual drift until it stops moving (a large
    starting error smears the reference phase at high frequencies, so one pass corrects
    only part of it)."""
    meter = DriftMeter(y)
    for _ in range(DRIFT_PASSES):
        x_al = warp(x, eps, centre, shift=tau, length=len(y), half_width=SETTLE_TAPS)
        residual = fit_slope(meter.offsets(x_al))
        if residual is None:
            break
        eps = eps + residual * (1 - eps)
        if abs(residual) < DRIFT_SETTLED:
            break
    return float(np.clip(eps, -2 * DRIFT_RANGE_PPM * 1e-6, 2 * DRIFT_RANGE_PPM * 1e-6))


def earliest_arrival(z: Array, threshold_z: float, window: int) -> int:
    """The direct path: the first peak within `window` lags before the maximum that is
    at least half its height and itself above `threshold_z`."""
    k = int(np.argmax(z))
    need = max(0.5 * float(z[k]), threshold_z)
    for i in range(max(1, k - window), min(k, len(z) - 1)):
        if z[i] >= need and z[i] >= z[i - 1] and z[i] >= z[i + 1]:
            return i
    return k


# --- levels ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Levels:
    erl_db: float | None
    residual_power: float  # capture power not explained by the echo path (noise, near end)


def coherence_levels(x_aligned: Array, y: Array) -> Levels:
    """Echo return loss from bias-corrected Welch coherence (coherent output power / input).

    P_echo = sum((|Sxy|^2 - Sxx Snn / K_eff) / Sxx) over the band, divided by sum(Sxx).
    Averaging K_eff segments leaves Sxx Snn / K_eff of noise in |Sxy|^2, and it takes the
    same share out of Syy - |Sxy|^2 / Sxx, so Snn = (Syy - |Sxy|^2 / Sxx) / (1 - 1/K_eff).
    The correction is summed over the band before anything is clipped: clipping each bin
    at zero keeps the noise's upward swings and drops its downward ones, which read a weak
    echo 4-7 dB too loud at ENR -15..-25 dB.
    """
    from scipy import signal

    n = min(len(x_aligned), len(y))
    if n < 256:
        return Levels(None, float(np.mean(y**2)) if len(y) else 0.0)
    nper = min(ERL_NPERSEG, 1 << int(np.log2(n)))
    kw: dict[str, Any] = {"fs": FS, "nperseg": nper, "noverlap": nper // 2, "window": "hann"}
    f, sxx = signal.welch(x_aligned[:n], **kw)
    _, syy = signal.welch(y[:n], **kw)
    _, sxy = signal.csd(x_aligned[:n], y[:n], **kw)
    band = (f >= 100) & (f <= 3800)
    df = float(f[1] - f[0])
    ok = band & (sxx > 0)
    if not ok.any():
        return Levels(None, float(syy[band].sum()) * df)
    k = 1 + (n - nper) // (nper // 2)
    k_eff = k / HANN_HALF_OVERLAP
    sxx_b, syy_b, cross = sxx[ok], syy[ok], np.abs(sxy[ok]) ** 2
    unexplained = np.maximum(syy_b - cross / sxx_b, 0.0)
    if k_eff <= 1.5:  # too few segments to tell the echo's share from the noise's
        noise = unexplained
        p_echo = np.maximum(cross / sxx_b - noise / max(k_eff, 1.0), 0.0)
    else:
        noise = unexplained / (1.0 - 1.0 / k_eff)
        p_echo = cross / sxx_b - noise / k_eff
    residual = (float(noise.sum()) + float(syy[band & ~ok].sum())) * df
    total = float(p_echo.sum())
    if total <= 0:  # the echo drowned in the correction's own noise: keep the
        # per-bin clipped sum, which reads high (an echo reported louder, never quieter)
        total = float(np.maximum(p_echo, 0.0).sum())
    if total <= 0:
        return Levels(None, residual)
    return Levels(db(total / float(sxx_b.sum())), residual)


def _noise_power(
    y: Array, ref_active: NDArray[np.bool_], delay_s: float | None, residual_power: float | None
) -> float:
    """Capture power where no echo can be: frames whose reference (at the delay, and 0.3 s
    of reverberation before) is silent. Without a delay, the whole capture (conservative)."""
    py = frame_power(y, FRAME)
    if len(py) == 0:
        return 0.0
    if delay_s is None:
        return float(py.mean())
    d = round(delay_s / FRAME_S)
    tail = round(0.3 / FRAME_S)
    src_active = np.zeros(len(py), dtype=bool)
    for k in range(len(py)):
        a, b = k - d - tail, k - d + 1
        a, b = max(a, 0), min(b, len(ref_active))
        src_active[k] = bool(ref_active[a:b].any()) if b > a else False
    quiet = ~src_active
    if quiet.sum() >= int(0.5 / FRAME_S):
        return float(py[quiet].mean())
    if residual_power is not None:
        return residual_power
    return float(py.mean())


# --- the detector ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """Both signals at 8 kHz in the analysis band, with the facts the early stops need."""

    x: Array
    y: Array
    ref_active: NDArray[np.bool_]
    ref_active_s: float
    ref_power: float
    capture_peak: float
    clipped_fraction: float
    capture_duration_s: float


def prepare(
    played: NDArray[np.generic],
    played_rate_hz: int,
    recorded: NDArray[np.generic],
    recorded_rate_hz: int,
) -> Prepared:
    x_raw = as_float(played)
    y_raw = as_float(recorded)
    peak = float(np.max(np.abs(y_raw))) if len(y_raw) else 0.0
    clipped = float(np.mean(np.abs(y_raw) >= CLIP_LEVEL)) if len(y_raw) else 0.0
    x = to_analysis_rate(x_raw, played_rate_hz)
    y = to_analysis_rate(y_raw, recorded_rate_hz) if peak >= SILENT_PEAK else np.zeros(0)
    px = frame_power(x, FRAME)
    act = active_frames(px)
    ref_power = float(px[act].mean()) if act.any() else 0.0
    return Prepared(
        x,
        y,
        act,
        float(act.sum()) * FRAME_S,
        ref_power,
        peak,
        clipped,
        len(y_raw) / recorded_rate_hz if recorded_rate_hz else 0.0,
    )


def analyse_echo(
    played: NDArray[np.generic],
    played_rate_hz: int,
    recorded: NDArray[np.generic],
    recorded_rate_hz: int,
    *,
    window: LagWindow = SHARED_TIMELINE,
    drift_ppm: float | None = None,
) -> EchoAnalysis:
    """Look for `played` inside `recorded` (same timeline unless `window` says otherwise).

    `drift_ppm`: a drift known from elsewhere (the live probe's two sweeps); None searches
    ±1500 ppm with the block-stacked detector.
    """
    return analyse_prepared(
        prepare(played, played_rate_hz, recorded, recorded_rate_hz),
        window=window,
        drift_ppm=drift_ppm,
    )


def overlap_active_s(ref_active: NDArray[np.bool_], capture_len: int, lo: int, hi: int) -> float:
    """Seconds of active played audio whose echo lands inside the capture, at the lag in
    [lo, hi] (samples) that gives the most. A 50 ms recording overlaps 50 ms of the played
    file at best, however long that file is active: too little to look for an echo in."""
    frames = len(ref_active)
    width = capture_len // FRAME
    if frames == 0 or width <= 0:
        return 0.0
    cs = np.concatenate([[0], np.cumsum(ref_active, dtype=np.int64)])
    # played frame k lands at capture sample k*FRAME + lag: first frame in at -lag/FRAME
    starts = np.arange(-hi // FRAME, -lo // FRAME + 1)
    ends = np.clip(starts + width, 0, frames)
    counts = cs[ends] - cs[np.clip(starts, 0, frames)]
    return float(counts.max()) * FRAME_S


def analyse_prepared(
    p: Prepared, *, window: LagWindow = SHARED_TIMELINE, drift_ppm: float | None = None
) -> EchoAnalysis:
    common: dict[str, Any] = {
        "reference_active_s": p.ref_active_s,
        "reference_level_dbfs": db(p.ref_power) if p.ref_power > 0 else None,
        "capture_peak_dbfs": 20 * np.log10(p.capture_peak) if p.capture_peak > 0 else None,
        "capture_clipped_fraction": p.clipped_fraction,
        "capture_duration_s": p.capture_duration_s,
        "lag_window": window,
    }
    if p.capture_peak < SILENT_PEAK:
        return EchoAnalysis(Verdict.MIC_SILENT, **common)
    if p.ref_active_s < MIN_REFERENCE_S:
        return EchoAnalysis(Verdict.INSUFFICIENT_REFERENCE, **common)
    x, y = p.x, p.y
    lo = max(round(window.min_s * FS), -(len(x) - 1))
    hi = min(round(window.max_s * FS), len(y) - 1)
    overlap_s = overlap_active_s(p.ref_active, len(y), lo, hi)
    common["reference_overlap_s"] = overlap_s
    if hi - lo < 16 or overlap_s < MIN_REFERENCE_S:
        return EchoAnalysis(Verdict.INSUFFICIENT_REFERENCE, **common)

    track: tuple[BlockDelay, ...] = ()
    if drift_ppm is None:
        blocks = _block_correlations(x, y, lo, hi, p.ref_active)
        eps = 0.0
        if blocks is not None:
            eps, _ = _drift_from_blocks(blocks)
            track = _track(blocks)
        searched = True
    else:
        eps, searched = drift_ppm * 1e-6, False

    n_fft = fft_size_for(len(x), len(y), lo, hi)
    cap_spec = spectrum(y, n_fft)
    cap_power = smoothed_power(cap_spec)
    centre = len(y) / 2
    plain = _coherent(x, cap_spec, cap_power, n_fft, lo, hi)
    best, x_w = plain, x
    if eps != 0.0:
        x_eps = warp(x, eps, centre)
        warped = _coherent(x_eps, cap_spec, cap_power, n_fft, lo, hi)
        if not searched or warped.peak > 1.05 * plain.peak:
            best, x_w = warped, x_eps
        else:
            eps = 0.0
    z_coh = float(best.z.max())
    null = [_coherent(s, cap_spec, cap_power, n_fft, lo, hi).z for s in surrogates(x_w)]
    null_env = np.max(np.stack(null), axis=0)
    z_null = float(null_env.max())
    score = z_coh / max(1.0, z_null)
    verdict = (
        Verdict.ECHO
        if score >= ECHO_S
        else Verdict.INCONCLUSIVE
        if score >= INCONCLUSIVE_S
        else Verdict.NO_ECHO
    )
    correlation = Correlation(np.arange(lo, hi + 1) / FS * 1000, best.z, null_env)

    delay_s = erl = echo_level = None
    resid: float | None = None
    if verdict is not Verdict.NO_ECHO:
        if searched and verdict is Verdict.ECHO:
            # the settling passes are blind to the bulk delay: the detector's peak will do
            rough = lo + parabolic_peak(best.magnitude, int(np.argmax(best.z)))
            eps_new = _settle_drift(x, y, eps, centre, rough)
            if eps_new != eps:
                x_new = warp(x, eps_new, centre)
                settled = _coherent(x_new, cap_spec, cap_power, n_fft, lo, hi)
                if settled.peak >= 0.99 * best.peak:  # never trade a better fit for a worse one
                    eps, x_w, best = eps_new, x_new, settled
        tau = lo + _direct_path(x_w, cap_spec, n_fft, lo, hi, best)  # lag at the middle
        delay_s = tau * (1 - eps) / FS
        x_al = warp(x, eps, centre, shift=tau, length=len(y))
        levels = coherence_levels(x_al, y)
        erl, resid = levels.erl_db, levels.residual_power
        if erl is not None:
            echo_level = db(p.ref_power) + erl
    noise = _noise_power(y, p.ref_active, delay_s, resid)
    nrl = db(noise / p.ref_power) if noise > 0 else -120.0
    mid_s = len(y) / 2 / FS
    return EchoAnalysis(
        verdict,
        score_s=score,
        z_coherent=z_coh,
        z_null=z_null,
        delay_ms=None if delay_s is None else delay_s * 1000,
        delay_start_ms=None if delay_s is None else (delay_s - eps * mid_s) * 1000,
        drift_ppm=eps * 1e6,
        erl_db=erl,
        echo_level_dbfs=echo_level,
        noise_level_dbfs=db(noise) if noise > 0 else None,
        nrl_db=nrl,
        floor_erl_db=nrl - detection_gain_db(min(p.ref_active_s, overlap_s)),
        track=track,
        correlation=correlation,
        **common,
    )
