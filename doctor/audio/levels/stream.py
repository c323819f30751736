"""Streaming level statistics: silence, clipping, DC offset and speech level in one pass.

Fed chunk by chunk so memory stays bounded. The int16 path is the hot loop of a multi-GiB
validation: each chunk's whole frames are cut into parts processed on every core (numpy
releases the GIL on large arrays), each part converted once into a reused float buffer,
and integer sums kept exact so the result does not depend on how the input was chunked.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

FRAME = 480  # samples per level frame: 20 ms at 24 kHz
HIST_MIN_DB = -120
HIST_BINS = 121  # 1 dB bins from -120 to 0 dBFS
SILENT_FRAME_DB = -80.0  # quieter than a couple of LSB of int16: digital silence
ACTIVE_FRAME_DB = -60.0
PART_MIN_SAMPLES = 1 << 18  # below this, handing a part to another thread costs more than it saves
MAX_PARTS = 4
BLOCK_FRAMES = 256  # 480 KiB of float32: a block stays in L2 while it is reduced

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _workers() -> ThreadPoolExecutor | None:
    """One shared pool of (cores - 1) threads; the calling thread does a part too."""
    global _pool
    parts = min(os.cpu_count() or 1, MAX_PARTS)
    if parts < 2:
        return None
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(parts - 1, thread_name_prefix="level-stats")
        return _pool


@dataclass
class _Part:
    """Statistics of one run of samples; integer sums so parts add up exactly."""

    samples: int
    zeros: int
    clipped: int
    peak: float
    int_total: int = 0
    int_energy: float = 0.0  # sum of squares, int16 units (float32 frame sums added in float64)
    hist: Any = None


def _int16_sample_stats(a: npt.NDArray[np.int16]) -> _Part:
    """Per-sample statistics only: sums and levels are counted with the frames."""
    import numpy as np

    if a.size == 0:
        return _Part(0, 0, 0, 0.0)
    mx, mn = int(a.max()), int(a.min())
    clipped = 0
    if mx >= 32767 or mn <= -32767:
        clipped = int(np.count_nonzero(a >= 32767)) + int(np.count_nonzero(a <= -32767))
    return _Part(
        int(a.size),
        int(a.size - np.count_nonzero(a)),
        clipped,
        max(mx, -mn) / 32768.0,
    )


def _int16_frames_part(a: npt.NDArray[np.int16], buf: npt.NDArray[np.float32]) -> _Part:
    """Statistics of whole frames: sample stats plus the frame-level histogram.

    Walks the part in blocks of `BLOCK_FRAMES` so each block is converted and reduced while
    it sits in the core's cache (about twice as fast as whole-part passes). Per-frame sums and
    energies are the same numbers either way, and they are totalled over the whole part, so
    the figures do not depend on the block size.
    """
    import numpy as np

    frames = a.size // FRAME
    sums = np.empty(frames, np.float32)
    energy = np.empty(frames, np.float32)
    p = _Part(int(a.size), 0, 0, 0.0)
    for start in range(0, frames, BLOCK_FRAMES):
        stop = min(frames, start + BLOCK_FRAMES)
        block = a[start * FRAME : stop * FRAME]
        q = _int16_sample_stats(block)
        p.zeros += q.zeros
        p.clipped += q.clipped
        p.peak = max(p.peak, q.peak)
        fr = buf[: block.size].reshape(-1, FRAME)
        np.copyto(fr, block.reshape(-1, FRAME), casting="unsafe")  # no allocation
        # float32 frame sums are exact for int16 values (480 * 2**15 < 2**24)
        np.einsum("ij->i", fr, out=sums[start:stop])
        np.einsum("ij,ij->i", fr, fr, out=energy[start:stop])
    p.int_total = int(sums.astype(np.int64).sum())
    e = energy.astype(np.float64)
    p.int_energy = float(e.sum())
    level = 10.0 * np.log10(np.maximum(e * (1.0 / (32768.0 * 32768.0 * FRAME)), 1e-13))
    idx = np.clip(np.floor(level).astype(np.int64) - HIST_MIN_DB, 0, HIST_BINS - 1)
    p.hist = np.bincount(idx, minlength=HIST_BINS)
    return p


def _int16_parts(a: npt.NDArray[np.int16], buffers: list[Any]) -> list[_Part]:
    """Split whole frames into parts (on frame boundaries) and run them on the pool."""
    import numpy as np

    frames = a.size // FRAME
    pool = _workers() if a.size >= 2 * PART_MIN_SAMPLES else None
    n = 1 if pool is None else min(MAX_PARTS, (os.cpu_count() or 1), frames)
    cuts = [frames * i // n * FRAME for i in range(n + 1)]
    while len(buffers) < n:
        buffers.append(np.empty(0, np.float32))
    for i in range(n):
        if buffers[i].size < BLOCK_FRAMES * FRAME:
            buffers[i] = np.empty(BLOCK_FRAMES * FRAME, np.float32)
    if pool is None:
        return [_int16_frames_part(a, buffers[0])]
    futures = [
        pool.submit(_int16_frames_part, a[cuts[i] : cuts[i + 1]], buffers[i]) for i in range(1, n)
    ]
    first = _int16_frames_part(a[cuts[0] : cuts[1]], buffers[0])
    return [first] + [f.result() for f in futures]


def db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else -math.inf


@dataclass
class LevelStats:
    samples: int = 0
    zeros: int = 0
    clipped: int = 0
    total: float = 0.0  # sum of samples, full scale 1.0
    energy: float = 0.0  # sum of squares
    peak: float = 0.0
    hist: list[int] = field(default_factory=lambda: [0] * HIST_BINS)
    _carry: Any = None  # leftover samples that do not fill a frame
    _carry_scale: float = 1.0
    _int_total: int = 0  # sum of int16 samples taken by the fast path (exact)
    _int_energy: float = 0.0  # their sum of squares, int16 units
    _buffers: list[Any] = field(default_factory=list)  # reused float32 block buffers

    def update_int16(self, a: npt.NDArray[np.int16]) -> None:
        """Fast path for int16 samples (full scale 32768): whole frames in parallel parts."""
        if a.size == 0:
            return
        head = 0
        if self._carry is not None and self._carry.size:
            head = min(FRAME - self._carry.size, a.size)
            self._add_part(_int16_sample_stats(a[:head]))
            self._frames(a[:head].astype("float32"), 1.0 / 32768.0)
        whole = head + (a.size - head) // FRAME * FRAME
        if whole > head:
            for part in _int16_parts(a[head:whole], self._buffers):
                self._add_part(part)
        if whole < a.size:
            tail = a[whole:]
            self._add_part(_int16_sample_stats(tail))
            self._carry = tail.astype("float32")
            self._carry_scale = 1.0 / 32768.0

    def _add_part(self, p: _Part) -> None:
        self.samples += p.samples
        self.zeros += p.zeros
        self.clipped += p.clipped
        self.peak = max(self.peak, p.peak)
        self._int_total += p.int_total
        self._int_energy += p.int_energy
        if p.hist is not None:
            for i in p.hist.nonzero()[0]:
                self.hist[int(i)] += int(p.hist[i])

    def update_float(self, x: npt.NDArray[np.float32]) -> None:
        """Samples already in [-1, 1]."""
        import numpy as np

        if x.size == 0:
            return
        self.samples += x.size
        self.zeros += x.size - int(np.count_nonzero(x))
        ax = np.abs(x)
        self.peak = max(self.peak, float(ax.max()))
        self.clipped += int(np.count_nonzero(ax >= 32767 / 32768))
        self._frames(x.astype(np.float32, copy=False), 1.0)

    def _frames(self, f: npt.NDArray[np.float32], scale: float) -> None:
        import numpy as np

        if self._carry is not None and self._carry.size:
            # complete the pending frame without copying the whole chunk
            need = FRAME - self._carry.size
            first = np.concatenate([self._carry * (self._carry_scale / scale), f[:need]])
            f = f[need:]
            self._carry = None
            if first.size == FRAME:
                self._whole(first.reshape(1, FRAME), scale)
            else:
                self._carry, self._carry_scale = first, scale
                return
        whole = f.size - f.size % FRAME
        self._carry = f[whole:].copy()
        self._carry_scale = scale
        if whole:
            self._whole(f[:whole].reshape(-1, FRAME), scale)

    def _whole(self, fr: npt.NDArray[np.float32], scale: float) -> None:
        import numpy as np

        # float32 frame sums are exact for int16 values (480 * 2**15 < 2**24)
        sums = fr.sum(axis=1)
        e = np.einsum("ij,ij->i", fr, fr).astype(np.float64)
        self.total += float(sums.astype(np.float64).sum()) * scale
        self.energy += float(e.sum()) * scale * scale
        ms = e * (scale * scale / FRAME)
        level = 10.0 * np.log10(np.maximum(ms, 1e-13))
        idx = np.clip(np.floor(level).astype(np.int64) - HIST_MIN_DB, 0, HIST_BINS - 1)
        counts = np.bincount(idx, minlength=HIST_BINS)
        for i in np.flatnonzero(counts):
            self.hist[int(i)] += int(counts[i])

    def finish(self) -> None:
        """Account for the partial last frame (levels of short inputs count too)."""
        import numpy as np

        if self._carry is not None and self._carry.size:
            c = self._carry.astype(np.float64) * self._carry_scale
            self.total += float(c.sum())
            self.energy += float(np.dot(c, c))
            ms = float(np.dot(c, c)) / c.size
            level = 10.0 * math.log10(max(ms, 1e-13))
            self.hist[min(max(math.floor(level) - HIST_MIN_DB, 0), HIST_BINS - 1)] += 1
        self._carry = None

    # -- derived figures ---------------------------------------------------------------------
    @property
    def frames(self) -> int:
        return sum(self.hist)

    def frame_fraction_below(self, level_db: float) -> float:
        n = self.frames
        if not n:
            return 1.0
        cut = math.floor(level_db) - HIST_MIN_DB
        return sum(self.hist[: max(cut, 0)]) / n

    def percentile_db(self, q: float) -> float:
        """Level (dBFS) of the frame at quantile q of frame levels."""
        n = self.frames
        if not n:
            return -math.inf
        target = q * n
        acc = 0
        for i, c in enumerate(self.hist):
            acc += c
            if acc >= target and c:
                return float(i + HIST_MIN_DB)
        return 0.0

    def sum(self) -> float:
        return self.total + self._int_total / 32768.0

    def sum_squares(self) -> float:
        return self.energy + self._int_energy / (32768.0 * 32768.0)

    def mean(self) -> float:
        return self.sum() / self.samples if self.samples else 0.0

    def rms(self) -> float:
        return math.sqrt(self.sum_squares() / self.samples) if self.samples else 0.0

    def active_level_db(self) -> float:
        """Speech level: the 95th percentile of 20 ms frame levels."""
        return self.percentile_db(0.95)

    def summary(self) -> dict[str, Any]:
        mean = self.mean()
        ac = math.sqrt(max(self.rms() ** 2 - mean * mean, 0.0))
        return {
            "samples": self.samples,
            "zero_fraction": round(self.zeros / self.samples, 6) if self.samples else None,
            "clipped_fraction": round(self.clipped / self.samples, 6) if self.samples else None,
            "peak_dbfs": _r(db(self.peak)),
            "rms_dbfs": _r(db(self.rms())),
            "ac_rms_dbfs": _r(db(ac)),
            "dc_offset_fs": round(mean, 6),
            "active_level_dbfs": _r(self.active_level_db()),
            "silent_frame_fraction": round(self.frame_fraction_below(SILENT_FRAME_DB), 4),
        }


def _r(x: float) -> float | None:
    return None if not math.isfinite(x) else round(x, 1)
