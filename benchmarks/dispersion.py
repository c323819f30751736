"""Formant dispersion (mean formant spacing) of voiced speech, from the spectral envelope's
periodicity along linear frequency (pure, numpy only). Measurement only: see
`dispersion_gap.py`.

A uniform-ish vocal tract of length L has resonances spaced dF = c / (2 L): ~1000 Hz for a
man, ~1150-1200 for a woman, 1400+ for a child. Speech read at the wrong rate scales every
spacing by the same factor (x0.5 for 44.1/48 kHz read at 24). The spacing is a period of
the log envelope along LINEAR frequency, so a tilt (a dark or bright channel) that a
low-order polynomial removes should leave it, and it needs no formant tracking.

Per voiced frame: a cepstrally smoothed log spectrum (lifter below the pitch period, so
harmonics do not count as a spacing), detrended over the band by a cubic, its normalised
autocorrelation along frequency; averaged over frames. dF = the lag of the first local
maximum within DF_RANGE_HZ (and of the per-frame peaks, their median).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from doctor.audio.rate.features import HOP_S, PITCH_WINDOW_S, frames, pitch_frames

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    F64 = npt.NDArray[np.float64]

FRAME_S = 0.04
NFFT = 2048
BANDS = {"": (200.0, 5000.0), "_phone": (300.0, 3400.0)}  # at the label
MIN_PROMINENCE = 0.5  # nepers (~4 dB) above the surrounding envelope
MAX_LIFTER_S = 0.005  # tapered: resolves spacings down to ~400 Hz
LIFTER_OF_PERIOD = 1.0  # the taper is zero at the pitch period: harmonics are not a spacing
MAX_BELOW_TOP = 3.5  # nepers (30 dB): weaker peaks are the noise floor's ripple
DETREND_ORDER = 3
MAX_FRAMES = 300


def envelopes(x: F64, rate: int) -> tuple[F64, F64, F64] | None:
    """(freqs, cepstrally smoothed log envelopes of the voiced frames, their f0)."""
    import numpy as np

    f0, _ = pitch_frames(x, rate)
    idx = np.flatnonzero(np.isfinite(f0))
    if idx.size > MAX_FRAMES:
        idx = idx[np.linspace(0, idx.size - 1, MAX_FRAMES).astype(int)]
    size = int(FRAME_S * rate)
    hop = int(HOP_S * rate)
    offset = max(0, (int(PITCH_WINDOW_S * rate) - size) // 2)
    if x.size < offset + size:
        return None
    fr = frames(x[offset:], size, hop)
    idx = idx[idx < fr.shape[0]]
    if idx.size < 10:
        return None
    sel = fr[idx] * np.hanning(size)
    spec = np.abs(np.fft.rfft(sel, NFFT, axis=1)) ** 2
    logp = np.log(spec + 1e-10 * spec.max(axis=1, keepdims=True) + 1e-30)
    cep = np.fft.irfft(logp, NFFT, axis=1)
    q = np.arange(NFFT)
    q = np.minimum(q, NFFT - q) / rate
    cut = np.minimum(LIFTER_OF_PERIOD / f0[idx], MAX_LIFTER_S)[:, None]
    # a raised-cosine lifter: a rectangular one rings (Gibbs) at 1 / cut, a false spacing
    lift = np.where(q[None, :] < cut, 0.5 + 0.5 * np.cos(np.pi * q[None, :] / cut), 0.0)
    env = np.fft.rfft(cep * lift, NFFT, axis=1).real
    freqs = np.fft.rfftfreq(NFFT, 1.0 / rate)
    return freqs, env, f0[idx]


def peak_spacing(
    x: F64, rate: int, bands: dict[str, tuple[float, float]] | None = None
) -> dict[str, float]:
    """Per band: the envelope's peaks per voiced frame (prominence >= MIN_PROMINENCE nepers),
    the median over frames of (last - first) / (n - 1) where n >= 3 (Fitch's dispersion over
    the peaks found: no peak is named F1), the median consecutive spacing, the median count
    of peaks and the share of frames with three or more."""
    import numpy as np
    from scipy.signal import find_peaks

    got = envelopes(np.asarray(x, np.float64), rate)
    if got is None:
        return {}
    freqs, env, _ = got
    out: dict[str, float] = {}
    for name, (lo, hi) in (bands or BANDS).items():
        b = (freqs >= lo) & (freqs <= min(hi, 0.45 * rate))
        fb = freqs[b]
        disp, gaps, counts = [], [], []
        for e in env[:, b]:
            pk, _ = find_peaks(e, prominence=MIN_PROMINENCE)
            pk = pk[e[pk] >= e.max() - MAX_BELOW_TOP]
            counts.append(pk.size)
            if pk.size >= 3:
                disp.append((fb[pk[-1]] - fb[pk[0]]) / (pk.size - 1))
            if pk.size >= 2:
                gaps.extend(np.diff(fb[pk]))
        out[f"disp{name}"] = float(np.median(disp)) if disp else float("nan")
        out[f"gap{name}"] = float(np.median(gaps)) if gaps else float("nan")
        out[f"npk{name}"] = float(np.median(counts))
        out[f"share{name}"] = len(disp) / max(len(counts), 1)
    return out
