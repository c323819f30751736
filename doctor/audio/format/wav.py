"""RIFF/WAVE header parsing on bytes: where the samples are and what they claim to be.

Pure: takes the first bytes of a file (a few KiB is enough for any sane header) and the
total size when known, so streaming readers can skip to `data_offset` without loading more.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_ALAW = 0x0006
WAVE_FORMAT_MULAW = 0x0007
WAVE_FORMAT_EXTENSIBLE = 0xFFFE

FORMAT_NAMES = {
    WAVE_FORMAT_PCM: "pcm",
    WAVE_FORMAT_IEEE_FLOAT: "float",
    WAVE_FORMAT_ALAW: "alaw",
    WAVE_FORMAT_MULAW: "mulaw",
}


class WavError(ValueError):
    """The bytes start like a WAV file but the header cannot be used."""


@dataclass(frozen=True)
class WavHeader:
    format_tag: int  # after resolving WAVE_FORMAT_EXTENSIBLE to its sub-format
    channels: int
    sample_rate_hz: int
    bits_per_sample: int
    block_align: int
    data_offset: int
    data_bytes: int | None  # None: unknown (streamed WAV with a 0 or 0xFFFFFFFF size)
    extensible: bool = False

    @property
    def format_name(self) -> str:
        return FORMAT_NAMES.get(self.format_tag, f"0x{self.format_tag:04x}")

    @property
    def encoding(self) -> str:
        """The sample encoding in the vocabulary of `doctor.audio.format.pcm` decoders."""
        bits = self.bits_per_sample
        if self.format_tag == WAVE_FORMAT_PCM:
            return {8: "u8", 16: "s16le", 24: "s24le", 32: "s32le"}.get(bits, f"pcm{bits}")
        if self.format_tag == WAVE_FORMAT_IEEE_FLOAT:
            return {32: "f32le", 64: "f64le"}.get(bits, f"float{bits}")
        if self.format_tag == WAVE_FORMAT_MULAW:
            return "mulaw"
        if self.format_tag == WAVE_FORMAT_ALAW:
            return "alaw"
        return self.format_name


def is_wav(head: bytes) -> bool:
    return len(head) >= 12 and head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE"


def parse_wav_header(head: bytes, total_size: int | None = None) -> WavHeader:
    """Walk the chunks up to `data`; raise WavError with a reason a user can read."""
    if not is_wav(head):
        raise WavError("not a RIFF/WAVE file")
    if head[:4] == b"RIFX":
        raise WavError("big-endian RIFX WAV is not supported")
    pos = 12
    fmt: tuple[int, int, int, int, int, bool] | None = None
    while pos + 8 <= len(head):
        cid = head[pos : pos + 4]
        (size,) = struct.unpack_from("<I", head, pos + 4)
        body = pos + 8
        if cid == b"fmt ":
            if size < 16 or body + 16 > len(head):
                raise WavError("the fmt chunk is truncated")
            tag, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", head, body)
            extensible = tag == WAVE_FORMAT_EXTENSIBLE
            if extensible:
                if size < 40 or body + 40 > len(head):
                    raise WavError("the WAVE_FORMAT_EXTENSIBLE fmt chunk is truncated")
                (tag,) = struct.unpack_from("<H", head, body + 24)
            fmt = (tag, channels, rate, bits, align, extensible)
        elif cid == b"data":
            if fmt is None:
                raise WavError("the data chunk comes before any fmt chunk")
            tag, channels, rate, bits, align, extensible = fmt
            if channels == 0 or rate == 0 or bits == 0:
                raise WavError(
                    f"the fmt chunk declares {channels} channels, {rate} Hz, {bits} bits"
                )
            if align == 0:
                align = channels * ((bits + 7) // 8)
            data_bytes: int | None = size
            if head[:4] == b"RF64" or size in (0, 0xFFFFFFFF):
                data_bytes = None if total_size is None else max(0, total_size - body)
            elif total_size is not None:
                data_bytes = min(size, max(0, total_size - body))
            return WavHeader(tag, channels, rate, bits, align, body, data_bytes, extensible)
        pos = body + size + (size & 1)
    if fmt is None:
        raise WavError(f"no fmt chunk in the first {len(head)} bytes")
    raise WavError(f"no data chunk in the first {len(head)} bytes")
