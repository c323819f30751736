"""Client programs written the way apps in the wild are written for the live service, run
unchanged but for their URLs against the sandbox (its default, field behaviour) over real
sockets and real TLS. None of them uses agent-doctor's own client: each is plain
`websockets` (and `urllib` for the token), shaped like the code other teams published.

1. the vendor's Python quickstart: key in the header, a mic task streaming 50 ms chunks at
   real time, a receive loop that "plays" `reply.audio`, tools answered as soon as they
   return (the vendor's assistant page allows that);
2. a relay: a local server a browser-like client talks to, forwarding every frame to the
   service with the key the client never sees;
3. a headless probe: a token from GET /v1/token, `?token=` on the socket, the scripted
   turn sent in one burst, tool results held until `reply.done` (the documented rule).

Each must get from `session.ready` through a tool call to `session.ended`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest
import websockets
from sandbox_wire import pitch_hz, run, utterance

from doctor.sandbox.threaded import ThreadedSandbox

SAMPLE_RATE = 24000
CHUNK_MS = 50
CHUNK_BYTES = SAMPLE_RATE * 2 * CHUNK_MS // 1000
Factory = Callable[..., ThreadedSandbox]

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}


def get_weather(city: str, unit: str = "celsius") -> dict[str, Any]:
    """The app's own tool."""
    return {"city": city, "temperature": 21, "unit": unit, "summary": "sunny"}


# --- 1. the vendor's quickstart -------------------------------------------------------------


async def quickstart(url: str, api_key: str, mic: bytes, ca_file: str) -> dict[str, Any]:
    """The vendor quickstart's shape, with the microphone and speaker swapped for buffers."""
    played: dict[str, bytearray] = defaultdict(bytearray)  # reply_id -> the "speaker"
    log: list[dict[str, Any]] = []
    hang_up = asyncio.Event()
    ssl_context = ssl.create_default_context(cafile=ca_file)

    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {api_key}"}, ssl=ssl_context
    ) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "system_prompt": "You are a friendly assistant. Keep replies short.",
                        "greeting": "Hi there! How can I help you today?",
                        "output": {"voice": "jane"},
                        "tools": [WEATHER_TOOL],
                    },
                }
            )
        )

        async def send_mic() -> None:
            """Stream the mic continuously (speech, then silence) at real time."""
            loop = asyncio.get_running_loop()
            start = loop.time()
            position = 0
            while not hang_up.is_set():
                chunk = mic[position : position + CHUNK_BYTES] or bytes(CHUNK_BYTES)
                position += CHUNK_BYTES
                await ws.send(
                    json.dumps({"type": "input.audio", "audio": base64.b64encode(chunk).decode()})
                )
                sent_s = position / (SAMPLE_RATE * 2)
                await asyncio.sleep(max(0.0, start + sent_s - loop.time()))  # the mic's clock

        mic_task: asyncio.Task[None] | None = None
        async for message in ws:
            event = json.loads(message)
            kind = event["type"]
            log.append(event)
            if kind == "session.ready":
                mic_task = asyncio.create_task(send_mic())
            elif kind == "reply.audio":
                played[event["reply_id"]] += base64.b64decode(event["data"])
            elif kind == "tool.call":
                result = get_weather(**event["arguments"])
                await ws.send(
                    json.dumps(
                        {
                            "type": "tool.result",
                            "call_id": event["call_id"],
                            "result": json.dumps(result),
                        }
                    )
                )
            elif kind == "transcript.agent" and "sunny" in event["text"]:
                hang_up.set()  # the agent answered with the tool's result: hang up properly
                if mic_task is not None:
                    await mic_task
                await ws.send(json.dumps({"type": "session.end"}))
            elif kind == "session.error":
                print(f"error: {event['code']}: {event['message']}")
        if mic_task is not None and not mic_task.done():
            hang_up.set()
            mic_task.cancel()
    return {"log": log, "played": dict(played), "close_code": ws.close_code}


