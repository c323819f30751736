"""Reading validate-audio's input: a path or `-`, in chunks, with one-line errors (shell).

The only I/O of the audio-format area besides `pcm_file.read_pcm16_mono`; memory stays at a
few chunks whatever the input size.
"""

from __future__ import annotations

import os
import queue
import stat
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from doctor.audio.format.findings import Validation

CHUNK_BYTES = 960 * 4096  # 3.75 MiB: whole 20 ms frames of PCM16 at 24 kHz
READ_AHEAD = 2  # chunks a reader thread keeps ready: reading overlaps the analysis


class InputError(Exception):
    """Input that cannot be read; the message is one line naming the problem and next step."""


def check_path(path: str) -> int | None:
    """Raise InputError for a missing, folder or unreadable path; return its size.

    An empty file is readable: it gets a report with the `empty` finding, not a usage error."""
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
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def iter_chunks(fh: BinaryIO, chunk: int = CHUNK_BYTES) -> Iterator[bytes]:
    while True:
        data = fh.read(chunk)
        if not data:
            return
        yield data


def read_ahead(
    fh: BinaryIO, chunk: int = CHUNK_BYTES, depth: int = READ_AHEAD, join: bool = True
) -> Iterator[bytes]:
    """Like `iter_chunks`, but a daemon thread reads the next chunks while the caller works.

    Memory stays at `depth` + 2 chunks. Read errors are raised in the caller. `join` waits
    for the reader after an early stop (not for stdin, whose read may block forever).
    """
    q: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: bytes | BaseException) -> None:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def reader() -> None:
        try:
            while not stop.is_set():
                data = fh.read(chunk)
                put(data)
                if not data:
                    return
        except BaseException as exc:  # handed to the caller, who raises it
            put(exc)

    t = threading.Thread(target=reader, name="validate-audio-reader", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                return
            yield item
    finally:
        stop.set()
        if join:
            t.join(timeout=10.0)


def open_chunks(path: str) -> Iterator[bytes]:
    """Chunks of a path (or stdin for `-`); errors while reading become InputError."""
    if path == "-":
        yield from read_ahead(sys.stdin.buffer, join=False)
        return
    try:
        with open(path, "rb") as fh:
            yield from read_ahead(fh)
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def validate_path(path: str, kind: str | None, source_rate: int | None = None) -> Validation:
    """Validate a path or `-`; InputError for input that cannot be read. Empty input is
    a Validation with the `empty` finding (verdict invalid)."""
    from doctor.audio.format.analyze import validate

    check_path(path)
    return validate(open_chunks(path), kind=kind, source_rate=source_rate)
