"""The third formant of voiced speech, from linear prediction (pure, numpy only).

Measurement only (`f3_gap.py`); no rule of the doctor uses it. It came from branch `rate16`
(0f56a80), where a rule for 16 kHz read at 24 kHz (a man's F3 x1.5, near 3.7 kHz) was
built on `third_formant_hz` and reverted (1b8da09: child-like, bright or clipped 24 kHz
voices crossed its line). Issue 14 then asked whether F3 separates 44.1/48 kHz speech read
at 24 kHz (x0.5: a slowed woman has a man's pitch, and an F3 near 1.5 kHz no adult tract
has) from true 24 kHz speech. Three analyses were measured (`f3_gap.py`): the rate16 one,
one scaled to a voice captured at twice the label, and a low-band one; on one sentence
each class's F3 overlapped the other's (espeak voices such as pl+Marco, fr+Lee, tr+ed read
as low at 24 kHz as slowed women do), so no threshold keeps 24 kHz free of claims.

Why F3 at all: it follows the length of the vocal tract and little else (the vowel moves
F1 and F2 far more). Adults' F3 sits near 2.5 kHz (men) to 3 kHz (women).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from doctor.audio.rate.features import HOP_S, frames, half_band_decimate

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    F64 = npt.NDArray[np.float64]

FRAME_S = 0.03  # a few pitch periods: the formants, not the harmonics
MAX_BANDWIDTH_HZ = 400.0  # a resonance, not a broad tilt of the spectrum
FORMANT_BAND_HZ = (200.0, 5500.0)
MIN_FRAMES = 10  # voiced frames with three resonances: fewer cannot give a median
MAX_FRAMES = 400  # 8 s of voiced speech is plenty; bounds the cost on long input


def lpc(fr: F64, order: int) -> F64:
    """Prediction coefficients a[1..order] per row (x[n] ~ sum a[k] x[n-k]), Levinson."""
    import numpy as np

    n = fr.shape[1]
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    spec = np.fft.rfft(fr, nfft, axis=1)
    r = np.fft.irfft(np.abs(spec) ** 2, nfft, axis=1)[:, : order + 1]
    r[:, 0] *= 1.0001  # a little white noise keeps the recursion stable
    a = np.zeros((fr.shape[0], order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, order + 1):
        acc = np.einsum("ij,ij->i", a[:, :i], r[:, i:0:-1])
        k = -acc / np.maximum(err, 1e-30)
        a[:, 1 : i + 1] = a[:, 1 : i + 1] + k[:, None] * a[:, i - 1 :: -1][:, :i]
        err = err * (1 - k * k)
    out: F64 = -a[:, 1:]
    return out


def flatten_tilt(x: F64) -> F64:
    """`x` without its own spectral tilt (first-order prediction over the whole sample).

    A fixed pre-emphasis leaves a bright channel's tilt in place, and LPC then puts F3
    higher: with +8 dB at 4 kHz a woman's 24 kHz sentence read 3.69 kHz (3.3 clean).
    Removing the sample's own tilt kept the 24 kHz maximum at 3.5 kHz under that channel.
    """
    import numpy as np

    # einsum, not dot: BLAS threads stall when the machine is busy (20 ms for 3 s here)
    a = float(np.einsum("i,i->", x[1:], x[:-1])) / max(float(np.einsum("i,i->", x, x)), 1e-20)
    y = np.empty_like(x)
    y[0] = x[0]
    y[1:] = x[1:] - a * x[:-1]
    return y


def third_formant_hz(
    x: F64,
    rate: int,
    voiced: npt.NDArray[np.bool_],
    order: int | None = None,
    frame_s: float = FRAME_S,
    band_hz: tuple[float, float] = FORMANT_BAND_HZ,
    max_bandwidth_hz: float = MAX_BANDWIDTH_HZ,
    decimate: bool = True,
) -> float | None:
    """Median F3 (Hz, at `rate`) over the voiced 20 ms frames, or None if too few have it.

    `voiced` is the pitch tracker's mask (`features.pitch_frames`, one entry per HOP_S).
    """
    import numpy as np

    y = flatten_tilt(x)
    if decimate and rate > 13000:  # formants need no more than 6 kHz of band
        y = half_band_decimate(y)
        rate = rate // 2
    size = int(frame_s * rate)
    hop = int(HOP_S * rate)
    if y.size < size:
        return None
    fr = frames(y, size, hop)
    n = min(fr.shape[0], voiced.size)
    sel = np.flatnonzero(voiced[:n])[:MAX_FRAMES]
    if sel.size < MIN_FRAMES:
        return None
    fr = fr[sel] * np.hamming(size)
    fr = fr[np.einsum("ij,ij->i", fr, fr) > 0]
    if fr.shape[0] < MIN_FRAMES:
        return None
    order = order or max(8, round(rate / 1000))
    a = lpc(fr, order)
    comp = np.zeros((a.shape[0], order, order))
    comp[:, 0, :] = a
    comp[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    roots = np.linalg.eigvals(comp)
    freq = np.angle(roots) * rate / (2 * np.pi)
    bw = -np.log(np.maximum(np.abs(roots), 1e-12)) * rate / np.pi
    ok = (roots.imag > 0) & (bw < max_bandwidth_hz)
    ok &= (freq > band_hz[0]) & (freq < band_hz[1])
    freq = np.where(ok, freq, np.inf)
    freq.sort(axis=1)
    have = np.isfinite(freq[:, 2])
    if int(have.sum()) < MIN_FRAMES:
        return None
    return float(np.median(freq[have, 2]))


def low_band_third_formant_hz(x: F64, rate: int, voiced: npt.NDArray[np.bool_]) -> float | None:
    """Median third resonance below 2.9 kHz (Hz at `rate`), LPC tuned to a slowed voice.

    Speech captured at twice `rate` and read at it has its formants and bandwidths halved:
    F1-F3 all below 1.8 kHz. Quartered band (3 kHz), order 8 on 25 ms frames: enough poles
    for three halved formants, too few to lock onto a low voice's harmonics.
    """
    from doctor.audio.rate.features import half_band_decimate

    return third_formant_hz(
        half_band_decimate(half_band_decimate(x)),
        rate // 4,
        voiced,
        order=8,
        frame_s=0.025,
        band_hz=(90.0, 2900.0),
        max_bandwidth_hz=300.0,
        decimate=False,
    )


def slowed_third_formant_hz(x: F64, rate: int, voiced: npt.NDArray[np.bool_]) -> float | None:
    """Median F3 (Hz, as captured) if `x`, read at `rate`, was captured at twice that rate.

    The analysis scales with the hypothesis: read x0.5, every formant and bandwidth is
    halved, and an LPC tuned for an adult at the label finds too few resonances below its
    band floor. Halving the band first (and taking every other pitch frame, whose hop is
    then 20 ms as captured) measures the slowed voice as an adult's: 2.3-3.3 kHz if slowed,
    twice a formant at the label (4 kHz and up) if not.
    """
    from doctor.audio.rate.features import half_band_decimate

    return third_formant_hz(half_band_decimate(x), rate, voiced[::2])
