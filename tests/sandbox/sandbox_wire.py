"""Helpers for the sandbox tests: raw websockets frames and speech-like input."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import netparts
import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from doctor.sandbox.audio import synth_voice
from doctor.sandbox.threaded import ThreadedSandbox

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


async def raw(
    sb: ThreadedSandbox, headers: dict[str, str] | None = None, query: str = ""
) -> ClientConnection:
    """A plain websockets connection (SSL_CERT_FILE trusts the sandbox CA)."""
    url = sb.ws_url + (f"?{query}" if query else "")
    return await connect(url, additional_headers=headers or {}, proxy=None, open_timeout=10)


async def recv(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    assert isinstance(msg, dict)
    return msg


async def recv_until(
    ws: ClientConnection, type_: str, timeout: float = 15.0
) -> list[dict[str, Any]]:
    """Every message up to and including the first of `type_`."""
    seen: list[dict[str, Any]] = []
    while True:
        seen.append(await recv(ws, timeout))
        if seen[-1]["type"] == type_:
            return seen


async def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


def utterance(speech_s: float = 0.6, silence_s: float = 1.2, seed: int = 9) -> bytes:
    """PCM16 24 kHz: a short lead-in, voice-like speech, then enough silence to end the turn."""
    lead = np.zeros(2400, np.int16)
    tail = np.zeros(round(silence_s * 24000), np.int16)
    return np.concatenate([lead, synth_voice(speech_s, seed=seed), tail]).astype("<i2").tobytes()


def chunks(pcm: bytes, ms: int = 50) -> list[bytes]:
    size = 24000 * 2 * ms // 1000
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


class FakeClock:
    """The sandbox's time source, moved forward by the test instead of sleeping."""

    def __init__(self) -> None:
        self._monotonic = time.monotonic
        self.offset_s = 0.0

    def __call__(self) -> float:
        return self._monotonic() + self.offset_s

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds


def pitch_hz(pcm: bytes, rate: int = 24000) -> float:
    """Fundamental of a voiced signal by autocorrelation, read at `rate` (60-400 Hz)."""
    x = np.frombuffer(pcm, "<i2").astype(np.float64)
    x = x - x.mean()
    corr = np.correlate(x[:12000], x[:12000], "full")[11999:]
    lo, hi = rate // 400, rate // 60
    lag = lo + int(np.argmax(corr[lo:hi]))
    return rate / lag


def events_of(sb: ThreadedSandbox, conn: int, directions: tuple[str, ...]) -> list[dict[str, Any]]:
    """The sandbox log's frames on one connection (no http/ws bookkeeping)."""
    return [
        e
        for e in list(sb.events)
        if e["conn"] == conn and e["direction"] in directions and not e["type"].startswith("ws.")
    ]


@contextlib.contextmanager
def tinyproxy(tmp: Path, allow_ports: list[int]) -> Iterator[tuple[str, Path]]:
    """A real HTTP CONNECT proxy on loopback allowing only `allow_ports`: (url, log file)."""
    with netparts.tinyproxy(tmp, allow_ports) as (port, log):
        yield f"http://127.0.0.1:{port}", log


@contextlib.contextmanager
def unanswering_listener() -> Iterator[int]:
    """A port whose TCP handshake completes (listen backlog) but that never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


@contextlib.contextmanager
def trickling_server(every_s: float = 0.2) -> Iterator[int]:
    """An HTTP server that answers 200 with headers, then one body byte every `every_s`
    until the context ends: each read is quick, the answer never completes."""
    import threading

    stop = threading.Event()
    peers: list[socket.socket] = []

    def trickle(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000000\r\n\r\n{"
            )
            while not stop.wait(every_s):
                conn.sendall(b" ")

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        srv.settimeout(0.2)

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = srv.accept()
                except (TimeoutError, OSError):
                    continue
                peers.append(conn)
                threading.Thread(target=trickle, args=(conn,), daemon=True).start()

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        try:
            yield int(srv.getsockname()[1])
        finally:
            stop.set()
            acceptor.join(5)
            for conn in peers:
                conn.close()
