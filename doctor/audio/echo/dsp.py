"""Signal primitives of the echo detector: band-limiting, activity, GCC-PHAT, CFAR scores.

Pure numpy/scipy on arrays; every function here is deterministic and clock-free so the
detector (`doctor.audio.echo.analysis`) can be tested on generated signals.
"""

from __future__ import annotations

from functools import cache
from math import gcd

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

ANALYSIS_RATE_HZ = 8000
BAND_HZ = (100.0, 3800.0)
FRAME_S = 0.02
ACTIVITY_RANGE_DB = 45.0
ABSOLUTE_SILENCE_POWER = 1e-12  # -120 dBFS: below this a frame is digital silence
MAD_TO_SIGMA = 1.4826


def as_float(samples: NDArray[np.generic]) -> Array:
    """Integers are PCM (full scale 1.0); floats are taken as they are."""
    arr = np.asarray(samples)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 0 else arr.mean(axis=1)
    if np.issubdtype(arr.dtype, np.integer):
        scale = float(np.iinfo(arr.dtype).max) + 1.0
        return arr.astype(np.float64) / scale
    return np.nan_to_num(arr.astype(np.float64))


def to_analysis_rate(samples: Array, rate_hz: int) -> Array:
    """Resample to 8 kHz, remove DC and keep the 100-3800 Hz band where speech echoes live."""
    from scipy import signal

    x = samples
    if rate_hz != ANALYSIS_RATE_HZ:
        g = gcd(int(rate_hz), ANALYSIS_RATE_HZ)
        x = np.asarray(
            signal.resample_poly(x, ANALYSIS_RATE_HZ // g, int(rate_hz) // g), dtype=np.float64
        )
    x = x - float(np.mean(x)) if len(x) else x
    sos = signal.butter(4, BAND_HZ, btype="bandpass", fs=ANALYSIS_RATE_HZ, output="sos")
    return np.asarray(signal.sosfilt(sos, x), dtype=np.float64)


def frame_power(x: Array, frame: int) -> Array:
    """Mean power of consecutive frames (the last partial frame is dropped)."""
    n = len(x) // frame
    if n == 0:
        return np.zeros(0)
    return np.asarray(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1), dtype=np.float64)


def active_frames(power: Array) -> NDArray[np.bool_]:
    """Frames within 45 dB of the 95th-percentile level: where the agent is talking."""
    if len(power) == 0:
        return np.zeros(0, dtype=bool)
    loud = float(np.percentile(power, 95))
    if loud <= ABSOLUTE_SILENCE_POWER:
        return np.zeros(len(power), dtype=bool)
    threshold = max(loud * 10 ** (-ACTIVITY_RANGE_DB / 10), ABSOLUTE_SILENCE_POWER)
    return np.asarray(power > threshold, dtype=bool)


def db(power: float) -> float:
    return float(10 * np.log10(max(power, 1e-30)))


def robust_z(values: Array) -> Array:
    """CFAR score of a correlation magnitude curve: (v - median) / (1.4826 MAD)."""
    med = float(np.median(values))
    mad = float(np.median(np.abs(values - med))) * MAD_TO_SIGMA
    return (values - med) / max(mad, 1e-30)


def band_mask(n_fft: int, fs: int = ANALYSIS_RATE_HZ) -> NDArray[np.bool_]:
    freqs = np.fft.rfftfreq(n_fft, 1.0 / fs)
    return np.asarray((freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1]), dtype=bool)


def phat_weight(
    cross: NDArray[np.complex128], beta: float, mask: NDArray[np.bool_]
) -> NDArray[np.complex128]:
    """PHAT-beta: divide the cross-spectrum by its magnitude to the power beta, in band only."""
    mag = np.abs(cross)
    eps = 1e-12 * float(mag.max()) if mag.size and mag.max() > 0 else 1e-30
    out = np.zeros_like(cross)
    out[mask] = cross[mask] / (mag[mask] ** beta + eps)
    return out


def fft_size_for(n_ref: int, n_cap: int, lo: int, hi: int) -> int:
    """FFT length for a linear cross-correlation at lags lo..hi without wrap-around."""
    from scipy import fft

    return int(fft.next_fast_len(max(n_ref + max(hi, 0), n_cap - min(lo, 0)) + 1, real=True))


def smoothed_power(
    spec: NDArray[np.complex128], width_hz: float = 8.0, fs: int = ANALYSIS_RATE_HZ
) -> Array:
    """|spec|^2 averaged over `width_hz`: a power spectral density estimate per bin."""
    from scipy import ndimage

    n_fft = 2 * (len(spec) - 1)
    width = max(1, int(width_hz * n_fft / fs)) | 1
    return np.asarray(
        ndimage.uniform_filter1d(np.abs(spec) ** 2, width, mode="nearest"), dtype=np.float64
    )


