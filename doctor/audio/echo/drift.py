"""Residual clock drift of an aligned echo: segment delays referenced to the path's own phase.

Block GCC peaks are a poor drift ruler: a loudspeaker's high-pass and a room make the echo
path dispersive, so where a block's correlation peaks depends on what that block of speech
contains (±0.7 ms on 1 s blocks of espeak through a 200 Hz speaker, i.e. errors of 100-200
ppm over 10 s). Here each segment's cross-spectrum is divided by the phase of the whole
capture's cross-spectrum first, which cancels the path's dispersion, so what is left of the
phase is the segment's own delay offset; a robust line through those offsets is the drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from doctor.audio.echo.dsp import ANALYSIS_RATE_HZ, Array, band_mask, parabolic_peak, robust_z

SEGMENT = 8192  # 1 s at 8 kHz: long enough for the segment's cross-spectrum to be the path's
HOP = SEGMENT // 2
REACH = 40  # residual offsets searched: ±5 ms (200 ppm over ±12 s)
BETA = 0.8
MIN_Z = 6.0  # a segment's peak must stand this far above its curve's spread to be used
MIN_SEGMENTS = 4
MIN_SPAN_S = 2.0
MAX_RESIDUAL = 400e-6


@dataclass(frozen=True)
class SegmentOffsets:
    """Where each usable segment's echo sits relative to the aligned reference."""

    t: Array  # segment centres, samples of the capture
    offset: Array  # samples
    weight: Array


class DriftMeter:
    """Segment offsets against one capture; its spectra are computed once and reused by
    every settling pass."""

    def __init__(self, y: Array) -> None:
        from scipy import fft

        self.n = len(y)
        self.starts = np.arange(0, max(0, self.n - SEGMENT) + 1, HOP)
        self.usable = self.n >= SEGMENT and len(self.starts) >= MIN_SEGMENTS
        self.mask = band_mask(SEGMENT)
        self.win = np.hanning(SEGMENT)
        self.ys = (
            fft.rfft(y[self._index()] * self.win, axis=1)[:, self.mask]
            if self.usable
            else np.zeros((0, 0), dtype=np.complex128)
        )

    def _index(self) -> NDArray[np.int64]:
        return np.asarray(self.starts[:, None] + np.arange(SEGMENT)[None, :], dtype=np.int64)

    def offsets(self, x_al: Array) -> SegmentOffsets:
        """Offsets of the capture against `x_al` (the reference warped and shifted onto it)."""
        from scipy import fft

        empty = SegmentOffsets(np.zeros(0), np.zeros(0), np.zeros(0))
        if not self.usable or len(x_al) < self.n or not self.mask.any():
            return empty
        xs = fft.rfft(x_al[self._index()] * self.win, axis=1)[:, self.mask]
        cross = self.ys * np.conj(xs)
        # each segment against all the others: a reference that contained the segment
        # itself would match its phase a little even where there is no echo at all
        others = cross.sum(axis=0)[None, :] - cross
        mag_others = np.abs(others)
        ok = mag_others > 1e-12 * float(mag_others.max() or 1.0)
        referenced = np.where(ok, cross * np.conj(others) / np.where(ok, mag_others, 1.0), 0.0)
        mag = np.abs(referenced)
        floor = 1e-12 * float(mag.max() or 1.0)
        full = np.zeros((len(self.starts), SEGMENT // 2 + 1), dtype=np.complex128)
        full[:, self.mask] = referenced / (mag**BETA + floor)
        curves = np.asarray(fft.irfft(full, SEGMENT, axis=1), dtype=np.float64)
        lags = np.r_[np.arange(SEGMENT - REACH, SEGMENT), np.arange(0, REACH + 1)]
        near = curves[:, lags]  # lags -REACH..REACH, in order
        ts, offs, ws = [], [], []
        for s in range(len(self.starts)):
            z = robust_z(np.abs(curves[s]))
            zn = z[lags]
            k = int(np.argmax(zn))
            if zn[k] < MIN_Z or k in (0, len(zn) - 1) or near[s, k] <= 0:
                continue
            ts.append(self.starts[s] + SEGMENT / 2)
            offs.append(parabolic_peak(near[s], k) - REACH)
            ws.append(float(zn[k]))
        return SegmentOffsets(np.asarray(ts), np.asarray(offs), np.asarray(ws))


def segment_offsets(x_al: Array, y: Array) -> SegmentOffsets:
    """Offsets of `y` against `x_al` (the reference already warped and shifted onto `y`)."""
    return DriftMeter(y).offsets(x_al)


def fit_slope(seg: SegmentOffsets) -> float | None:
    """Robust weighted line through the offsets: delay growth per capture sample."""
    if len(seg.t) < MIN_SEGMENTS or float(np.ptp(seg.t)) < MIN_SPAN_S * ANALYSIS_RATE_HZ:
        return None
    t = seg.t - float(np.mean(seg.t))
    keep = np.ones(len(t), dtype=bool)
    slope = 0.0
    for _ in range(4):
        if keep.sum() < MIN_SEGMENTS:
            return None
        w = np.sqrt(seg.weight[keep])
        slope, intercept = np.polyfit(t[keep], seg.offset[keep], 1, w=w)
        res = seg.offset - (slope * t + intercept)
        mad = 1.4826 * float(np.median(np.abs(res[keep])))
        new_keep = np.abs(res) <= max(3.0 * mad, 0.05)
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return float(slope) if abs(slope) <= MAX_RESIDUAL else None


def residual_drift(x_al: Array, y: Array) -> float | None:
    """Drift left after alignment (capture samples of delay per capture sample), or None
    when too few segments carry the echo clearly."""
    return fit_slope(segment_offsets(x_al, y))
