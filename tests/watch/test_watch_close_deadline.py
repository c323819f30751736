"""A closing handshake that never finishes must not hold a watched session open.

The relay's frame path never calls websockets' send()/close(), where websockets enforces its
close timeout, so the relay enforces it: a side that sent or answered a close and then
keeps its TCP open is cut off after the close timeout, and the close reaches the other side.
Raw sockets play the stuck peer (a stuck proxy or service behaves so); the close timeout is
shortened to 1 s to keep the tests short.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import struct
from collections.abc import Awaitable, Callable

import pytest
from watchparts import run
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from doctor.watch import relay as relay_module
from doctor.watch.relay import Relay, Upstream

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLOSE_S = 1.0
WITHIN_S = 8.0  # far past the 1 s close timeout (plus its 1 s wait for the close): a bound


@pytest.fixture(autouse=True)
def short_close_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay_module, "CLOSE_TIMEOUT_S", CLOSE_S)


def _masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


async def _read_frame(r: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await r.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await r.readexactly(2))[0]
    return b0 & 0x0F, await r.readexactly(n)


async def _accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    head = await r.readuntil(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key")
    )
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    w.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def _deaf_service(
    eof: asyncio.Event,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A service that upgrades, reads the close and never answers it; `eof` is set when
    the relay ends its TCP connection."""

    async def service(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _accept(r, w)
        while await r.read(65536):
            pass
        eof.set()

    return service


async def _with_raw_service(
    service: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    ended: Ended,
) -> tuple[asyncio.Server, Relay]:
    server = await asyncio.start_server(service, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    relay = Relay(
        Upstream(f"ws://127.0.0.1:{port}/v1/ws", "http://127.0.0.1:9/v1/token"),
        on_closed=ended,
    )
    await relay.start()
    return server, relay


class Ended:
    """The relay's `on_closed` calls, and an event for the first one."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.first = asyncio.Event()

    def __call__(self, n: int) -> None:
        self.calls.append(n)
        self.first.set()


async def _sessions_ended(ended: Ended) -> list[int]:
    """What the relay counted as ended, once it counted one (or after WITHIN_S)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ended.first.wait(), WITHIN_S)
    return list(ended.calls)


def test_a_service_that_closes_and_keeps_its_tcp_open_is_cut_off_and_the_app_told() -> None:
    async def main() -> tuple[int | None, list[int]]:
        async def service(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await _accept(r, w)
            w.write(bytes([0x81, 5]) + b"hello")
            w.write(bytes([0x88, 6]) + struct.pack("!H", 4001) + b"gone")
            while await r.read(65536):  # never answers, never closes
                pass

        ended = Ended()
        server, relay = await _with_raw_service(service, ended)
        try:
            async with connect(relay.url, proxy=None, compression=None) as ws:

                async def talk() -> None:  # the app keeps talking, as a live app does
                    with contextlib.suppress(ConnectionClosed):
                        while True:
                            await ws.send(b"\0" * 320)
                            await asyncio.sleep(0.1)  # its pace, not a synchronisation

                talker = asyncio.ensure_future(talk())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.wait_closed(), WITHIN_S)
                talker.cancel()
                code = ws.close_code
            gone = await _sessions_ended(ended)  # before the relay stops
        finally:
            await relay.stop()
            server.close()
        return code, gone

    code, ended = run(main())
    assert code == 4001, code  # the service's close reached the app
    assert ended == [1]  # and the session ended (what --sessions counts)


def test_an_app_that_closes_and_keeps_its_tcp_open_lets_the_service_go() -> None:
    async def main() -> tuple[int | None, list[int]]:
        service_code: list[int | None] = []
        service_gone = asyncio.Event()

        async def service(ws: ServerConnection) -> None:
            try:
                while True:
                    await ws.send('{"type":"tick"}')
                    await asyncio.sleep(0.05)  # its pace, not a synchronisation
            except ConnectionClosed:
                service_code.append(ws.close_code)
                service_gone.set()

        async with serve(service, "127.0.0.1", 0, compression=None) as srv:
            port = next(iter(srv.sockets)).getsockname()[1]
            ended = Ended()
            relay = Relay(
                Upstream(f"ws://127.0.0.1:{port}/v1/ws", "http://127.0.0.1:9/v1/token"),
                on_closed=ended,
            )
            await relay.start()
            r, w = await asyncio.open_connection("127.0.0.1", relay.port)
            key = base64.b64encode(os.urandom(16)).decode()
            w.write(
                f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{relay.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            await r.readuntil(b"\r\n\r\n")
            w.write(_masked(0x8, struct.pack("!H", 1000) + b"bye"))
            while (await _read_frame(r))[0] != 0x8:  # until the relay answers the close
                pass
            # the app now keeps its TCP open, no FIN ever: the service must still go
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(service_gone.wait(), WITHIN_S)
            code = service_code[0] if service_code else None  # before the relay stops
            gone = await _sessions_ended(ended)
            w.transport.abort()
            await relay.stop()
        return code, gone

    code, ended = run(main())
    assert code == 1000, code  # the app's close reached the service
    assert ended == [1]


def test_a_service_that_never_answers_a_close_has_its_tcp_ended() -> None:
    async def main() -> bool:
        eof = asyncio.Event()
        service = _deaf_service(eof)

        ended = Ended()
        server, relay = await _with_raw_service(service, ended)
        try:
            async with connect(relay.url, proxy=None, compression=None) as ws:
                await ws.send("hi")
            await asyncio.wait_for(eof.wait(), WITHIN_S)
            return True
        except TimeoutError:
            return False
        finally:
            await relay.stop()
            server.close()

    assert run(main()), "the relay left the upstream TCP connection open"


def test_closing_a_peer_that_never_answers_ends_its_tcp() -> None:
    """What `stop()` and an abandoned handshake use: the close's own timeout cancels
    websockets' close() before its deadline, so the TCP connection is ended here."""
    from doctor.watch.relay import _close_or_abort

    async def main() -> bool:
        eof = asyncio.Event()
        service = _deaf_service(eof)

        server = await asyncio.start_server(service, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ws = await connect(
            f"ws://127.0.0.1:{port}/v1/ws", close_timeout=CLOSE_S, compression=None, proxy=None
        )
        try:
            await _close_or_abort(ws, 1001, "", CLOSE_S)
            await asyncio.wait_for(eof.wait(), WITHIN_S)
            return True
        except TimeoutError:
            return False
        finally:
            ws.transport.abort()
            server.close()

    assert run(main()), "the peer's TCP connection was left open"
