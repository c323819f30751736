"""Helpers for the sandbox tests: raw websockets frames and speech-like input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from doctor.sandbox.audio import synth_voice
from doctor.sandbox.threaded import ThreadedSandbox

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
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
