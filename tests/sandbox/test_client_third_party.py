"""A third-party client, written the way the vendor's Python quickstart is (plain
`websockets`, key in the Authorization header, a mic task streaming 50 ms chunks at real
time, a receive loop that "plays" reply.audio), must hold a whole conversation with the
sandbox. This is what users do when they point their own app at `agent-doctor sandbox`."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import defaultdict
from typing import Any

import numpy as np
import websockets
from sandbox_wire import pitch_hz, run, utterance

from doctor.sandbox.threaded import ThreadedSandbox

SAMPLE_RATE = 24000
CHUNK_MS = 50
CHUNK_BYTES = SAMPLE_RATE * 2 * CHUNK_MS // 1000


async def quickstart(url: str, api_key: str, mic: bytes) -> dict[str, Any]:
    """The vendor quickstart's shape, with the microphone and speaker swapped for buffers."""
    played: dict[str, bytearray] = defaultdict(bytearray)  # reply_id -> the "speaker"
    log: list[dict[str, Any]] = []
    hang_up = asyncio.Event()

    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {api_key}"}
    ) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "system_prompt": "You are a friendly assistant. Keep replies short.",
                        "greeting": "Hi there! How can I help you today?",
                        "output": {"voice": "ivy"},
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
            elif kind == "reply.done" and event.get("status") != "interrupted":
                if any(e["type"] == "transcript.user" for e in log):
                    hang_up.set()  # the agent answered us: hang up properly
                    if mic_task is not None:
                        await mic_task
                    await ws.send(json.dumps({"type": "session.end"}))
            elif kind == "session.ended":
                pass  # the server closes the socket next, which ends this loop
        if mic_task is not None and not mic_task.done():
            hang_up.set()
            mic_task.cancel()
    return {"log": log, "played": dict(played), "close_code": ws.close_code}


def test_vendor_style_quickstart_holds_a_conversation(sandbox_factory: Any) -> None:
    sb: ThreadedSandbox = sandbox_factory(reply_s=1.0)
    mic = utterance(speech_s=0.8, silence_s=1.2)
    result = run(quickstart(sb.ws_url, sb.api_key, mic))

    types = [e["type"] for e in result["log"]]
    assert types[0] == "session.ready" and types[-1] == "session.ended"
    for expected in (
        "input.speech.started",
        "input.speech.stopped",
        "transcript.user",
        "reply.started",
        "reply.audio",
        "transcript.agent",
        "reply.done",
    ):
        assert expected in types, expected
    assert "session.error" not in types

    # The greeting started speaking and was barged in on by the user; the answer ran whole.
    done = [e for e in result["log"] if e["type"] == "reply.done"]
    assert [d["status"] for d in done] == ["interrupted", "completed"]
    answer_id = done[-1]["reply_id"]
    answer = bytes(result["played"][answer_id])
    assert len(answer) == 1.0 * SAMPLE_RATE * 2  # 1.0 s of PCM16 mono at 24 kHz
    samples = np.frombuffer(answer, "<i2")
    assert np.abs(samples).max() > 1000  # not silence
    assert 110 < pitch_hz(answer, SAMPLE_RATE) < 160  # a voice, when played at 24 kHz
    agent = [e for e in result["log"] if e["type"] == "transcript.agent"]
    assert agent[-1]["reply_id"] == answer_id and agent[-1]["interrupted"] is False

    ended = result["log"][-1]
    assert ended["audio_duration_seconds"] >= len(mic) / (SAMPLE_RATE * 2)
    assert result["close_code"] == 1000
    # every chunk the sandbox heard was a 50 ms one, sent as a JSON text frame
    heard = sb.find("input.audio")
    assert heard and all(
        e["audio_chars"] == len(base64.b64encode(bytes(CHUNK_BYTES))) for e in heard
    )