def test_vendor_style_quickstart_holds_a_conversation(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=1.0, tool_call="get_weather")
    assert sb.ca_file is not None
    mic = utterance(speech_s=0.8, silence_s=1.2)
    result = run(quickstart(sb.ws_url, sb.api_key, mic, sb.ca_file))

    types = [e["type"] for e in result["log"]]
    assert types[:2] == ["session.updated", "session.ready"] and types[-1] == "session.ended"
    for expected in (
        "input.speech.started",
        "input.speech.stopped",
        "transcript.user",
        "reply.started",
        "reply.audio",
        "transcript.agent.delta",
        "tool.call",
        "transcript.agent",
        "reply.done",
    ):
        assert expected in types, expected
    assert "session.error" not in types

    # The greeting was barged in on; the tool's reply and the answer ran whole.
    done = [e for e in result["log"] if e["type"] == "reply.done"]
    assert [d["status"] for d in done] == ["interrupted", "completed", "completed"]
    answer_id = done[-1]["reply_id"]
    answer = bytes(result["played"][answer_id])
    assert len(answer) == round((0.25 + 1.0) * SAMPLE_RATE * 2)  # lead-in + 1.0 s of voice
    voice = answer[round(0.25 * SAMPLE_RATE * 2) :]
    assert np.abs(np.frombuffer(voice, "<i2")).max() > 1000  # not silence
    assert 110 < pitch_hz(voice, SAMPLE_RATE) < 160  # a voice, when played at 24 kHz
    agent = [e for e in result["log"] if e["type"] == "transcript.agent"]
    assert agent[-1]["reply_id"] == answer_id and agent[-1]["interrupted"] is False
    assert result["close_code"] == 1000
    # every chunk the sandbox heard was a 50 ms one, sent as a JSON text frame
    heard = sb.find("input.audio")
    assert heard and all(
        e["audio_chars"] == len(base64.b64encode(bytes(CHUNK_BYTES))) for e in heard
    )


# --- 2. a relay -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def relay(upstream_url: str, api_key: str, ca_file: str) -> AsyncIterator[str]:
    """A local relay as apps run one: the browser talks to it, it talks to the service with
    the key, frames pass unchanged both ways; a close on one side closes the other."""
    upstream_ssl = ssl.create_default_context(cafile=ca_file)

    async def handler(client: Any) -> None:
        async with websockets.connect(
            upstream_url, additional_headers={"Authorization": api_key}, ssl=upstream_ssl
        ) as service:

            async def client_to_service() -> None:
                async for message in client:
                    await service.send(message)

            async def service_to_client() -> None:
                async for message in service:
                    await client.send(message)
                await client.close(service.close_code or 1000, service.close_reason or "")

            tasks = [
                asyncio.create_task(client_to_service()),
                asyncio.create_task(service_to_client()),
            ]
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()

    async with websockets.serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/agent"


async def browser_like_client(url: str, mic: bytes) -> dict[str, Any]:
    """What a web page does through the relay: no credentials of its own, 50 ms chunks,
    tool results after `reply.done`, `session.end` once the answer is in."""
    log: list[dict[str, Any]] = []
    pending: dict[str, dict[str, Any]] = {}
    async with websockets.connect(url) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "system_prompt": "Answer weather questions.",
                        "output": {"voice": "alba"},
                        "tools": [WEATHER_TOOL],
                    },
                }
            )
        )
        async for message in ws:
            event = json.loads(message)
            log.append(event)
            kind = event["type"]
            if kind == "session.ready":
                for i in range(0, len(mic), CHUNK_BYTES):
                    chunk = mic[i : i + CHUNK_BYTES]
                    await ws.send(
                        json.dumps(
                            {"type": "input.audio", "audio": base64.b64encode(chunk).decode()}
                        )
                    )
            elif kind == "tool.call":
                pending[event["call_id"]] = get_weather(**event["arguments"])
            elif kind == "reply.done" and pending:
                for call_id, result in pending.items():
                    await ws.send(
                        json.dumps(
                            {
                                "type": "tool.result",
                                "call_id": call_id,
                                "result": json.dumps(result),
                            }
                        )
                    )
                pending.clear()
            elif kind == "transcript.agent" and "sunny" in event["text"]:
                await ws.send(json.dumps({"type": "session.end"}))
    return {"log": log, "close_code": ws.close_code}


