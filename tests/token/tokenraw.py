"""A one-off imitation of the Voice Agent API on plain ws://127.0.0.1, for protocol
violations the sandbox has no fault for (a `session.ready` without `session_id`).

It runs `websockets.asyncio.server.serve` in a thread with its own loop, so the CLI (a
subprocess) and in-process checks can both reach it over a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RawServer:
    """`no_id_on`: which first messages get a `session.ready` with no `session_id`
    ("session.update", "session.resume")."""

    no_id_on: frozenset[str]
    port: int = 0
    received: list[tuple[int, str]] = field(default_factory=list)  # (connection, type)
    _conns: int = 0

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws"

    def types(self, conn: int) -> list[str]:
        return [t for c, t in self.received if c == conn]

    @property
    def session_conns(self) -> list[int]:
        """Connections that sent a first session message (not the `wss` probe)."""
        return sorted({c for c, t in self.received if t in ("session.update", "session.resume")})

    async def _handle(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        self._conns += 1
        conn = self._conns
        with contextlib.suppress(ConnectionClosed):  # the resume check drops on purpose
            await self._serve(ws, conn)

    async def _serve(self, ws: Any, conn: int) -> None:
        async for raw in ws:
            message = json.loads(raw)
            kind = str(message.get("type"))
            self.received.append((conn, kind))
            if kind in ("session.update", "session.resume"):
                ready: dict[str, Any] = {"type": "session.ready"}
                if kind not in self.no_id_on:
                    ready["session_id"] = message.get("session_id") or (
                        "sess_" + secrets.token_hex(16)
                    )
                await ws.send(json.dumps(ready))
            elif kind == "session.end":
                await ws.send(json.dumps({"type": "session.ended", "session_duration_seconds": 0}))
                await ws.close(1000)
                return


@contextmanager
def raw_server(*no_id_on: str) -> Iterator[RawServer]:
    from websockets.asyncio.server import serve

    server = RawServer(frozenset(no_id_on))
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Future[None] = loop.create_future()

    async def main() -> None:
        async with serve(server._handle, "127.0.0.1", 0) as ws_server:
            server.port = next(iter(ws_server.sockets)).getsockname()[1]
            started.set()
            await stop

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10), "raw server did not start"
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
        loop.close()
