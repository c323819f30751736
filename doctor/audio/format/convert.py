"""--fix: convert audio to what the API expects, raw PCM16 LE mono 24 kHz (pure, streaming).

Resampling is scipy's polyphase filter (`resample_poly`) run block by block with enough
context on both sides that the output equals a whole-signal `resample_poly`, so memory
stays bounded on any input length. The up/down factors are bounded (`MAX_FACTOR`): an odd
rate such as 44101 Hz is coprime with 24000, and exact factors (24000/44101) would design a
882k-tap filter per block; the nearest ratio within the bound is off by at most 0.05 %
(measured over every integer rate from 1000 to 384000 Hz), under a cent of pitch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import TYPE_CHECKING

from doctor.audio.format.pcm import (
    API_RATE_HZ,
    BYTES_PER_SAMPLE,
    MAX_SOURCE_RATE_HZ,
    MIN_SOURCE_RATE_HZ,
    decode,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float32]

BLOCK_SAMPLES = 1 << 16
MAX_FACTOR = 1000


def resample_factors(src_hz: int, dst_hz: int = API_RATE_HZ) -> tuple[int, int]:
    """(up, down) for resample_poly: exact when both are at most MAX_FACTOR (every usual
    rate: 44100 -> 24000 is 80/147), else the closest ratio whose factors stay within it."""
    if not MIN_SOURCE_RATE_HZ <= src_hz <= MAX_SOURCE_RATE_HZ:
        raise ValueError(f"{src_hz} Hz is outside {MIN_SOURCE_RATE_HZ}-{MAX_SOURCE_RATE_HZ} Hz")
    g = math.gcd(src_hz, dst_hz)
    up, down = dst_hz // g, src_hz // g
    if max(up, down) <= MAX_FACTOR:
        return up, down
    if up < down:
        f = Fraction(dst_hz, src_hz).limit_denominator(MAX_FACTOR)
        return f.numerator, f.denominator
    f = Fraction(src_hz, dst_hz).limit_denominator(MAX_FACTOR)
    return f.denominator, f.numerator


class StreamResampler:
    def __init__(self, src_hz: int, dst_hz: int = API_RATE_HZ) -> None:
        import numpy as np

        self.up, self.down = resample_factors(src_hz, dst_hz)
        reach = math.ceil(10 * max(self.up, self.down) / self.up) + 2  # filter half-length
        self.ctx = self.down * math.ceil(reach / self.down)
        self.block = self.down * max(1, BLOCK_SAMPLES // self.down)
        self.buf: npt.NDArray[np.float64] = np.zeros(self.ctx)
        self.total_in = 0
        self.emitted = 0

    def _run(self, seg: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        from scipy import signal

        out: npt.NDArray[np.float64] = signal.resample_poly(seg, self.up, self.down)
        return out

    def feed(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        import numpy as np

        self.total_in += x.size
        self.buf = np.concatenate([self.buf, x.astype(np.float64)])
        outs = []
        start = self.ctx * self.up // self.down
        while self.buf.size >= 2 * self.ctx + self.block:
            y = self._run(self.buf[: 2 * self.ctx + self.block])
            outs.append(y[start : start + self.block * self.up // self.down])
            self.buf = self.buf[self.block :]
        out = np.concatenate(outs) if outs else np.zeros(0)
        self.emitted += out.size
        return out

    def finish(self) -> npt.NDArray[np.float64]:
        import numpy as np

        want = math.ceil(self.total_in * self.up / self.down) - self.emitted
        if want <= 0:
            return np.zeros(0)
        y = self._run(np.concatenate([self.buf, np.zeros(self.ctx)]))
        start = self.ctx * self.up // self.down
        out: npt.NDArray[np.float64] = y[start : start + want]
        self.emitted += out.size
        return out


def to_pcm16(x: npt.NDArray[np.floating]) -> bytes:
    import numpy as np

    return np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2").tobytes()


def convert(payload: Iterable[bytes], encoding: str, channels: int, src_hz: int) -> Iterator[bytes]:
    """Raw PCM16 LE mono 24 kHz bytes from payload bytes in the given source format."""
    frame = BYTES_PER_SAMPLE[encoding] * channels
    rs = StreamResampler(src_hz) if src_hz != API_RATE_HZ else None
    carry = b""
    for chunk in payload:
        data = carry + chunk
        cut = len(data) - len(data) % frame
        carry = data[cut:]
        if not cut:
            continue
        x = decode(data[:cut], encoding, channels)
        y = rs.feed(x) if rs else x
        if y.size:
            yield to_pcm16(y)
    if rs:
        tail = rs.finish()
        if tail.size:
            yield to_pcm16(tail)


def describe_changes(encoding: str, channels: int, src_hz: int, layers: list[str]) -> list[str]:
    """What --fix changed, one short line each, for the user."""
    out = list(layers)
    if encoding != "s16le":
        out.append(f"converted {encoding} samples to 16-bit little-endian")
    if channels > 1:
        out.append(f"down-mixed {channels} channels to mono (average)")
    if src_hz != API_RATE_HZ:
        up, down = resample_factors(src_hz)
        exact = up * src_hz == down * API_RATE_HZ
        how = "polyphase filter" + ("" if exact else f", ratio {up}/{down} within 0.05 %")
        out.append(f"resampled {src_hz} Hz to 24000 Hz ({how})")
    if not out:
        out.append("nothing: the audio was already raw PCM16 LE mono 24 kHz (copied)")
    return out
