"""Estimate the true sample rate of speech from the signal itself (pure).

Audio captured at R Hz but read at L Hz has every frequency scaled by s = L / R: the voice
pitch, the formant region, the syllable rate all move together. We measure those three
things at the labelled rate and ask, for each candidate R, how ordinary the speech would
be once scaled back (log-normal models of adult speech). A band edge that lands on a
common Nyquist frequency once scaled back (audio that was resampled before) adds
evidence. The answer is a posterior over candidate rates, tempered because the cues are
correlated (a high voice has both a higher pitch and higher formants), so its confidence
is honest rather than flattering. Non-speech (tones, noise, music) is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

CANDIDATES_HZ = (8000, 16000, 22050, 24000, 44100, 48000)
COMMON_NYQUIST_HZ = (4000.0, 8000.0, 11025.0, 12000.0, 16000.0, 22050.0, 24000.0)

# log-normal models of adult speech features at the true rate: (median, log sd)
F0_MODEL = (145.0, 0.35)
MEDIAN_FREQ_MODEL = (600.0, 0.35)
SYLLABLE_MODEL = (4.5, 0.45)
TEMPERATURE = 2.0  # the cues are not independent: flatten the joint likelihood
PRIOR_LABELLED = 0.4  # most audio is at the rate it claims
EDGE_BONUS = 1.2  # log-likelihood for a band edge that scales back onto a common Nyquist
MIN_VOICED_FRAMES = 15


@dataclass
class RateEstimate:
    rate_hz: int | None  # None: could not estimate (not speech, too short)
    confidence: float
    posterior: dict[int, float] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimated_rate_hz": self.rate_hz,
            "confidence": round(self.confidence, 3),
            "posterior": {str(k): round(v, 4) for k, v in self.posterior.items()},
            "features": self.features,
            "reason": self.reason,
        }


def _frames(x: npt.NDArray[np.float64], size: int, hop: int) -> npt.NDArray[np.float64]:
    import numpy as np

    n = 1 + max(0, (x.size - size) // hop)
    idx = np.arange(size)[None, :] + hop * np.arange(n)[:, None]
    out: npt.NDArray[np.float64] = x[idx]
    return out


def pitch_track(
    x: npt.NDArray[np.float64], rate: int, fmin: float = 40.0, fmax: float = 1300.0
) -> tuple[npt.NDArray[np.float64], int]:
    """YIN-style F0 (Hz at `rate`) of voiced frames, and the number of active frames."""
    import numpy as np

    # Work at <= 12 kHz: pitch needs no more and it halves the cost.
    if rate > 13000:
        x = _half_band_decimate(x)
        rate = rate // 2
    size = int(0.06 * rate)
    hop = int(0.02 * rate)
    if x.size < size * 3:
        return np.zeros(0), 0
    fr = _frames(x, size, hop)
    fr = fr - fr.mean(axis=1, keepdims=True)
    energy = np.einsum("ij,ij->i", fr, fr)
    top = np.percentile(energy, 95) if energy.size else 0.0
    active = energy > max(top * 10 ** (-3.5), 1e-10 * size)  # within 35 dB of loud frames
    fr = fr[active]
    if fr.shape[0] == 0:
        return np.zeros(0), 0
    # in batches of frames: bounded memory whatever the duration
    parts = [_yin(fr[i : i + 256], rate, size, fmin, fmax) for i in range(0, fr.shape[0], 256)]
    return np.concatenate(parts), int(active.sum())


def _half_band_decimate(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Low-pass (windowed sinc, 63 taps) and keep every other sample: numpy only."""
    import numpy as np

    n = np.arange(-31, 32)
    h = np.sinc(n / 2) / 2 * np.hamming(63)
    y: npt.NDArray[np.float64] = np.convolve(x, h, mode="same")[::2]
    return y


