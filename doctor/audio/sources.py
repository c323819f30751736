"""Reading validate-audio's input: a path or `-`, in chunks, with one-line errors (shell).

The only I/O of the audio-format area besides `pcm.read_pcm16_mono`; memory stays at a
few chunks whatever the input size.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from doctor.audio.findings import Validation

CHUNK_BYTES = 960 * 4096  # 3.75 MiB: whole 20 ms frames of PCM16 at 24 kHz


class InputError(Exception):
    """Input that cannot be read; the message is one line naming the problem and next step."""


def check_path(path: str) -> int | None:
    """Raise InputError for a missing, folder, unreadable or empty path; return its size."""
    if path == "-":
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (check the path)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path} is a folder: pass the audio file inside it") from None
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied (check the file's permissions)")
    if stat.S_ISREG(st.st_mode) and st.st_size == 0:
        raise InputError(f"{path} is empty (0 bytes): capture some audio first")
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def iter_chunks(fh: BinaryIO, chunk: int = CHUNK_BYTES) -> Iterator[bytes]:
    while True:
        data = fh.read(chunk)
        if not data:
            return
        yield data


def open_chunks(path: str) -> Iterator[bytes]:
    """Chunks of a path (or stdin for `-`); errors while reading become InputError."""
    if path == "-":
        yield from iter_chunks(sys.stdin.buffer)
        return
    try:
        with open(path, "rb") as fh:
            yield from iter_chunks(fh)
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def validate_path(path: str, kind: str | None) -> Validation:
    """Validate a path or `-`; InputError for unreadable or empty input."""
    from doctor.audio.analyze import validate

    check_path(path)
    seen = 0

    def counted() -> Any:
        nonlocal seen
        for c in open_chunks(path):
            seen += len(c)
            yield c

    v = validate(counted(), kind=kind)
    if seen == 0:
        raise InputError(
            f"{'standard input' if path == '-' else path} is empty (0 bytes): "
            "capture some audio first"
        )
    return v
