"""The relay's frame path: each data frame written straight to the other connection.

websockets' asyncio `Connection` puts every data frame in a queue for `recv()`; a task then
wakes, decodes the text, and `send()` encodes it again under a lock and drains: ~100 µs of
the relay's CPU per frame, nearly all of its cost with 50 sessions. Here the connection's
own `process_event` writes a data frame to the peer with the peer's sans-I/O protocol as
it is parsed: opcode and fragmentation kept, the payload never decoded. Control frames
(ping, pong, close) and the handshakes stay websockets' own, so closes, close codes and
1009 for a message over `max_size` behave as before.

Backpressure: when a write leaves the peer's transport above its high-water mark (its
`pause_writing` fired), this side stops reading until the peer's `resume_writing`; frames
that arrive before the peer is attached wait in a short list that also stops reading when
it grows. Nothing is buffered without bound.

This relies on websockets 17's asyncio internals (pinned in pyproject.toml); the guard
test in tests/watch/test_watch_fastpath.py fails loudly if they change.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.connection import Connection
from websockets.frames import Frame, Opcode
from websockets.protocol import State

EARLY_MAX_FRAMES = 64  # frames kept before the peer is attached, then reading stops
EARLY_MAX_BYTES = 1024 * 1024
WRITE_BATCH = 16  # frames from one read written together at most: the first waits < ~0.5 ms
NAMES = ("app", "service")
OP_TEXT, OP_BINARY, OP_CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
_LOST = itertools.count(1)  # which connection of a pair was lost first


class Link:
    """What both connections of one relayed session share: where stats, the feed and a
    failure go. `failed` is set (to "relay") when forwarding broke in a way that is not a
    close, so the relay ends both sides."""

    __slots__ = ("conn", "failed", "feed", "on_line", "stats")

    def __init__(
        self,
        conn: int,
        stats: Any,
        feed: Any,
        on_line: Callable[[str], None],
        failed: asyncio.Future[str],
    ) -> None:
        self.conn = conn
        self.stats = stats
        self.feed = feed
        self.on_line = on_line
        self.failed = failed

    def fail(self, text: str) -> None:
        if not self.failed.done():
            self.on_line(f"conn {self.conn}: {text}")
            self.failed.set_result("relay")


class FastPath(Connection):
    """Put before websockets' ServerConnection or ClientConnection in the bases."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.peer: FastPath | None = None
        self.link: Link | None = None
        self.direction = 0
        self.finished = False  # the session is over: late data frames are dropped
        self.early: list[tuple[Frame, float, float]] = []
        self.early_bytes = 0
        self.held = False  # reading paused by this module (not by websockets)
        self.frag: list[bytes] | None = None  # a fragmented message being assembled
        self.frag_text = False
        self.lost_seq = 0
        self.t_perf = 0.0  # when the bytes being parsed arrived
        self.t_mono = 0.0
        # frames handed to the peer's protocol, written in one go when the bytes that carried
        # them are parsed: (t_perf, t_mono, opcode, data, fin)
        self.unsent: list[tuple[float, float, Opcode, Any, bool]] = []
        self.close_timer: asyncio.TimerHandle | None = None

    # --- websockets' callbacks --------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.t_perf = time.perf_counter()
        self.t_mono = time.monotonic()
        super().data_received(data)
        if self.unsent and self.peer is not None:
            self._write(self.peer)
        if self.close_deadline is not None and self.close_timer is None:
            # websockets enforces its close timeout only inside send()/close()/ping(), which
            # this path never calls: a side that sent or answered a close and then keeps its
            # TCP open would hold the session (and the other side) open for ever
            self.close_timer = self.loop.call_at(self.close_deadline, self._close_overdue)

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and (
            event.opcode is OP_TEXT or event.opcode is OP_BINARY or event.opcode is OP_CONT
        ):
            peer = self.peer
            if peer is not None:
                self._forward(event, peer, self.t_perf, self.t_mono)
            elif not self.finished:
                self._keep(event)
            return
        super().process_event(event)

    def resume_writing(self) -> None:
        super().resume_writing()
        src = self.peer
        if src is not None and src.held:
            src._release()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.lost_seq = next(_LOST)
        super().connection_lost(exc)
        src = self.peer
        if src is not None and src.held:  # nothing to wait for now: let its close be read
            src.held = False
            src.transport.resume_reading()

    def _close_overdue(self) -> None:
        """The closing handshake outlived the close timeout: end the TCP connection, as
        websockets' own send_context would have."""
        if not self.connection_lost_waiter.done():
            self.set_connection_exc(TimeoutError("timed out while closing connection"))
            self.transport.abort()

    # --- the relay's side -------------------------------------------------------------------
    def attach(self, peer: FastPath, link: Link, direction: int) -> None:
        self.peer = peer
        self.link = link
        self.direction = direction

    def flush_early(self) -> None:
        """Forward, in order, the frames that arrived before the peer was attached."""
        early, self.early = self.early, []
        self.early_bytes = 0
        peer = self.peer
        if peer is None:
            return
        for frame, t_perf, t_mono in early:
            self._forward(frame, peer, t_perf, t_mono)
        if self.unsent:
            self._write(peer)
        self._release()

    def detach(self) -> None:
        self.finished = True
        self.peer = None
        self.early = []

    # --- the frame path -----------------------------------------------------------------------
    def _keep(self, frame: Frame) -> None:
        self.early.append((frame, self.t_perf, self.t_mono))
        self.early_bytes += len(frame.data)
        if not self.held and (
            len(self.early) >= EARLY_MAX_FRAMES or self.early_bytes >= EARLY_MAX_BYTES
        ):
            self.held = True
            self.transport.pause_reading()

    def _release(self) -> None:
        """Read again unless the peer is still above its high-water mark."""
        peer = self.peer
        if self.held and peer is not None and not peer.paused:
            self.held = False
            self.transport.resume_reading()

    def _forward(self, frame: Frame, peer: FastPath, t_perf: float, t_mono: float) -> None:
        """Hand the frame to the peer's protocol (written by `_write` once the bytes being
        parsed are done: one system call for the frames that came together)."""
        link = self.link
        assert link is not None
        data = frame.data
        op = frame.opcode
        fin = frame.fin
        try:
            proto = peer.protocol
            if proto.state is State.OPEN and not peer.transport.is_closing():
                if op is OP_TEXT:
                    proto.send_text(data, fin)
                elif op is OP_BINARY:
                    proto.send_binary(data, fin)
                else:
                    proto.send_continuation(data, fin)
                self.unsent.append((t_perf, t_mono, op, data, fin))
                if len(self.unsent) >= WRITE_BATCH:
                    self._write(peer)
                return
        except Exception as exc:  # never a traceback from a protocol callback
            link.fail(f"forwarding to the {NAMES[1 - self.direction]} failed: {_what(exc)}")
            return
        # sent by one side too late for the other (it is closing): not forwarded, still fed
        if link.feed is not None:
            self._feed_safely(link, op, data, fin, t_mono)

    def _write(self, peer: FastPath) -> None:
        """Write the handed frames to the peer's transport, then count and feed them."""
        link = self.link
        assert link is not None
        unsent, self.unsent = self.unsent, []
        try:
            writes = peer.protocol.data_to_send()
            out = writes[0] if len(writes) == 1 else b"".join(writes)
            if out:
                peer.transport.write(out)
            if not all(writes):  # pragma: no cover - an end of stream: not while it is open
                peer.send_data()
        except Exception as exc:
            link.fail(f"forwarding to the {NAMES[1 - self.direction]} failed: {_what(exc)}")
            return
        now = time.perf_counter()
        stats = link.stats
        add = stats.latency.add
        for t_perf, t_mono, op, data, fin in unsent:
            add(now - t_perf)
            stats.bytes_forwarded += len(data)
            if fin:
                stats.frames_forwarded += 1
            if link.feed is not None:
                self._feed_safely(link, op, data, fin, t_mono)
        if peer.paused and not self.held:
            self.held = True
            self.transport.pause_reading()

    def _feed_safely(self, link: Link, op: Opcode, data: Any, fin: bool, t_mono: float) -> None:
        try:
            self._feed(link, op, data, fin, t_mono)
        except Exception as exc:  # the analysis loses its copy; the frames still flow
            link.feed = None
            link.on_line(
                f"conn {link.conn}: the copy for the analysis failed ({_what(exc)}); "
                "frames are still forwarded"
            )

    def _feed(self, link: Link, op: Opcode, data: Any, fin: bool, t_mono: float) -> None:
        """The worker's copy, after forwarding: text as str, binary as bytes, a fragmented
        message whole (no bigger than max_size: websockets' parser enforces it)."""
        if op is not OP_CONT:
            if not fin:
                self.frag, self.frag_text = [data], op is OP_TEXT
                return
            text = op is OP_TEXT
        else:
            parts = self.frag
            if parts is None:  # pragma: no cover - the parser refuses a stray continuation
                return
            parts.append(data)
            if not fin:
                return
            self.frag = None
            data, text = b"".join(parts), self.frag_text
        link.feed.frame(
            self.direction,
            t_mono,
            time.time(),
            link.conn,
            data.decode("utf-8", "replace") if text else bytes(data),
        )


class UpstreamConnection(FastPath, ClientConnection):
    """The relay's connection to the service."""


def _what(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def first_lost(app: FastPath, up: FastPath) -> str:
    """Which side's connection ended first: "app" or "service"."""
    lost = [(c.lost_seq, name) for c, name in ((app, "app"), (up, "service")) if c.lost_seq]
    return min(lost)[1] if lost else "relay"