def _yin(
    fr: npt.NDArray[np.float64], rate: int, size: int, fmin: float, fmax: float
) -> npt.NDArray[np.float64]:
    import numpy as np

    nfft = 1 << math.ceil(math.log2(2 * size))
    spec = np.fft.rfft(fr, nfft, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, nfft, axis=1)[:, :size]
    tmin = max(2, int(rate / fmax))
    tmax = min(size - 2, int(rate / fmin))
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
    has = below.any(axis=1)
    first = np.where(has, below.argmax(axis=1), region.argmin(axis=1))
    # walk to the local minimum after the first dip under the threshold
    lag = first.copy()
    rows = np.arange(region.shape[0])
    for _ in range(int(rate / 1000) + 4):
        nxt = np.minimum(lag + 1, region.shape[1] - 1)
        better = region[rows, nxt] < region[rows, lag]
        if not better.any():
            break
        lag = np.where(better, nxt, lag)
    val = region[rows, lag]
    voiced = val < 0.25
    t = (lag + tmin).astype(np.float64)
    # parabolic interpolation around the minimum
    left = region[rows, np.maximum(lag - 1, 0)]
    right = region[rows, np.minimum(lag + 1, region.shape[1] - 1)]
    den = left - 2 * val + right
    t = t + np.where(np.abs(den) > 1e-12, 0.5 * (left - right) / np.where(den == 0, 1, den), 0)
    f0 = rate / np.maximum(t, 1.0)
    out: npt.NDArray[np.float64] = f0[voiced]
    return out


def spectrum_features(x: npt.NDArray[np.float64], rate: int) -> dict[str, float]:
    """Median frequency of speech power and the band edge (Hz at `rate`)."""
    import numpy as np

    nper = 1024 if rate >= 16000 else 512
    if x.size < nper * 2:
        return {}
    # Average over active frames only: pauses would otherwise pull the spectrum to the floor.
    fr = _frames(x, nper, nper // 2) * np.hanning(nper)[None, :]
    e = np.einsum("ij,ij->i", fr, fr)
    keep = np.flatnonzero(e > np.percentile(e, 90) * 10 ** (-3.0))
    acc = np.zeros(nper // 2 + 1)
    for i in range(0, keep.size, 256):  # batches: bounded memory
        acc += (np.abs(np.fft.rfft(fr[keep[i : i + 256]], axis=1)) ** 2).sum(axis=0)
    p = acc / max(keep.size, 1) / (rate * nper)
    f = np.fft.rfftfreq(nper, 1.0 / rate)
    p = np.maximum(p, 1e-20)
    lo = f >= 60.0
    cum = np.cumsum(p[lo])
    median = float(f[lo][np.searchsorted(cum, cum[-1] * 0.5)])
    pdb = 10 * np.log10(p)
    smooth = np.convolve(pdb, np.ones(5) / 5, mode="same")
    # Band edge: the sharpest large drop (> 25 dB over ~300 Hz) above which the spectrum
    # stays low; a resampled or band-limited source leaves one, full-band audio does not.
    w = max(2, int(500.0 / (f[1] - f[0])))
    edge, drop = float(f[-1]), 0.0
    hi = smooth.size - 2 * w
    if hi > w:
        csum = np.concatenate([[0.0], np.cumsum(smooth)])
        idx = np.arange(w, hi)
        before = (csum[idx] - csum[idx - w]) / w
        after = (csum[idx + w] - csum[idx]) / w
        rest_max = np.maximum.accumulate(smooth[::-1])[::-1][idx + w]
        drops = before - after
        band_top = np.maximum.accumulate(smooth)[idx]
        ok = (drops > 20.0) & (rest_max < band_top - 30.0)
        if ok.any():
            i = int(np.argmax(np.where(ok, drops, -np.inf)))
            drop = float(drops[i])
            # the edge: where the level first falls 10 dB under the band just before the drop
            k = int(idx[i])
            under = np.flatnonzero(smooth[k - w : k + w] < before[i] - 10.0)
            edge = float(f[k - w + int(under[0])]) if under.size else float(f[k])
    return {
        "median_freq_hz": median,
        "band_edge_hz": edge,
        "nyquist_hz": rate / 2.0,
        "edge_drop_db": drop,
    }


def syllable_rate(x: npt.NDArray[np.float64], rate: int) -> float | None:
    """Peak of the envelope modulation spectrum, 1-24 Hz (Hz at `rate`)."""
    import numpy as np

    hop = max(1, int(rate * 0.01))
    n = x.size // hop
    if n < 200:
        return None
    env = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1))
    env = np.log(env + max(float(env.max()) * 1e-3, 1e-9))
    env = env - env.mean()
    spec = np.abs(np.fft.rfft(env * np.hanning(env.size), 1 << 14)) ** 2
    freqs = np.fft.rfftfreq(1 << 14, 0.01)
    band = (freqs >= 1.0) & (freqs <= 24.0)
    if not band.any():
        return None
    # smooth over 0.5 Hz: the modulation spectrum of speech is a broad hump
    k = max(1, int(0.5 / (freqs[1] - freqs[0])))
    sm = np.convolve(spec, np.ones(k) / k, mode="same")
    # weight by frequency to undo the 1/f tilt of envelope spectra
    weighted = sm[band] * freqs[band]
    return float(freqs[band][int(np.argmax(weighted))])


