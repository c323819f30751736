"""An echo whose delay wanders: a delay tracker over short blocks, scored against surrogates.

The coherent detector (`analysis`) assumes one delay and a clock drift. A loop through an
app's player does not keep one: each hop that receives 10 ms chunks late inserts a small gap,
so over one reply the delay walks (322 -> 363 ms on the relay's wire), and a coherent pass
over 20 s smears its peak below the threshold although every half second of the reply
correlates plainly. Here each 0.5 s block of the played audio is correlated with the capture
(GCC-PHAT-beta, robust z over 0..2.5 s of lag), a Viterbi path through the blocks picks one
delay per block with a penalty per millisecond of step (a wander, not a jump to anywhere),
and the path's mean z is divided by what the same tracker reaches with time-reversed
surrogate references on the same capture (S, as in `analysis`). A path sitting under
MIN_LOOP_MS is still an echo, marked `software_loop`: no player and microphone loop is
that fast, so the app sends back what it receives (a stream mix-up, not a room).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from doctor.audio.echo.analysis import (
    BLOCK_BETA,
    FRAME,
    FS,
    MIN_REFERENCE_S,
    SILENT_PEAK,
    Prepared,
    coherence_levels,
    prepare,
    surrogates,
)
from doctor.audio.echo.dsp import (
    ABSOLUTE_SILENCE_POWER,
    Array,
    band_mask,
    frame_power,
    parabolic_peak,
)

BLOCK_S = 0.5  # short enough that a wander of a few ms per second stays inside one peak
MAX_LAG_S = 2.5  # as the shared-timeline window of the coherent detector
MIN_ACTIVE = 0.5  # a block is used when the reference is active this much of it
MIN_BLOCKS = 4  # 1.25 s of the agent's voice at least (blocks overlap by half)
STEP_PENALTY_PER_MS = 0.2  # z units per ms of step between consecutive blocks
# path z over the surrogates' best path z, 40 seeds each: wandering loops at ERL -30 dB over
# -50 dBFS (RMS) pink room noise at least 4.3; the app's own speech (another pitch contour)
# over that noise at most 2.48 (median 1.86): a thin margin on that side; the noise level
# hardly moves it (2.45 with none at -90 dBFS)
TRACK_ECHO_S = 2.5
MIN_LOOP_MS = 30.0  # a player, a microphone and a 10 ms chunk each way: never faster
STRONG_Z = 8.0  # blocks whose own peak is this clear give the delay range
SURROGATE_COUNT = 2
MAX_BLOCKS = 24  # spread over the window's active blocks: bounds the cost of a long one
Z_CAP = 100.0  # one block cannot carry a path (a capture that is mostly digital silence
# makes a spiky correlation curve whose robust z reaches hundreds)
MIN_CAPTURED = 0.5  # the capture must be more than digital silence this much of a block's reach
# the surrogates' path z was never below 3.6 (80 cases: speech, espeak, noise, loops), so a
# path under 2.5 x 3.0 cannot reach S 2.5 and the surrogates are not computed (a bound
# that can only miss a loop, never invent one)
NULL_FLOOR_Z = 3.0
MEDIAN_STRIDE = 5  # the robust z's median and MAD from every 5th lag: the same, cheaper


@dataclass(frozen=True)
class WanderingEcho:
    """What the tracker found; `verdict` as the coherent detector's values."""

    verdict: str
    score_s: float | None = None
    path_z: float | None = None
    null_z: float | None = None
    blocks: int = 0
    delay_ms: float | None = None  # median over the clear blocks
    delay_min_ms: float | None = None
    delay_max_ms: float | None = None
    drift_ms: float | None = None  # the delay at the end minus at the start
    erl_db: float | None = None
    software_loop: bool = False  # an echo under MIN_LOOP_MS: the app sends what it receives

    def evidence(self) -> dict[str, Any]:
        def r(v: float | None, nd: int = 1) -> float | None:
            return None if v is None else round(float(v), nd)

        return {
            "verdict": self.verdict,
            "score_s": r(self.score_s, 2),
            "threshold_s": TRACK_ECHO_S,
            "path_z": r(self.path_z),
            "null_z": r(self.null_z),
            "blocks": self.blocks,
            "delay_ms": r(self.delay_ms),
            "delay_range_ms": None
            if self.delay_min_ms is None
            else [r(self.delay_min_ms), r(self.delay_max_ms)],
            "drift_ms": r(self.drift_ms),
            "erl_db": r(self.erl_db),
            "software_loop": self.software_loop,
        }


@dataclass(frozen=True)
class _Path:
    lags: NDArray[np.int64]  # per block, lag index (= samples of delay)
    z: Array
    mean_z: float


