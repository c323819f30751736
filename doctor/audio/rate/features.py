"""Measure the cues that move when speech is read at the wrong sample rate (pure, numpy only).

Audio captured at R Hz and read at L Hz has every frequency multiplied by s = L / R and every
duration divided by s. We measure, in physical units at the labelled rate, what speech fixes
within a known range: the voice pitch, the shape of the voiced spectrum (pre-emphasised, so
the formant region dominates), how long voiced stretches last and how fast the loudness
envelope moves (syllable and phoneme rhythm). `doctor.audio.rate.estimate` turns them into a
posterior over candidate rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    F64 = npt.NDArray[np.float64]

HOP_S = 0.02  # one analysis frame every 20 ms (pitch, voicing, spectrum share the grid)
PITCH_WINDOW_S = 0.06
F0_MIN_HZ = 30.0  # 48 kHz speech read at 24 kHz halves a low voice to about 40 Hz
F0_MAX_HZ = 1300.0  # 8 kHz speech read at 24 kHz triples a high voice
SPECTRUM_BAND_HZ = (150.0, 5000.0)  # below the band edges resampling chains leave
SPECTRUM_QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90)
MODULATION_BAND_HZ = (1.0, 40.0)
MIN_RUN_S = 0.04  # voiced stretches shorter than two frames are tracker noise
BATCH = 256  # frames per FFT batch: memory stays bounded whatever the duration


@dataclass(frozen=True)
class SpeechFeatures:
    f0_hz: float  # median pitch of voiced frames
    f0_log_spread: float
    spectrum_quantiles_hz: tuple[float, ...]  # of the voiced, pre-emphasised spectrum
    modulation_hz: float  # centroid of the loudness envelope's modulation spectrum
    voiced_run_s: float  # mean length of a voiced stretch
    voiced_frames: int
    active_frames: int
    band_edge_hz: float | None  # a sharp band limit below Nyquist (resampled audio)

    @property
    def voiced_share(self) -> float:
        return self.voiced_frames / max(self.active_frames, 1)


def frames(x: F64, size: int, hop: int) -> F64:
    import numpy as np

    n = 1 + max(0, (x.size - size) // hop)
    idx = np.arange(size)[None, :] + hop * np.arange(n)[:, None]
    out: F64 = x[idx]
    return out


def half_band_decimate(x: F64) -> F64:
    """Low-pass (windowed sinc, 63 taps) and keep every other sample: numpy only."""
    import numpy as np

    n = np.arange(-31, 32)
    h = np.sinc(n / 2) / 2 * np.hamming(63)
    y: F64 = np.convolve(x, h, mode="same")[::2]
    return y


def pitch_frames(x: F64, rate: int) -> tuple[F64, npt.NDArray[np.bool_]]:
    """YIN-style F0 per 20 ms frame (NaN where unvoiced) and which frames are active."""
    import numpy as np

    if rate > 13000:  # pitch needs no more than 6 kHz of band; halving halves the cost
        x = half_band_decimate(x)
        rate = rate // 2
    size = int(PITCH_WINDOW_S * rate)
    hop = int(HOP_S * rate)
    if x.size < size * 3:
        return np.zeros(0), np.zeros(0, bool)
    fr = frames(x, size, hop)
    fr = fr - fr.mean(axis=1, keepdims=True)
    energy = np.einsum("ij,ij->i", fr, fr)
    top = float(np.percentile(energy, 95))
    active = energy > max(top * 10 ** (-3.5), 1e-10 * size)  # within 35 dB of loud frames
    f0 = np.full(fr.shape[0], np.nan)
    idx = np.flatnonzero(active)
    for i in range(0, idx.size, BATCH):
        sel = idx[i : i + BATCH]
        f0[sel] = _yin(fr[sel], rate, size)
    return f0, active


def _yin(fr: F64, rate: int, size: int) -> F64:
    import numpy as np

    nfft = 1 << math.ceil(math.log2(2 * size))
    spec = np.fft.rfft(fr, nfft, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, nfft, axis=1)[:, :size]
    tmin = max(2, int(rate / F0_MAX_HZ))
    tmax = min(size - 2, int(rate / F0_MIN_HZ))
    # simplified YIN difference: d(t) = 2 (r(0) - r(t)), with a window-shrink correction
    r0 = ac[:, :1]
    scale = size / (size - np.arange(size))[None, :]
    d = 2.0 * (r0 - ac * scale)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1) / np.arange(1, size)[None, :]
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] / np.maximum(cum, 1e-12)
    region = cmnd[:, tmin:tmax]
    below = region < 0.2
    lag = np.where(below.any(axis=1), below.argmax(axis=1), region.argmin(axis=1))
    rows = np.arange(region.shape[0])
    for _ in range(int(rate / 1000) + 4):  # walk down to the local minimum
        nxt = np.minimum(lag + 1, region.shape[1] - 1)
        better = region[rows, nxt] < region[rows, lag]
        if not better.any():
            break
        lag = np.where(better, nxt, lag)
    val = region[rows, lag]
    left = region[rows, np.maximum(lag - 1, 0)]
    right = region[rows, np.minimum(lag + 1, region.shape[1] - 1)]
    den = left - 2 * val + right
    t = (lag + tmin) + np.where(
        np.abs(den) > 1e-12, 0.5 * (left - right) / np.where(den == 0, 1, den), 0
    )
    out: F64 = np.where(val < 0.25, rate / np.maximum(t, 1.0), np.nan)
    return out


def voiced_spectrum(x: F64, rate: int, voiced: npt.NDArray[np.bool_]) -> tuple[F64, F64]:
    """Mean normalised power spectrum of the voiced frames, pre-emphasised (freqs, power)."""
    import numpy as np

    nper = 1 << max(8, round(math.log2(0.043 * rate)))  # ~43 ms: resolves formants, not F0
    hop = int(HOP_S * rate)
    # centre each spectrum frame on its pitch frame
    offset = max(0, (int(PITCH_WINDOW_S * rate) - nper) // 2)
    y = np.empty_like(x)
    y[0] = x[0]
    y[1:] = x[1:] - 0.95 * x[:-1]
    fr = frames(y[offset:], nper, hop)
    sel = np.flatnonzero(voiced[: fr.shape[0]])
    win = np.hanning(nper)
    acc = np.zeros(nper // 2 + 1)
    for i in range(0, sel.size, BATCH):
        p = np.abs(np.fft.rfft(fr[sel[i : i + BATCH]] * win, axis=1)) ** 2
        acc += (p / np.maximum(p.sum(axis=1, keepdims=True), 1e-30)).sum(axis=0)
    freqs: F64 = np.fft.rfftfreq(nper, 1.0 / rate).astype(np.float64)
    return freqs, acc / max(sel.size, 1)


def spectrum_quantiles(f: F64, p: F64, rate: int) -> tuple[float, ...]:
    import numpy as np

    lo, hi = SPECTRUM_BAND_HZ[0], min(SPECTRUM_BAND_HZ[1], 0.45 * rate)
    band = (f >= lo) & (f <= hi)
    cum = np.cumsum(p[band])
    if cum.size < 2 or cum[-1] <= 0:
        return ()
    cum = cum / cum[-1]
    return tuple(float(np.interp(q, cum, f[band])) for q in SPECTRUM_QUANTILES)


def modulation_centroid(x: F64, rate: int) -> float | None:
    """Geometric centroid (Hz) of the log-loudness envelope's modulation spectrum, 1-40 Hz.

    Weighted by frequency to undo the 1/f tilt of envelope spectra. It follows the rhythm
    of syllables and phonemes, which a wrong rate speeds up or slows down.
    """
    import numpy as np

    hop = max(1, int(rate * 0.005))
    n = x.size // hop
    if n < 200:
        return None
    env = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1))
    env = np.log(env + max(float(env.max()) * 1e-3, 1e-9))
    env = env - env.mean()
    nfft = 1 << max(14, math.ceil(math.log2(n)))
    spec = np.abs(np.fft.rfft(env * np.hanning(n), nfft)) ** 2
    freqs = np.fft.rfftfreq(nfft, 0.005)
    band = (freqs >= MODULATION_BAND_HZ[0]) & (freqs <= MODULATION_BAND_HZ[1])
    w = spec[band] * freqs[band]
    if float(w.sum()) <= 0:
        return None
    return float(np.exp(np.sum(w * np.log(freqs[band])) / np.sum(w)))


def voiced_run_s(voiced: npt.NDArray[np.bool_]) -> float | None:
    import numpy as np

    v = np.concatenate([[False], voiced, [False]]).astype(np.int8)
    edges = np.diff(v)
    runs = (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)) * HOP_S
    runs = runs[runs >= MIN_RUN_S]
    return float(runs.mean()) if runs.size else None


def band_edge(x: F64, rate: int) -> float | None:
    """A sharp, deep band limit below Nyquist (Hz), as resampling from a lower rate leaves."""
    import numpy as np

    nper = 1024 if rate >= 16000 else 512
    if x.size < nper * 2:
        return None
    fr = frames(x, nper, nper // 2)
    e = np.einsum("ij,ij->i", fr, fr)
    keep = np.flatnonzero(e > np.percentile(e, 90) * 10 ** (-3.0))
    win = np.hanning(nper)
    acc = np.zeros(nper // 2 + 1)
    for i in range(0, keep.size, BATCH):
        acc += (np.abs(np.fft.rfft(fr[keep[i : i + BATCH]] * win, axis=1)) ** 2).sum(axis=0)
    f = np.fft.rfftfreq(nper, 1.0 / rate)
    pdb = 10 * np.log10(np.maximum(acc / max(keep.size, 1) / (rate * nper), 1e-20))
    smooth = np.convolve(pdb, np.ones(5) / 5, mode="same")
    # the sharpest large drop (> 20 dB over ~500 Hz) above which the spectrum stays low
    w = max(2, int(500.0 / (f[1] - f[0])))
    hi = smooth.size - 2 * w
    if hi <= w:
        return None
    csum = np.concatenate([[0.0], np.cumsum(smooth)])
    idx = np.arange(w, hi)
    before = (csum[idx] - csum[idx - w]) / w
    after = (csum[idx + w] - csum[idx]) / w
    rest_max = np.maximum.accumulate(smooth[::-1])[::-1][idx + w]
    drops = before - after
    band_top = np.maximum.accumulate(smooth)[idx]
    ok = (drops > 25.0) & (rest_max < band_top - 30.0)
    if not ok.any():
        return None
    i = int(np.argmax(np.where(ok, drops, -np.inf)))
    k = int(idx[i])
    under = np.flatnonzero(smooth[k - w : k + w] < before[i] - 10.0)
    edge = float(f[k - w + int(under[0])]) if under.size else float(f[k])
    return edge if edge < 0.95 * rate / 2 else None


def measure(x: F64, rate: int) -> SpeechFeatures | str:
    """The cues of speech `x` read at `rate`, or why they cannot be measured."""
    import numpy as np

    f0, active = pitch_frames(x, rate)
    voiced = np.isfinite(f0)
    n_voiced = int(voiced.sum())
    if n_voiced < 15:
        return "too little voiced speech"
    f0v = f0[voiced]
    freqs, power = voiced_spectrum(x, rate, voiced)
    quantiles = spectrum_quantiles(freqs, power, rate)
    mod = modulation_centroid(x, rate)
    run = voiced_run_s(voiced)
    if not quantiles or mod is None or run is None:
        return "too little voiced speech"
    return SpeechFeatures(
        f0_hz=float(np.median(f0v)),
        f0_log_spread=float(np.std(np.log(f0v))),
        spectrum_quantiles_hz=quantiles,
        modulation_hz=mod,
        voiced_run_s=run,
        voiced_frames=n_voiced,
        active_frames=int(active.sum()),
        band_edge_hz=band_edge(x, rate),
    )
