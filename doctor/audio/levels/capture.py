"""Level statistics of a short capture, and the verdict the microphone check draws from them.

Pure: samples in, numbers out. Works on int16 samples or floats in [-1, 1]. (For streaming
statistics over long files, see `level_stats.py`, the audio-format check's core.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

FLOOR_DBFS = -120.0  # what digital silence reports instead of -inf (JSON has no -inf)

# Digital silence: (almost) every sample exactly zero. Real converters always add some
# noise, so this means a muted stream, a denied macOS permission or a null device.
SILENT_ZERO_FRACTION = 0.99
# Below this RMS and peak nothing speech-like can be picked up: a muted or near-zero gain
# input. A quiet room on a working mic sits around -70..-50 dBFS RMS.
LOW_RMS_DBFS = -75.0
LOW_PEAK_DBFS = -60.0

LevelVerdict = Literal["silent", "low", "ok"]


@dataclass(frozen=True)
class CaptureLevels:
    samples: int
    rms_dbfs: float
    peak_dbfs: float
    peak: float  # fraction of full scale, 0..1
    zero_fraction: float
    dc_offset: float  # mean, fraction of full scale

    def evidence(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "level_dbfs": round(self.rms_dbfs, 1),
            "peak_dbfs": round(self.peak_dbfs, 1),
            "peak_fraction": round(self.peak, 5),
            "zero_fraction": round(self.zero_fraction, 4),
            "dc_offset_fraction": round(self.dc_offset, 5),
        }


def to_dbfs(fraction: float) -> float:
    """Amplitude fraction of full scale to dBFS, floored so it stays a finite number."""
    if fraction <= 0.0 or math.isnan(fraction):
        return FLOOR_DBFS
    return max(FLOOR_DBFS, 20.0 * math.log10(fraction))


def level_stats(samples: npt.ArrayLike) -> CaptureLevels:
    """RMS and peak in dBFS (a full-scale sine is -3 dBFS RMS), zero fraction, DC offset.

    Signed integers are scaled by their full scale (32768 for int16), unsigned ones are
    centred first; floats are taken as already in [-1, 1]. Multi-channel input is flattened.
    """
    import numpy as np

    arr = np.asarray(samples)
    if arr.size == 0:
        return CaptureLevels(0, FLOOR_DBFS, FLOOR_DBFS, 0.0, 1.0, 0.0)
    x = _as_unit_float(arr)
    zero_fraction = float(np.count_nonzero(x == 0.0)) / x.size
    rms = float(np.sqrt(np.mean(x * x)))
    peak = float(np.max(np.abs(x)))
    return CaptureLevels(
        samples=int(arr.size),
        rms_dbfs=to_dbfs(rms),
        peak_dbfs=to_dbfs(peak),
        peak=min(1.0, peak),
        zero_fraction=zero_fraction,
        dc_offset=float(np.mean(x)),
    )


def _as_unit_float(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    import numpy as np

    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        x = arr.astype(np.float64).ravel()
        if info.min < 0:
            return x / float(-int(info.min))
        half = (float(info.max) + 1.0) / 2.0  # unsigned PCM is centred on mid-scale
        return (x - half) / half
    return np.asarray(arr, dtype=np.float64).ravel()


def judge(stats: CaptureLevels) -> LevelVerdict:
    """silent: digital zeros (or no samples); low: far below any usable level; ok otherwise."""
    if stats.samples == 0 or stats.zero_fraction >= SILENT_ZERO_FRACTION or stats.peak == 0.0:
        return "silent"
    if stats.rms_dbfs < LOW_RMS_DBFS and stats.peak_dbfs < LOW_PEAK_DBFS:
        return "low"
    return "ok"