class _BlockZ:
    """Robust z of |GCC-PHAT-beta| per block, lags 0..max_lag, against one capture whose
    block spectra are computed once for the reference and its surrogates."""

    def __init__(self, y: Array, starts: NDArray[np.int64], block: int, max_lag: int) -> None:
        from scipy import fft

        self.n_fft = int(fft.next_fast_len(block + max_lag + 1, real=True))
        self.mask = band_mask(self.n_fft)
        self.max_lag = max_lag
        ypad = np.concatenate([y, np.zeros(block + max_lag)])
        idx = starts[:, None] + np.arange(block + max_lag)[None, :]
        self.ys = fft.rfft(ypad[idx], self.n_fft, axis=1)[:, self.mask]
        self.xidx = starts[:, None] + np.arange(block)[None, :]

    def of(self, x: Array) -> NDArray[np.float32]:
        from scipy import fft

        xb = fft.rfft(x[self.xidx], self.n_fft, axis=1)[:, self.mask]
        cross = self.ys * np.conj(xb)
        mag = np.abs(cross)
        eps = 1e-12 * float(mag.max()) if mag.size and mag.max() > 0 else 1e-30
        full = np.zeros((len(self.xidx), self.n_fft // 2 + 1), dtype=np.complex128)
        full[:, self.mask] = cross / (mag**BLOCK_BETA + eps)
        curves = np.abs(fft.irfft(full, self.n_fft, axis=1)[:, : self.max_lag + 1])
        some = curves[:, ::MEDIAN_STRIDE]
        med = np.median(some, axis=1, keepdims=True)
        mad = 1.4826 * np.median(np.abs(some - med), axis=1, keepdims=True)
        z = (curves - med) / np.maximum(mad, 1e-30)
        return np.asarray(np.minimum(z, Z_CAP), dtype=np.float32)


def software_loop(delay_ms: float) -> bool:
    """Whether an echo this soon after playback can only be the app sending back what it
    receives: no player and microphone loop is that fast."""
    return delay_ms < MIN_LOOP_MS


def _running_max(h: Array) -> tuple[Array, NDArray[np.int64]]:
    """Running maximum of `h` and where it was reached."""
    m = np.maximum.accumulate(h)
    where = np.where(h >= m, np.arange(len(h)), 0)
    return m, np.maximum.accumulate(where).astype(np.int64)


def _best_path(z: NDArray[np.float32], gaps: Array) -> _Path:
    """Viterbi with an L1 step penalty: max over paths of sum z[b, lag_b] minus the penalty
    per sample of |lag_b - lag_{b-1}| (lowered across a pause: `gaps` in blocks). The
    distance transform is two running maxima, so each block costs O(lags)."""
    nb, nl = z.shape
    k = np.arange(nl, dtype=np.float64)
    acc = z[0].astype(np.float64)
    back = np.zeros((nb, nl), dtype=np.int32)
    for b in range(1, nb):
        pen = STEP_PENALTY_PER_MS * 1000.0 / FS / max(1.0, float(gaps[b]))
        fwd, fwd_i = _running_max(acc + pen * k)  # from below: acc[j] - pen (l - j), j <= l
        bwd, bwd_i = _running_max((acc - pen * k)[::-1])  # from above, on the reversed axis
        bwd, bwd_i = bwd[::-1], (nl - 1 - bwd_i)[::-1]
        from_lo = fwd - pen * k
        from_hi = bwd + pen * k
        use_lo = from_lo >= from_hi
        back[b] = np.where(use_lo, fwd_i, bwd_i)
        acc = np.where(use_lo, from_lo, from_hi) + z[b]
    lags = np.zeros(nb, dtype=np.int64)
    lags[-1] = int(np.argmax(acc))
    for b in range(nb - 1, 0, -1):
        lags[b - 1] = back[b, lags[b]]
    zp = z[np.arange(nb), lags].astype(np.float64)
    return _Path(lags, zp, float(zp.mean()))


def _aligned(x: Array, n: int, centres: Array, delays: Array) -> Array:
    """The reference moved onto the capture by the tracked delay: each capture sample takes
    the nearest block's (a gap steps the delay; a ramp between blocks would misalign both)."""
    t = np.arange(n, dtype=np.float64)
    at = centres + delays
    nearest = np.searchsorted((at[1:] + at[:-1]) / 2, t)
    d = delays[nearest]
    src = np.rint(t - d).astype(np.int64)
    ok = (src >= 0) & (src < len(x))
    out = np.zeros(n)
    out[ok] = x[src[ok]]
    return out


def track_prepared(p: Prepared) -> WanderingEcho:
    """The tracker on signals already at 8 kHz (`analysis.prepare`)."""
    if p.capture_peak < SILENT_PEAK:
        return WanderingEcho("mic_silent")
    if p.ref_active_s < MIN_REFERENCE_S:
        return WanderingEcho("insufficient_reference")
    x, y = p.x, p.y
    block = int(BLOCK_S * FS)
    max_lag = min(int(MAX_LAG_S * FS), len(y) - 1)
    candidates = np.arange(0, max(0, min(len(x), len(y)) - block) + 1, block // 2)
    act = p.ref_active
    captured = frame_power(y, FRAME) > ABSOLUTE_SILENCE_POWER
    reach = (block + max_lag) // FRAME
    keep = [
        s
        for s in candidates
        if act[s // FRAME : (s + block) // FRAME].mean() >= MIN_ACTIVE
        and captured[s // FRAME : s // FRAME + reach].sum() >= MIN_CAPTURED * reach
    ]
    if len(keep) > MAX_BLOCKS:
        keep = [keep[i] for i in np.linspace(0, len(keep) - 1, MAX_BLOCKS).round().astype(int)]
    if len(keep) < MIN_BLOCKS or max_lag < 16:
        return WanderingEcho("insufficient_reference", blocks=len(keep))
    starts = np.asarray(keep, dtype=np.int64)
    gaps = np.r_[1.0, np.diff(starts) / (block // 2)]
    blocks = _BlockZ(y, starts, block, max_lag)
    z0 = blocks.of(x)
    path = _best_path(z0, gaps)
    common: dict[str, Any] = {"path_z": path.mean_z, "blocks": len(starts)}
    if path.mean_z < TRACK_ECHO_S * NULL_FLOOR_Z:  # no null could be low enough: S < 2.5
        return WanderingEcho("no_echo", score_s=path.mean_z / NULL_FLOOR_Z, **common)
    null = 0.0
    for sur in surrogates(x, SURROGATE_COUNT):  # S only falls with each: stop once it is low
        null = max(null, _best_path(blocks.of(sur), gaps).mean_z)
        if path.mean_z / max(1.0, null) < TRACK_ECHO_S:
            break
    score = path.mean_z / max(1.0, null)
    common |= {"score_s": score, "null_z": null}
    if score < TRACK_ECHO_S:
        return WanderingEcho("no_echo", **common)
    delays = np.array(
        [
            float(parabolic_peak(z0[b].astype(np.float64), int(path.lags[b])))
            for b in range(len(starts))
        ]
    )
    clear = path.z >= STRONG_Z
    if clear.sum() < 2:
        clear = np.ones(len(delays), dtype=bool)
    d_ms = delays[clear] / FS * 1000
    median = float(np.median(d_ms))
    ends = max(1, min(3, len(d_ms) // 3))
    centres = starts.astype(np.float64) + block / 2
    x_al = _aligned(x, len(y), centres[clear], delays[clear])
    # the levels where the agent talked (Welch over all 20 s would cost more than the track)
    a, b = int(starts[0]), min(len(y), int(starts[-1]) + block + int(delays.max()) + 1)
    return WanderingEcho(
        "echo",
        **common,
        delay_ms=median,
        delay_min_ms=float(d_ms.min()),
        delay_max_ms=float(d_ms.max()),
        drift_ms=float(np.median(d_ms[-ends:]) - np.median(d_ms[:ends])),
        erl_db=coherence_levels(x_al[a:b], y[a:b]).erl_db,
        software_loop=software_loop(median),
    )


def track_echo(
    played: NDArray[np.generic],
    played_rate_hz: int,
    recorded: NDArray[np.generic],
    recorded_rate_hz: int,
) -> WanderingEcho:
    """Look for `played` inside `recorded` on one timeline, letting the delay wander."""
    return track_prepared(prepare(played, played_rate_hz, recorded, recorded_rate_hz))


def block_range(track: list[dict[str, float]], delay_ms: float) -> dict[str, Any]:
    """Delay range and drift from the coherent detector's own block track (its `delay_track`
    evidence), for a loop it found: the clear blocks within 50 ms of its delay."""
    d = [
        float(b["delay_ms"])
        for b in track
        if b.get("z", 0.0) >= STRONG_Z and abs(float(b["delay_ms"]) - delay_ms) <= 50.0
    ]
    if len(d) < 2:
        return {"delay_range_ms": None, "drift_ms": None}
    ends = max(1, min(3, len(d) // 3))
    drift = float(np.median(d[-ends:]) - np.median(d[:ends]))
    return {"delay_range_ms": [round(min(d), 1), round(max(d), 1)], "drift_ms": round(drift, 1)}