def cross_correlate(
    ref_spec: NDArray[np.complex128],
    cap_spec: NDArray[np.complex128],
    n_fft: int,
    lo: int,
    hi: int,
    beta: float | None,
    cap_power: Array | None = None,
) -> Array:
    """Generalised cross-correlation c[tau] = sum ref[n] cap[n + tau], tau in lo..hi.

    beta: PHAT-beta weighting (1.0 = full PHAT). beta None: whitened matched filter, the
    cross-spectrum divided by the capture's smoothed power (`cap_power`); with a weak echo
    the capture is mostly noise, so this is the matched filter for coloured noise, and it
    keeps the reference's own spectrum as the weight that PHAT throws away.
    """
    from scipy import fft

    cross = cap_spec * np.conj(ref_spec)
    mask = band_mask(n_fft)
    if beta is None:
        power = smoothed_power(cap_spec) if cap_power is None else cap_power
        weighted = np.zeros_like(cross)
        # near-digital-silence bins must not get astronomic weights
        floor = 1e-6 * float(power[mask].mean()) if mask.any() else 0.0
        weighted[mask] = cross[mask] / (power[mask] + floor + 1e-30)
    else:
        weighted = phat_weight(cross, beta, mask)
    full = np.asarray(fft.irfft(weighted, n_fft), dtype=np.float64)
    idx = np.arange(lo, hi + 1) % n_fft
    return full[idx]


def spectrum(x: Array, n_fft: int) -> NDArray[np.complex128]:
    from scipy import fft

    return np.asarray(fft.rfft(x, n_fft), dtype=np.complex128)


def parabolic_peak(curve: Array, i: int) -> float:
    """Sub-sample position of the peak at index i (three-point parabola)."""
    if i <= 0 or i >= len(curve) - 1:
        return float(i)
    a, b, c = float(curve[i - 1]), float(curve[i]), float(curve[i + 1])
    den = a - 2 * b + c
    if den >= 0:
        return float(i)
    return float(i + 0.5 * (a - c) / den)


KERNEL_PHASES = 2048


@cache
def _kernel_table(half_width: int, phases: int) -> Array:
    """Windowed-sinc taps for `phases` + 1 fractional offsets in [0, 1]."""
    taps = np.arange(-half_width + 1, half_width + 1)
    frac = np.arange(phases + 1) / phases
    dist = frac[:, None] - taps[None, :]
    win = np.kaiser(2 * half_width + 1, KAISER_BETA)
    w = np.interp(dist, np.arange(-half_width, half_width + 1), win)
    return np.asarray(np.sinc(dist) * w, dtype=np.float64)


KAISER_BETA = 8.0


def sinc_interpolate(
    x: Array,
    positions: Array,
    half_width: int = 16,
    chunk: int = 1 << 14,
    phases: int | None = KERNEL_PHASES,
) -> Array:
    """x evaluated at fractional sample positions (Kaiser-windowed sinc; zero outside x).

    This is the drift warp and the fractional alignment in one: resample_poly cannot do
    ratios like 1.000417 without enormous filters. `phases`: the fraction is rounded to
    1/phases of a sample and the taps come from a table (2048: error below -60 dB in the
    band, 4x faster); None computes every kernel exactly (the test corpus's truth).
    """
    out = np.zeros(len(positions))
    padded = np.concatenate([np.zeros(half_width), x, np.zeros(half_width + 1)])
    taps = np.arange(-half_width + 1, half_width + 1)
    table = None if phases is None else _kernel_table(half_width, phases)
    win = np.kaiser(2 * half_width + 1, KAISER_BETA)
    for start in range(0, len(positions), chunk):
        pos = positions[start : start + chunk]
        base = np.floor(pos)
        frac = pos - base
        idx = base.astype(np.int64)[:, None] + taps[None, :] + half_width
        if table is not None and phases is not None:
            kernel = table[np.rint(frac * phases).astype(np.int64)]
        else:
            dist = frac[:, None] - taps[None, :]
            # evaluate the window at continuous distance by interpolating its samples
            w = np.interp(dist, np.arange(-half_width, half_width + 1), win)
            kernel = np.sinc(dist) * w
        inside = (idx[:, 0] >= 0) & (idx[:, -1] < len(padded))
        if inside.all():
            vals = padded[idx]
        else:
            valid = (idx >= 0) & (idx < len(padded))
            vals = np.where(valid, padded[np.clip(idx, 0, len(padded) - 1)], 0.0)
        out[start : start + chunk] = np.einsum("ij,ij->i", vals, kernel)
    return out