def test_relay_forwards_a_whole_session(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=0.4, tool_call="get_weather")
    assert sb.ca_file is not None
    mic = utterance(speech_s=0.6, silence_s=1.2)

    async def go() -> dict[str, Any]:
        async with relay(sb.ws_url, sb.api_key, sb.ca_file) as url:
            return await browser_like_client(url, mic)

    result = run(go())
    types = [e["type"] for e in result["log"]]
    assert "session.ready" in types and types[-1] == "session.ended"
    assert "tool.call" in types and "session.error" not in types
    call = next(e for e in result["log"] if e["type"] == "tool.call")
    assert call["arguments"]["city"] and call["arguments"].get("unit") in ("celsius", None)
    assert result["close_code"] == 1000
    assert sb.find("tool.result", call_id=call["call_id"])  # through the relay


# --- 3. a headless probe --------------------------------------------------------------------


def mint(token_url: str, api_key: str, ca_file: str) -> str:
    """GET /v1/token with the standard library, as server-side mint routes do."""
    query = urllib.parse.urlencode({"expires_in_seconds": 60})
    request = urllib.request.Request(f"{token_url}?{query}", headers={"Authorization": api_key})
    context = ssl.create_default_context(cafile=ca_file)
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        return str(json.load(response)["token"])


async def headless_probe(ws_url: str, token: str, mic: bytes, ca_file: str) -> dict[str, Any]:
    """Scripted turn, tools answered on reply.done, every event kept with its arrival."""
    events: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    url = f"{ws_url}?{urllib.parse.urlencode({'token': token})}"
    async with websockets.connect(url, ssl=ssl.create_default_context(cafile=ca_file)) as ws:
        await ws.send(json.dumps({"type": "session.update", "session": {"tools": [WEATHER_TOOL]}}))
        while True:
            try:
                event = json.loads(await asyncio.wait_for(ws.recv(), 15))
            except websockets.ConnectionClosed:
                break
            events.append(event)
            if event["type"] == "session.ready":
                for i in range(0, len(mic), CHUNK_BYTES):  # a burst (field-facts §4)
                    audio = base64.b64encode(mic[i : i + CHUNK_BYTES]).decode()
                    await ws.send(json.dumps({"type": "input.audio", "audio": audio}))
            elif event["type"] == "tool.call":
                held.append(event)
            elif event["type"] == "reply.done":
                for call in held:  # the documented rule: answer once reply.done is newest
                    output = get_weather(**call["arguments"])
                    await ws.send(
                        json.dumps(
                            {
                                "type": "tool.result",
                                "call_id": call["call_id"],
                                "result": json.dumps(output),
                            }
                        )
                    )
                if not held and any(e["type"] == "tool.call" for e in events):
                    await ws.send(json.dumps({"type": "session.end"}))
                held = []
    return {"events": events, "close_code": ws.close_code}


@pytest.mark.parametrize("auth", ["raw key", "Bearer key"])
def test_headless_probe_with_a_minted_token(sandbox_factory: Factory, auth: str) -> None:
    sb = sandbox_factory(reply_s=0.4, tool_call="get_weather")
    assert sb.ca_file is not None
    key = sb.api_key if auth == "raw key" else f"Bearer {sb.api_key}"
    token = mint(sb.token_url, key, sb.ca_file)
    result = run(headless_probe(sb.ws_url, token, utterance(), sb.ca_file))

    events = result["events"]
    types = [e["type"] for e in events]
    assert types[:2] == ["session.updated", "session.ready"] and types[-1] == "session.ended"
    assert "session.error" not in types and result["close_code"] == 1000
    assert all(isinstance(e["timestamp"], float) for e in events)
    answer = [e for e in events if e["type"] == "transcript.agent"]
    assert answer and "sunny" in answer[-1]["text"]
    assert events[-1]["audio_duration_seconds"] is None
