"""Sample decoders (bytes -> float32 in [-1, 1]), pure.

Encodings are named like sox/ffmpeg: s16le, s16be, s24le, s32le, f32le, f64le, u8, mulaw,
alaw. The file reader that uses them is `doctor.files.pcm_file`.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float32]

API_RATE_HZ = 24000
# The rates --fix accepts (and `--source-rate`'s bounds): outside them a WAV header's rate is a
# broken field, and resampling from it would cost gigabytes (1 Hz -> 24 kHz is 24000x).
MIN_SOURCE_RATE_HZ = 1000
MAX_SOURCE_RATE_HZ = 384000
# Headerless G.711 (μ-law, A-law) is telephone audio: the API's pcmu/pcma formats are 8000 Hz.
G711_RATE_HZ = 8000
G711_ENCODINGS = ("mulaw", "alaw")

BYTES_PER_SAMPLE: dict[str, int] = {
    "s16le": 2,
    "s16be": 2,
    "s24le": 3,
    "s32le": 4,
    "f32le": 4,
    "f64le": 8,
    "u8": 1,
    "mulaw": 1,
    "alaw": 1,
}


@cache
def _g711_table(law: str) -> FloatArray:
    import numpy as np

    b = np.arange(256, dtype=np.int32)
    if law == "mulaw":
        u = ~b & 0xFF
        exponent = (u >> 4) & 7
        mantissa = u & 0x0F
        mag = (((mantissa << 3) + 0x84) << exponent) - 0x84
        val = np.where(u & 0x80, -mag, mag)
    else:
        a = b ^ 0x55
        exponent = (a >> 4) & 7
        mantissa = a & 0x0F
        mag = np.where(
            exponent == 0,
            (mantissa << 4) + 8,
            ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
        )
        val = np.where(a & 0x80, mag, -mag)
    table: FloatArray = (val / 32768.0).astype(np.float32)
    return table


def decode(data: bytes | memoryview, encoding: str, channels: int = 1) -> FloatArray:
    """Interleaved samples -> float32 frames in [-1, 1], down-mixed to mono by averaging.

    Trailing bytes that do not fill a whole frame are ignored.
    """
    import numpy as np

    width = BYTES_PER_SAMPLE[encoding]
    frame = width * channels
    usable = len(data) - len(data) % frame
    buf = memoryview(data)[:usable]
    x: FloatArray
    if encoding == "s16le":
        x = np.frombuffer(buf, "<i2").astype(np.float32) * np.float32(1 / 32768)
    elif encoding == "s16be":
        x = np.frombuffer(buf, ">i2").astype(np.float32) * np.float32(1 / 32768)
    elif encoding == "s32le":
        x = (np.frombuffer(buf, "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    elif encoding == "f32le":
        x = np.nan_to_num(np.frombuffer(buf, "<f4").astype(np.float32), posinf=1.0, neginf=-1.0)
    elif encoding == "f64le":
        x = np.nan_to_num(np.frombuffer(buf, "<f8"), posinf=1.0, neginf=-1.0).astype(np.float32)
    elif encoding == "s24le":
        b = np.frombuffer(buf, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v & 0x800000, v - 0x1000000, v)
        x = (v / 8388608.0).astype(np.float32)
    elif encoding == "u8":
        x = (np.frombuffer(buf, np.uint8).astype(np.float32) - 128.0) * np.float32(1 / 128)
    elif encoding in ("mulaw", "alaw"):
        x = _g711_table(encoding)[np.frombuffer(buf, np.uint8)]
    else:  # pragma: no cover - the table above lists every key
        raise ValueError(f"unknown encoding {encoding!r}")
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return x
