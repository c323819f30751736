"""The relay's frame path (doctor/watch/fastpath.py): data frames written straight to the
other side as they are parsed. Real sockets, the relay in this process so that its
connections and its feed to the worker can be looked at; a recording feed stands in for
the worker's pipe (the worker is not what these tests are about)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import websockets
from watchparts import run
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import Protocol

from doctor.watch import fastpath
from doctor.watch.fastpath import EARLY_MAX_FRAMES, FastPath, UpstreamConnection
from doctor.watch.relay import Relay, Upstream

Handler = Callable[[ServerConnection], Awaitable[None]]


class RecordingFeed:
    """The worker's feed as a list: what `FeedWriter.frame/event` would have packed."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, int, str | bytes]] = []
        self.events: list[tuple[bytes, dict[str, Any]]] = []
        self.dropped_frames = 0

    def frame(self, direction: int, t: float, wall: float, conn: int, data: str | bytes) -> None:
        self.frames.append((direction, conn, data))

    def event(self, kind: bytes, t: float, wall: float, conn: int, details: dict[str, Any]) -> None:
        self.events.append((kind, details))


@contextlib.asynccontextmanager
async def relay_to(
    service: Handler, relay_cls: type[Relay] = Relay
) -> AsyncIterator[tuple[Relay, RecordingFeed]]:
    """A fake service on loopback and a relay in front of it (its feed recorded)."""
    async with serve(service, "127.0.0.1", 0, max_size=2**24, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        feed = RecordingFeed()
        relay = relay_cls(
            Upstream(f"ws://127.0.0.1:{port}/v1/ws", "http://127.0.0.1:9/v1/token"),
            feed=feed,  # type: ignore[arg-type]
        )
        await relay.start()
        try:
            yield relay, feed
        finally:
            await relay.stop()


def app_connect(relay: Relay) -> connect:
    return connect(relay.url, proxy=None, compression=None, max_size=2**24)


def test_frames_that_arrive_before_the_session_is_wired_keep_their_order() -> None:
    """The service talks at once and the app too, before the relay has wired the two
    connections: those frames wait (reading stops once the list is full), then go on in
    order ahead of everything after them."""
    count = 3 * EARLY_MAX_FRAMES
    seen_by_service: list[str] = []
    got: dict[str, Any] = {}

    async def service(ws: ServerConnection) -> None:
        for i in range(count):
            await ws.send(json.dumps({"n": i}))
        async for msg in ws:
            seen_by_service.append(str(msg))
            if len(seen_by_service) == count:
                break

    def early_full(conn: FastPath) -> bool:
        return isinstance(conn, UpstreamConnection) and len(conn.early) >= EARLY_MAX_FRAMES

    class SlowToWire(Relay):
        """Wires a session only after the service's early frames filled the list."""

        async def _relay(self, app: Any, p: Any) -> None:
            up: FastPath = p.upstream
            await full.wait()
            got["kept"] = len(up.early)
            got["up_reading"] = up.transport.is_reading()
            got["up_held"] = up.held
            await super()._relay(app, p)

    async def go() -> list[int]:
        async with relay_to(service, SlowToWire) as (relay, _feed), app_connect(relay) as ws:
            for i in range(count):
                await ws.send(json.dumps({"n": i}))
            return [json.loads(await ws.recv())["n"] for _ in range(count)]

    with after_call("_keep", early_full) as full:
        order = run(go())
    assert got["kept"] >= EARLY_MAX_FRAMES  # they did arrive before the session was wired
    assert got["up_held"] is True and got["up_reading"] is False  # and reading stopped
    assert order == list(range(count))
    assert [json.loads(m)["n"] for m in seen_by_service] == list(range(count))


@contextlib.contextmanager
def after_call(name: str, check: Callable[[FastPath], bool]) -> Iterator[asyncio.Event]:
    """Wrap FastPath.<name>: the event is set once `check(conn)` holds after a call (a
    flag set inside a protocol callback, waited for without polling)."""
    real = getattr(FastPath, name)
    event = asyncio.Event()

    def wrapped(conn: FastPath, *args: Any) -> Any:
        out = real(conn, *args)
        if check(conn):
            event.set()
        return out

    setattr(FastPath, name, wrapped)
    try:
        yield event
    finally:
        setattr(FastPath, name, real)


def test_fragmented_messages_stay_fragmented_and_the_feed_gets_them_whole() -> None:
    parts_text = ['{"type": "reply.', 'text", "text": "caf\u00e9', ' \u2603"}']
    parts_bin = [b"\x00\x01", b"\xff", b"\x80\x81"]
    got: dict[str, Any] = {}

    async def service(ws: ServerConnection) -> None:
        got["service_text"] = [f async for f in ws.recv_streaming()]
        got["service_bin"] = [f async for f in ws.recv_streaming()]
        await ws.send(parts_text)  # an iterable: one fragmented message
        await ws.send(parts_bin)
        await ws.wait_closed()

    async def go() -> RecordingFeed:
        async with relay_to(service) as (relay, feed):
            async with app_connect(relay) as ws:
                await ws.send(parts_text)
                await ws.send(parts_bin)
                got["app_text"] = [f async for f in ws.recv_streaming()]
                got["app_bin"] = [f async for f in ws.recv_streaming()]
            return feed

    feed = run(go())
    for side in ("service", "app"):  # each frame arrived as its own frame, same type
        # (websockets ends a message sent from an iterable with an empty final frame)
        assert got[f"{side}_text"] == [*parts_text, ""]
        assert got[f"{side}_bin"] == [*parts_bin, b""]
    assert [(d, data) for d, _conn, data in feed.frames] == [
        (0, "".join(parts_text)),
        (0, b"".join(parts_bin)),
        (1, "".join(parts_text)),
        (1, b"".join(parts_bin)),
    ]


def test_text_is_never_decoded_on_the_way_invalid_utf8_included() -> None:
    """A text frame that is not UTF-8 goes through as it is, both ways (the relay does not
    judge it); the feed gets it with replacement characters."""
    bad = b'{"type": "x", "v": "\xff\xfe"}'
    got: dict[str, Any] = {}

    async def service(ws: ServerConnection) -> None:
        got["service"] = await ws.recv(decode=False)
        await ws.send(got["service"], text=True)
        await ws.wait_closed()

    async def go() -> RecordingFeed:
        async with relay_to(service) as (relay, feed):
            async with app_connect(relay) as ws:
                await ws.send(bad, text=True)
                got["app"] = await ws.recv(decode=False)
            return feed

    feed = run(go())
    assert got["service"] == bad and got["app"] == bad
    assert [data for _d, _c, data in feed.frames] == [bad.decode("utf-8", "replace")] * 2


def test_invalid_utf8_is_refused_by_the_service_and_the_app_sees_its_close() -> None:
    """A service that decodes text closes with 1007; the relay did not refuse it itself,
    and mirrors the service's close to the app."""
    got: dict[str, Any] = {}

    async def service(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            await ws.recv()

    async def go() -> RecordingFeed:
        async with relay_to(service) as (relay, feed), app_connect(relay) as ws:
            await ws.send(b"\xc3\x28", text=True)
            await ws.wait_closed()
            got["code"] = ws.close_code
        return feed  # relay.stop() waited for the session's end: its close is recorded

    feed = run(go())
    assert got["code"] == 1007
    close = next(d for kind, d in feed.events if kind == b"C")
    assert close["by"] == "service" and close["code"] == 1007


def test_binary_stays_binary_and_text_stays_text() -> None:
    msgs: list[str | bytes] = ["{}", b"{}", b"", "", b"\x00" * 70_000, "\u00e9" * 40_000]
    got: list[str | bytes] = []

    async def service(ws: ServerConnection) -> None:
        async for m in ws:
            await ws.send(m)

    async def go() -> tuple[int, int]:
        async with relay_to(service) as (relay, feed):
            async with app_connect(relay) as ws:
                for m in msgs:
                    await ws.send(m)
                got.extend([await ws.recv() for _ in msgs])
            return relay.stats.frames_forwarded, len(feed.frames)

    forwarded, fed = run(go())
    assert got == msgs and [type(m) for m in got] == [type(m) for m in msgs]
    assert forwarded == fed == 2 * len(msgs)


def test_a_reader_that_stops_holds_the_sender_back_and_releases_it() -> None:
    """The app stops reading: the relay's buffer towards it passes its high-water mark, so
    the relay stops reading the service (whose sends then wait: the bound itself is
    test_watch_bad_input's); when the app reads again, everything arrives in order and the
    relay reads the service again."""
    size, frames = 256 * 1024, 120
    state: dict[str, Any] = {}

    async def service(ws: ServerConnection) -> None:
        for i in range(frames):
            await ws.send(json.dumps({"n": i, "pad": "A" * size}))
        await ws.wait_closed()

    def holding(conn: FastPath) -> bool:
        return isinstance(conn, UpstreamConnection) and conn.held

    async def go() -> list[int]:
        async with relay_to(service) as (relay, _feed), app_connect(relay) as ws:
            await held.wait()
            up = next(iter(relay._live)).peer
            state["reading"] = up.transport.is_reading()
            state["app_side_paused"] = up.peer.paused
            out = [json.loads(await ws.recv())["n"] for _ in range(frames)]
            state["held_after"] = up.held
            return out

    with after_call("_write", holding) as held:
        got = run(go())
    assert state["reading"] is False and state["app_side_paused"] is True
    assert got == list(range(frames)) and state["held_after"] is False


def test_websockets_internals_the_frame_path_relies_on() -> None:
    """doctor/watch/fastpath.py overrides websockets' asyncio Connection internals; if this
    fails after a websockets upgrade, re-read fastpath.py against the new source before
    changing the pin."""
    assert websockets.version.version.split(".")[0] == "17"
    src = inspect.getsource
    # frames reach process_event from data_received, which stamps nothing itself
    assert "self.process_event(event)" in src(Connection.data_received)
    # the data frames it would queue for recv() are the ones the fast path takes instead
    assert "self.recv_messages.put(event)" in src(Connection.process_event)
    assert "DATA_OPCODES" in src(Connection.process_event)
    # handshakes go through process_event first, then frames go to Connection's
    for cls in (ServerConnection, ClientConnection):
        assert "super().process_event(event)" in src(cls.process_event)
    # the end of a connection is a future, set in connection_lost
    assert "self.connection_lost_waiter.set_result(None)" in src(Connection.connection_lost)
    # write flow control: `paused` follows pause_writing / resume_writing
    assert "self.paused = True" in src(Connection.pause_writing)
    assert "self.paused = False" in src(Connection.resume_writing)
    # writing: the sans-I/O protocol's senders, then send_data() to the transport
    for name in ("send_text", "send_binary", "send_continuation"):
        assert list(inspect.signature(getattr(Protocol, name)).parameters) == [
            "self",
            "data",
            "fin",
        ]
    assert "self.transport.write(data)" in src(Connection.send_data)
    assert "protocol.data_to_send()" in src(Connection.send_data)
    # our classes sit in front of websockets' own
    assert UpstreamConnection.__mro__[1:3] == (FastPath, ClientConnection)
    assert fastpath.FastPath.process_event is not Connection.process_event


@pytest.mark.parametrize("who", ["app", "service"])
def test_a_huge_message_is_refused_with_1009_as_before(who: str) -> None:
    """websockets' max_size still applies on the fast path: a message over 16 MiB ends
    the connection with 1009, and the other side gets the relay's close."""
    big = "x" * (16 * 1024 * 1024 + 1)
    got: dict[str, Any] = {}

    async def service(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            if who == "service":
                await ws.send(big)
            await ws.recv()
        got["service_code"] = ws.close_code

    async def go() -> RecordingFeed:
        async with relay_to(service) as (relay, feed):
            ws = await app_connect(relay)
            with contextlib.suppress(ConnectionClosed):
                if who == "app":
                    await ws.send(big)
                await ws.recv()
            got["app_code"] = ws.close_code
            # (the test app's own close after its 16 MiB send was cut short can trip over
            # its transport inside websockets; the relay's side is what is tested here)
            with contextlib.suppress(Exception):
                await ws.close()
        return feed  # relay.stop() waited for the session's end: its close is recorded

    feed = run(go())
    close = next(d for kind, d in feed.events if kind == b"C")
    assert close["by"] == "relay" and close["code"] == 1009
    other = "service" if who == "app" else "app"
    assert got[f"{other}_code"] == 1009 and feed.frames == []


def test_a_failure_on_the_frame_path_ends_both_sides_with_1011_in_one_line() -> None:
    """A bug on the forwarding path (here: the upstream's protocol raising) is one line, and
    both sides are closed with 1011; a failing copy for the analysis loses the copy only."""
    lines: list[str] = []
    got: dict[str, Any] = {}

    async def service(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for m in ws:
                await ws.send(m)
        got["service_code"] = ws.close_code

    def boom(*_args: Any) -> None:
        raise RuntimeError("boom")

    async def go() -> RecordingFeed:
        async with relay_to(service) as (relay, feed):
            relay.on_line = lines.append
            async with app_connect(relay) as ws:
                await ws.send("one")
                assert await ws.recv() == "one"  # wired both ways
                app_conn: FastPath = next(iter(relay._live))
                feed.frame = boom  # type: ignore[method-assign]
                await ws.send("two")
                got["two"] = await ws.recv()  # the copy failed, the frame went on
                assert app_conn.peer is not None
                app_conn.peer.protocol.send_text = boom  # type: ignore[method-assign]
                await ws.send("three")
                with contextlib.suppress(ConnectionClosed):
                    await ws.recv()
                got["app_code"] = ws.close_code
        return feed

    feed = run(go())
    assert got["two"] == "two" and got["app_code"] == 1011 and got["service_code"] == 1011
    assert lines == [
        "conn 1: the copy for the analysis failed (RuntimeError: boom); frames are still forwarded",
        "conn 1: forwarding to the service failed: RuntimeError: boom",
    ]
    close = next(d for kind, d in feed.events if kind == b"C")
    assert close["by"] == "relay"
