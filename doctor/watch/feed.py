"""The relay's copy of every frame for the worker: a compact binary record stream.

The event loop must never wait for the worker, so records go through an asyncio write-pipe
transport (it never blocks) and are batched (one write per 5 ms at most); when the
transport's buffer passes `limit_bytes` (the worker is behind), records are dropped and
counted instead of growing memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import Iterator
from typing import Any, NamedTuple

HEADER = struct.Struct("<cBddII")  # kind, dir, t, wall, conn, payload length
KIND_TEXT, KIND_BINARY, KIND_OPEN, KIND_CLOSE = b"T", b"B", b"O", b"C"
DIRS = ("app", "service")
DEFAULT_LIMIT_BYTES = 32 * 1024 * 1024  # ~3 s of 50 sessions' frames both ways
FLUSH_S = 0.005  # records wait this long at most before they go to the worker in one write
PIPE_BYTES = 1024 * 1024  # the kernel's pipe buffer: fewer, larger writes and reads


class Item(NamedTuple):
    """One decoded record: a frame (`data` str or bytes) or a connection event (`details`).
    A named tuple: made once per frame on the worker's busiest path (a frozen dataclass
    costs several times as much to build)."""

    kind: bytes
    direction: str
    t: float
    wall: float
    conn: int
    data: str | bytes | None = None
    details: dict[str, Any] | None = None


def pack_frame(direction: int, t: float, wall: float, conn: int, data: str | bytes) -> bytes:
    if isinstance(data, str):
        body = data.encode("utf-8", "surrogatepass")
        return HEADER.pack(KIND_TEXT, direction, t, wall, conn, len(body)) + body
    return HEADER.pack(KIND_BINARY, direction, t, wall, conn, len(data)) + data


def pack_event(kind: bytes, t: float, wall: float, conn: int, details: dict[str, Any]) -> bytes:
    body = json.dumps(details, separators=(",", ":")).encode()
    return HEADER.pack(kind, 0, t, wall, conn, len(body)) + body


class Unpacker:
    """Splits the byte stream back into items, whatever the read boundaries were."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> Iterator[Item]:
        self._buf += chunk
        pos = 0
        size = HEADER.size
        buf = self._buf
        end = len(buf)
        try:
            with memoryview(buf) as view:  # text decoded from the buffer itself: one copy
                while end - pos >= size:
                    kind, d, t, wall, conn, n = HEADER.unpack_from(buf, pos)
                    start = pos + size
                    if end - start < n:
                        break
                    pos = start + n
                    if kind == KIND_TEXT:
                        text = str(view[start:pos], "utf-8", "replace")
                        yield Item(kind, DIRS[d], t, wall, conn, text)
                    elif kind == KIND_BINARY:
                        yield Item(kind, DIRS[d], t, wall, conn, bytes(view[start:pos]))
                    else:
                        details = json.loads(bytes(view[start:pos]))
                        yield Item(kind, "", t, wall, conn, details=details)
        finally:
            # what was handed out (or failed to parse) is gone even when its handling
            # raised: the next chunk must not hand it out again (a duplicate capture line)
            del buf[:pos]


class FeedWriter:
    """Non-blocking, bounded writer of records to the worker (used on the event loop only)."""

    def __init__(self, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> None:
        self.limit_bytes = limit_bytes
        self.transport: asyncio.WriteTransport | None = None
        self.dropped_frames = 0
        self.sent_frames = 0
        self.broken = False
        self._batch: list[bytes] = []
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def attach(self, fd_file: Any) -> None:
        """Wrap the pipe's write end (a file object) in a transport on the running loop."""
        self._loop = asyncio.get_running_loop()
        _grow_pipe(fd_file)
        transport, _ = await self._loop.connect_write_pipe(_PipeProtocol, fd_file)
        self.transport = transport
        proto = transport.get_protocol()
        assert isinstance(proto, _PipeProtocol)
        proto.on_lost = self._lost

    def _lost(self) -> None:
        self.broken = True

    def frame(self, direction: int, t: float, wall: float, conn: int, data: str | bytes) -> None:
        if self.transport is None or self.broken:
            self.dropped_frames += 1
            return
        if self.transport.get_write_buffer_size() > self.limit_bytes:
            self.dropped_frames += 1
            return
        self._batch.append(pack_frame(direction, t, wall, conn, data))
        self.sent_frames += 1
        self._schedule()

    def event(self, kind: bytes, t: float, wall: float, conn: int, details: dict[str, Any]) -> None:
        """Connection events are never dropped for buffer size (they are tiny and rare)."""
        if self.transport is None or self.broken:
            return
        self._batch.append(pack_event(kind, t, wall, conn, details))
        self._schedule()

    def _schedule(self) -> None:
        """One write per FLUSH_S at most: fewer system calls for the relay, and the worker
        woken (and reading) once per batch rather than once per frame."""
        if not self._scheduled and self._loop is not None:
            self._scheduled = True
            self._loop.call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._batch or self.transport is None:
            return
        data = b"".join(self._batch)
        self._batch.clear()
        if self.broken or self.transport.is_closing():
            return
        self.transport.write(data)

    def close(self) -> None:
        self.flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def _grow_pipe(fd_file: Any) -> None:
    """Ask for a 1 MiB pipe buffer (Linux; 64 KiB by default): one write per loop turn
    instead of one per 64 KiB, and room for the worker's short pauses."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        import fcntl

        fcntl.fcntl(fd_file.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


class _PipeProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.on_lost: Any = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.on_lost is not None:
            self.on_lost()