def _gauss(value: float, model: tuple[float, float]) -> float:
    mu, sd = model
    z = (math.log(value) - math.log(mu)) / sd
    return -0.5 * z * z


def estimate_rate(x: npt.NDArray[Any], labelled_hz: int = 24000) -> RateEstimate:
    """Posterior over `CANDIDATES_HZ` for speech `x` that claims to be at `labelled_hz`."""
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    if x.size < labelled_hz:
        return RateEstimate(None, 0.0, reason="less than a second of audio")
    f0s, active = pitch_track(x, labelled_hz)
    spec = spectrum_features(x, labelled_hz)
    syl = syllable_rate(x, labelled_hz)
    feats: dict[str, Any] = {"voiced_frames": int(f0s.size), "active_frames": active}
    if f0s.size < MIN_VOICED_FRAMES or not spec:
        return RateEstimate(None, 0.0, features=feats, reason="too little voiced speech")
    f0 = float(np.median(f0s))
    spread = float(np.std(np.log(f0s)))
    voiced_share = f0s.size / max(active, 1)
    feats.update(
        {
            "f0_hz": round(f0, 1),
            "f0_log_spread": round(spread, 3),
            "voiced_share": round(voiced_share, 3),
            "median_freq_hz": round(spec["median_freq_hz"], 1),
            "band_edge_hz": round(spec["band_edge_hz"], 1),
            "syllable_rate_hz": None if syl is None else round(syl, 2),
        }
    )
    if spread < 0.015 or voiced_share > 0.97:
        return RateEstimate(
            None, 0.0, features=feats, reason="steady pitch: a tone or music, not speech"
        )
    has_edge = spec["band_edge_hz"] < 0.95 * spec["nyquist_hz"] and spec["edge_drop_db"] > 25
    logs: dict[int, float] = {}
    for cand in CANDIDATES_HZ:
        s = labelled_hz / cand
        ll = _gauss(f0 / s, F0_MODEL) + _gauss(spec["median_freq_hz"] / s, MEDIAN_FREQ_MODEL)
        if syl is not None:
            ll += _gauss(syl / s, SYLLABLE_MODEL)
        ll /= TEMPERATURE
        if has_edge:
            true_edge = spec["band_edge_hz"] / s
            if any(abs(true_edge / n - 1) < 0.06 for n in COMMON_NYQUIST_HZ if n < cand / 2):
                ll += EDGE_BONUS
        prior = (
            PRIOR_LABELLED
            if cand == labelled_hz
            else (1 - PRIOR_LABELLED) / (len(CANDIDATES_HZ) - (labelled_hz in CANDIDATES_HZ))
        )
        logs[cand] = ll + math.log(prior)
    peak = max(logs.values())
    total = sum(math.exp(v - peak) for v in logs.values())
    post = {k: math.exp(v - peak) / total for k, v in logs.items()}
    best = max(post, key=lambda k: post[k])
    return RateEstimate(
        best,
        post[best],
        post,
        feats,
        f"pitch {f0:.0f} Hz, speech power median {spec['median_freq_hz']:.0f} Hz"
        + (f", syllables {syl:.1f}/s" if syl else "")
        + " at the labelled rate",
    )
