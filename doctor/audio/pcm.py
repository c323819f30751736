"""Sample decoders (bytes -> float32 in [-1, 1]) and the shared PCM file reader.

Encodings are named like sox/ffmpeg: s16le, s16be, s24le, s32le, f32le, f64le, u8, mulaw,
alaw. Decoders are pure; `read_pcm16_mono` is the one thin file-reading shell other areas
(the offline echo command) reuse so that every command reads audio the same way.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float32]

API_RATE_HZ = 24000
MAX_READ_BYTES = 1 << 31  # read_pcm16_mono loads whole files: refuse absurd ones

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


class AudioReadError(ValueError):
    """A file that cannot be read as audio; the message says why and what to do."""


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


def read_pcm16_mono(path: str) -> tuple[FloatArray, int]:
    """Read raw PCM16 LE mono (taken as 24 kHz) or a WAV file, as float32 mono in [-1, 1].

    WAV files are decoded whatever their width (8/16/24/32-bit, float, G.711) and
    down-mixed; their declared rate is returned. Raw files are taken as the API's format.
    Raises AudioReadError (a ValueError) with a one-line reason for anything else.
    """
    from doctor.audio.containers import sniff_container
    from doctor.audio.wav import WavError, is_wav, parse_wav_header

    try:
        if os.path.isdir(path):
            raise AudioReadError(f"{path} is a folder, not an audio file")
        size = os.path.getsize(path)
        if size > MAX_READ_BYTES:
            raise AudioReadError(f"{path} is {size} bytes: too large to load at once")
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise AudioReadError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not data:
        raise AudioReadError(f"{path} is empty")
    if is_wav(data):
        try:
            hdr = parse_wav_header(data[: 1 << 20], len(data))
        except WavError as exc:
            raise AudioReadError(f"{path}: {exc}") from None
        if hdr.encoding not in BYTES_PER_SAMPLE:
            raise AudioReadError(
                f"{path}: WAV sample format {hdr.format_name} "
                f"{hdr.bits_per_sample}-bit is not supported"
            )
        end = hdr.data_offset + (hdr.data_bytes if hdr.data_bytes is not None else len(data))
        body = memoryview(data)[hdr.data_offset : end]
        return decode(body, hdr.encoding, hdr.channels), hdr.sample_rate_hz
    other = sniff_container(data[:4096])
    if other is not None:
        raise AudioReadError(
            f"{path} is {other.name}, not raw PCM16 or WAV: convert it "
            f"first (`agent-doctor validate-audio {path} --fix out.raw`)"
        )
    return decode(data, "s16le"), API_RATE_HZ
