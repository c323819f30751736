"""The shared PCM file reader: raw PCM16 or WAV from a path, as float32 mono (shell).

The one thin file-reading shell other areas (the offline echo command) reuse so that every
command reads audio the same way; the decoding itself is `doctor.audio.format.pcm`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from doctor.audio.format.pcm import API_RATE_HZ, BYTES_PER_SAMPLE, decode

if TYPE_CHECKING:
    from doctor.audio.format.pcm import FloatArray

MAX_READ_BYTES = 1 << 31  # read_pcm16_mono loads whole files: refuse absurd ones


class AudioReadError(ValueError):
    """A file that cannot be read as audio; the message says why and what to do."""


def read_pcm16_mono(path: str) -> tuple[FloatArray, int]:
    """Read raw PCM16 LE mono (taken as 24 kHz) or a WAV file, as float32 mono in [-1, 1].

    WAV files are decoded whatever their width (8/16/24/32-bit, float, G.711) and
    down-mixed; their declared rate is returned. Raw files are taken as the API's format.
    Raises AudioReadError (a ValueError) with a one-line reason for anything else.
    """
    from doctor.audio.format.containers import sniff_container
    from doctor.audio.format.wav import WavError, is_wav, parse_wav_header

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
