"""Formant dispersion (mean formant spacing) of voiced speech, from the peaks of its smoothed
spectral envelope (pure, numpy/scipy only). Measurement only: no rule of the doctor uses it;
`dispersion_gap.py` found no gap between true 24 kHz and slowed or 16 kHz sentences.

A uniform-ish vocal tract of length L has resonances spaced dF = c / (2 L): ~1000 Hz for a
man, ~1150-1200 for a woman, 1400+ for a child. Speech read at the wrong rate scales every
spacing by the same factor (x0.5 for 44.1/48 kHz read at 24), and a channel's tilt moves no
peak far, so the spacing should survive where formant positions and spectral tilt failed.

Per voiced frame (features.pitch_frames): a 40 ms log spectrum smoothed by a raised-cosine
cepstral lifter that reaches zero at the pitch period (at most MAX_LIFTER_S), so harmonics do
not count as a spacing; its peaks within a band at the label (prominence at least
spacing.MIN_PROMINENCE, within spacing.MAX_BELOW_TOP of the frame's highest: the noise floor's
ripple is not a formant). The lifter and the peaks are doctor/audio/rate/spacing.py's (the 8 kHz
rule's measure), with a longer lifter and a lower band. The sentence's spacing pools every
frame: sum of (last - first peak) over sum of (peaks - 1). No peak is named F1, so a slowed F1
under any floor miscounts nothing.
Tried first (issue 14 point 4, 2026-12-02), on five dev voices: the envelope's mean
autocorrelation along frequency (its first peak, 350-2400 Hz) had no usable peak (the
F1/F2 hump dominates it; 24, 48 and 16 kHz read alike); a rectangular 3 ms lifter rang
(Gibbs) at 1 / 3 ms, a false ~330 Hz spacing, and with it the per-frame median of the
peaks' spacing moved x0.75, not x0.5, from 24 to 48 kHz. The constants below were chosen
among 36 variants (lifter 5/8/11 ms, bands, prominence, floor; median, pooled, gap
statistics) on 25 train voices at 24/44.1/48 kHz under five conditions: true 24 kHz at
60-150 Hz min 727 against slowed p50 538, p90 622 there. Afterwards, on the stress dev
half's variants that scale F1-F5 alike: pooling only the louder half (or quarter) of the
voiced frames, or a stricter peak (0.5 Np, within 3 Np), lowered the oracle bound of
`dispersion_gap.py` from 90 % to 80-82 % and 65-67 %: more frames beat cleaner ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from doctor.audio.rate.spacing import frame_peaks, lifted, voiced_cepstra

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    F64 = npt.NDArray[np.float64]

BANDS = {"": (200.0, 3500.0), "_wide": (200.0, 5000.0)}  # at the label
MAX_LIFTER_S = 0.008  # tapered: resolves spacings down to ~300 Hz (a slowed woman: ~550)
MAX_FRAMES = 300
MIN_FRAMES = 10


def envelopes(x: F64, rate: int) -> tuple[F64, F64, F64] | None:
    """(freqs, cepstrally smoothed log envelopes of the voiced frames, their f0): the doctor's
    own measure (doctor/audio/rate/spacing.py) with a longer lifter, for slowed speech."""
    got = voiced_cepstra(x, rate, MAX_FRAMES, MIN_FRAMES)
    if got is None:
        return None
    cep, f0 = got
    freqs, env = lifted(cep, f0, rate, MAX_LIFTER_S)
    return freqs, env, f0


def peak_spacing(
    x: F64, rate: int, bands: dict[str, tuple[float, float]] | None = None
) -> dict[str, float]:
    """Per band: the envelope's peaks per voiced frame (spacing.frame_peaks). "disp": the pooled
    spacing, sum over frames of (last - first) / sum of (n - 1) (Fitch's dispersion over the
    peaks found: no peak is named F1); "dmed": the median over frames with n >= 3 of (last -
    first) / (n - 1); the median consecutive spacing, the median count of peaks, the share of
    frames with 3+."""
    import numpy as np

    got = envelopes(np.asarray(x, np.float64), rate)
    if got is None:
        return {}
    freqs, env, _ = got
    out: dict[str, float] = {}
    for name, (lo, hi) in (bands or BANDS).items():
        b = (freqs >= lo) & (freqs <= min(hi, 0.45 * rate))
        fb = freqs[b]
        disp, gaps, counts = [], [], []
        span, steps = 0.0, 0
        for pk in frame_peaks(env[:, b]):
            counts.append(pk.size)
            if pk.size >= 3:
                disp.append((fb[pk[-1]] - fb[pk[0]]) / (pk.size - 1))
            if pk.size >= 2:
                gaps.extend(np.diff(fb[pk]))
                span += fb[pk[-1]] - fb[pk[0]]
                steps += pk.size - 1
        # pooled: every frame's peaks weigh by their count (a frame of two peaks counts once)
        out[f"disp{name}"] = float(span / steps) if steps else float("nan")
        out[f"dmed{name}"] = float(np.median(disp)) if disp else float("nan")
        out[f"gap{name}"] = float(np.median(gaps)) if gaps else float("nan")
        out[f"npk{name}"] = float(np.median(counts))
        out[f"share{name}"] = len(disp) / max(len(counts), 1)
    return out
