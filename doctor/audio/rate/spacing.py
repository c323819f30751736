"""Wide-band formant spacing of voiced speech at the labelled rate (pure, numpy/scipy only).

Speech read three times too fast (8 kHz audio labelled 24 kHz) triples every resonance
spacing of the vocal tract: an adult's ~1000-1200 Hz reads ~3000-3600 Hz, while a child or
a high woman at the true rate stays near 1400-1900 Hz, and a channel's tilt moves no peak
far. Per voiced frame: a 40 ms log spectrum smoothed by a raised-cosine cepstral lifter that
reaches zero at the pitch period (at most MAX_LIFTER_S: harmonics are not a spacing), its
peaks over BAND_HZ (prominence >= MIN_PROMINENCE nepers, within MAX_BELOW_TOP of the frame's
highest); the clip's spacing pools the frames: sum of (last - first peak) over sum of
(peaks - 1). Measured in benchmarks/fast_spacing.py (issue 14 point 4); the lifter 3.5 ms
was chosen among 1.5, 2, 2.5 and 3.5 ms there (above 280 Hz it is the pitch period).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from doctor.audio.rate.features import HOP_S, PITCH_WINDOW_S, frames, pitch_frames

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    F64 = npt.NDArray[np.float64]

FRAME_S = 0.04
NFFT = 2048
BAND_HZ = (300.0, 11000.0)  # at the label: 8 kHz audio's 100-3670 Hz read x3
MAX_LIFTER_S = 0.0035
MIN_PROMINENCE = 0.3  # nepers (~2.6 dB) above the surrounding envelope
MAX_BELOW_TOP = 4.5  # nepers (39 dB): weaker peaks are the noise floor's ripple
MAX_FRAMES = 150  # evenly spread over the voiced frames: the cost stays flat
MIN_FRAMES = 20  # voiced frames for a track that holds


def voiced_cepstra(
    x: F64,
    rate: int,
    max_frames: int = MAX_FRAMES,
    min_frames: int = MIN_FRAMES,
    f0: F64 | None = None,
) -> tuple[F64, F64] | None:
    """(real cepstra of the 40 ms log spectra of up to `max_frames` voiced frames, evenly
    spread, and their f0), or None under `min_frames` voiced frames: a track that holds.
    `f0`: the clip's pitch track (features.pitch_frames), if the caller has it already."""
    import numpy as np

    x = np.asarray(x, np.float64)
    if f0 is None:
        f0, _ = pitch_frames(x, rate)
    idx = np.flatnonzero(np.isfinite(f0))
    if idx.size > max_frames:
        idx = idx[np.linspace(0, idx.size - 1, max_frames).astype(int)]
    size = int(FRAME_S * rate)
    hop = int(HOP_S * rate)
    offset = max(0, (int(PITCH_WINDOW_S * rate) - size) // 2)
    if x.size < offset + size:
        return None
    fr = frames(x[offset:], size, hop)
    idx = idx[idx < fr.shape[0]]
    if idx.size < min_frames:
        return None
    sel = fr[idx] * np.hanning(size)
    spec = np.abs(np.fft.rfft(sel, NFFT, axis=1)) ** 2
    logp = np.log(spec + 1e-10 * spec.max(axis=1, keepdims=True) + 1e-30)
    return np.asarray(np.fft.irfft(logp, NFFT, axis=1), np.float64), f0[idx]


def lifted(cep: F64, f0: F64, rate: int, max_lifter_s: float) -> tuple[F64, F64]:
    """(freqs, log envelopes): each cepstrum under a raised-cosine lifter that reaches zero
    at its pitch period, or at `max_lifter_s` (harmonics are not a spacing; a rectangular
    lifter rings, Gibbs, at 1 / cut: a false spacing)."""
    import numpy as np

    k = np.arange(NFFT)
    q = np.minimum(k, NFFT - k) / rate
    cut = np.minimum(1.0 / f0, max_lifter_s)[:, None]
    lift = np.where(q[None, :] < cut, 0.5 + 0.5 * np.cos(np.pi * q[None, :] / cut), 0.0)
    env = np.asarray(np.fft.rfft(cep * lift, NFFT, axis=1).real, np.float64)
    return np.asarray(np.fft.rfftfreq(NFFT, 1.0 / rate), np.float64), env


def frame_peaks(env: F64) -> list[npt.NDArray[np.intp]]:
    """Per frame, its envelope's peaks (prominence >= MIN_PROMINENCE nepers, within
    MAX_BELOW_TOP of the frame's highest: the noise floor's ripple is not a formant)."""
    from scipy.signal import find_peaks

    out = []
    for e in env:
        pk, _ = find_peaks(e, prominence=MIN_PROMINENCE)
        out.append(pk[e[pk] >= e.max() - MAX_BELOW_TOP])
    return out


def wide_spacing(x: F64, rate: int) -> float | None:
    """The pooled peak spacing (Hz at `rate`) over BAND_HZ, or None with too little voice."""
    got = voiced_cepstra(x, rate)
    if got is None:
        return None
    freqs, env = lifted(*got, rate, MAX_LIFTER_S)
    band = (freqs >= BAND_HZ[0]) & (freqs <= min(BAND_HZ[1], 0.45 * rate))
    fb = freqs[band]
    span, steps = 0.0, 0
    for pk in frame_peaks(env[:, band]):
        if pk.size >= 2:
            span += float(fb[pk[-1]] - fb[pk[0]])
            steps += pk.size - 1
    return span / steps if steps else None
