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


def wide_spacing(x: F64, rate: int) -> float | None:
    """The pooled peak spacing (Hz at `rate`) over BAND_HZ, or None with too little voice."""
    import numpy as np
    from scipy.signal import find_peaks

    x = np.asarray(x, np.float64)
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
    if idx.size < MIN_FRAMES:
        return None
    sel = fr[idx] * np.hanning(size)
    spec = np.abs(np.fft.rfft(sel, NFFT, axis=1)) ** 2
    logp = np.log(spec + 1e-10 * spec.max(axis=1, keepdims=True) + 1e-30)
    cep = np.fft.irfft(logp, NFFT, axis=1)
    k = np.arange(NFFT)
    q = np.minimum(k, NFFT - k) / rate
    cut = np.minimum(1.0 / f0[idx], MAX_LIFTER_S)[:, None]
    # raised cosine: a rectangular lifter rings (Gibbs) at 1 / cut, a false spacing
    lift = np.where(q[None, :] < cut, 0.5 + 0.5 * np.cos(np.pi * q[None, :] / cut), 0.0)
    freqs = np.fft.rfftfreq(NFFT, 1.0 / rate)
    band = (freqs >= BAND_HZ[0]) & (freqs <= min(BAND_HZ[1], 0.45 * rate))
    env = np.fft.rfft(cep * lift, NFFT, axis=1).real[:, band]
    fb = freqs[band]
    span, steps = 0.0, 0
    for e in env:
        pk, _ = find_peaks(e, prominence=MIN_PROMINENCE)
        pk = pk[e[pk] >= e.max() - MAX_BELOW_TOP]
        if pk.size >= 2:
            span += float(fb[pk[-1]] - fb[pk[0]])
            steps += pk.size - 1
    return span / steps if steps else None
