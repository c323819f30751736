"""Conformance: a conversation turn, barge-in and the tool round trip (protocol.md §3.1,
§3.3, §3.5), through the real client; the sandbox's own log times the pacing."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sandbox_wire import chunks, pitch_hz, raw, recv, recv_until, run, send, utterance

from doctor.net.agent_api import AgentConnection
from doctor.net.events import ServerEvent
from doctor.sandbox.threaded import ThreadedSandbox

# These tests pin protocol.md's version; the field's default is in test_field_*.py.
pytestmark = pytest.mark.sandbox_behaviour("documented")

Factory = Callable[..., ThreadedSandbox]
TURN = [
    "input.speech.started",
    "transcript.user.delta",
    "input.speech.stopped",
    "transcript.user",
    "reply.started",
    "reply.audio",
    "transcript.agent",
    "reply.done",
]


def collapse(types: list[str]) -> list[str]:
    """Repeated events (reply.audio x N) shown once."""
    return [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t]


async def talk(c: AgentConnection, pcm: bytes) -> None:
    for chunk in chunks(pcm):
        await c.send_audio(chunk)


async def collect_until(c: AgentConnection, type_: str, **fields: Any) -> list[ServerEvent]:
    seen: list[ServerEvent] = []
    while True:
        event = await c.next_event()
        assert event is not None, f"closed before {type_}"
        seen.append(event)
        if event.type == type_ and all(event.payload.get(k) == v for k, v in fields.items()):
            return seen


def test_a_turn_produces_the_documented_sequence(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=0.5)

    async def go() -> list[ServerEvent]:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({})
            await talk(c, utterance(speech_s=0.6))
            events = await collect_until(c, "reply.done")
            await c.end()
            return events

    events = run(go())
    assert collapse([e.type for e in events]) == TURN
    by_type = {e.type: e.payload for e in events}
    assert by_type["transcript.user"]["text"] == by_type["transcript.user.delta"]["text"]
    assert "0.6 s" in by_type["transcript.user"]["text"]
    reply_id = by_type["reply.started"]["reply_id"]
    audio = [e.payload for e in events if e.type == "reply.audio"]
    assert all(a["reply_id"] == reply_id and "audio" not in a for a in audio)
    pcm = b"".join(base64.b64decode(a["data"], validate=True) for a in audio)
    assert len(pcm) == 0.5 * 24000 * 2  # PCM16 mono, 24 kHz, the configured reply length
    samples = np.frombuffer(pcm, "<i2")
    assert 20 * np.log10(np.sqrt(np.mean(samples.astype(float) ** 2)) / 32768) > -30
    assert 110 < pitch_hz(pcm, 24000) < 160  # a ~130 Hz voice only when read at 24 kHz
    agent = by_type["transcript.agent"]
    assert agent["reply_id"] == reply_id and agent["interrupted"] is False and agent["text"]
    assert by_type["reply.done"] == {
        "type": "reply.done",
        "reply_id": reply_id,
        "status": "completed",
    }


def test_reply_audio_is_paced_at_real_time(sandbox_factory: Factory) -> None:
    """The sandbox's own log: chunk k goes out no earlier than k x 50 ms after the first."""
    sb = sandbox_factory(reply_s=0.5)

    async def go() -> None:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({})
            await talk(c, utterance())
            await c.wait_for("reply.done", "reply")
            await c.end()

    run(go())
    sent = sb.find("reply.audio")
    assert len(sent) == 10 and all(e["data_bytes"] == 2400 for e in sent)
    t0 = sent[0]["t_s"]
    for k, event in enumerate(sent):
        assert event["t_s"] - t0 >= k * 0.05 - 0.002
    done = sb.find("reply.done")[-1]
    audio_s = sum(e["data_bytes"] for e in sent) / 48000
    assert done["t_s"] - t0 >= audio_s - 0.05 - 0.002  # reply.done after the audio played


def test_reply_not_paced_when_switched_off(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=3.0, reply_realtime=False)

    async def go() -> int:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({})
            await talk(c, utterance())
            events = await collect_until(c, "reply.done")
            await c.end()
            return sum(1 for e in events if e.type == "reply.audio")

    assert run(go()) == 60
    # the sandbox's own log: paced, the last of these chunks would go 2.95 s after the
    # first; unpaced they go at once (a margin for a loaded machine, not a benchmark)
    sent = sb.find("reply.audio")
    assert sent[-1]["t_s"] - sent[0]["t_s"] < 2.5


def test_barge_in_interrupts_the_reply(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=3.0)

    async def go() -> list[ServerEvent]:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({"greeting": "Hello, I will talk for a while now."})
            await c.wait_for("reply.audio", "greeting")
            await talk(c, utterance())
            events = await collect_until(c, "reply.done", status="interrupted")
            await c.end()
            return events

    events = run(go())
    types = [e.type for e in events]
    assert types.index("input.speech.started") < types.index("transcript.agent")
    agent = next(e.payload for e in events if e.type == "transcript.agent")
    assert agent["interrupted"] is True
    assert "Hello, I will talk for a while now.".startswith(agent["text"])
    assert len(agent["text"]) < len("Hello, I will talk for a while now.")
    done = events[-1].payload
    assert done["reply_id"] == agent["reply_id"]


def test_no_barge_in_when_interrupt_response_is_off(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=0.6)
    config = {
        "greeting": "Please hold on.",
        "input": {"turn_detection": {"interrupt_response": False}},
    }

    async def go() -> list[ServerEvent]:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session(config)
            await c.wait_for("reply.audio", "greeting")
            await talk(c, utterance(speech_s=0.3, silence_s=0.1))  # speech, no turn end yet
            events = await collect_until(c, "reply.done")
            await c.end()
            return events

    events = run(go())
    assert "input.speech.started" in [e.type for e in events]
    assert events[-1].payload["status"] == "completed"
    agent = next(e.payload for e in events if e.type == "transcript.agent")
    assert agent["interrupted"] is False and agent["text"] == "Please hold on."


TOOLS = [
    {
        "type": "function",
        "name": "lookup_order",
        "description": "Find an order",
        "parameters": {"type": "object", "properties": {}, "required": []},
    }
]


def test_tool_call_and_result_round_trip(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=0.2, tool_call="lookup_order")

    async def go() -> tuple[dict[str, Any], list[ServerEvent]]:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({"tools": TOOLS})
            await talk(c, utterance())
            call = (await c.wait_for("tool.call", "tool")).payload
            result = json.dumps({"status": "shipped"})
            await c.send({"type": "tool.result", "call_id": call["call_id"], "result": result})
            events = await collect_until(c, "transcript.agent")  # the answer's
            await c.end()
            return call, events

    call, events = run(go())
    assert call["name"] == "lookup_order" and call["call_id"].startswith("call_")
    assert isinstance(call["arguments"], dict) and "args" not in call  # current shape
    agent = next(e.payload for e in events if e.type == "transcript.agent")
    assert "shipped" in agent["text"]
    assert sb.find("tool.result", call_id=call["call_id"])


def test_no_tool_call_when_the_session_does_not_define_the_tool(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=0.2, tool_call="lookup_order")

    async def go() -> list[str]:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({})
            await talk(c, utterance())
            events = await collect_until(c, "reply.done")
            await c.end()
            return [e.type for e in events]

    assert "tool.call" not in run(go())


@pytest.mark.parametrize(
    ("result", "param"),
    [({"status": "shipped"}, "result"), ("ok", "call_id")],
    ids=["object result", "unknown call_id"],
)
def test_bad_tool_result_is_invalid_value(
    sandbox_factory: Factory, result: Any, param: str
) -> None:
    sb = sandbox_factory(reply_s=0.2, tool_call="lookup_order")

    async def go() -> dict[str, Any]:
        ws = await raw(sb, {"Authorization": sb.api_key})
        await send(ws, {"type": "session.update", "session": {"tools": TOOLS}})
        await recv_until(ws, "session.ready")
        for chunk in chunks(utterance()):
            await send(ws, {"type": "input.audio", "audio": base64.b64encode(chunk).decode()})
        call = (await recv_until(ws, "tool.call"))[-1]
        call_id = call["call_id"] if param == "result" else "call_nope"
        await send(ws, {"type": "tool.result", "call_id": call_id, "result": result})
        error = (await recv_until(ws, "session.error"))[-1]
        await ws.close()
        return error

    error = run(go())
    assert (error["code"], error["param"]) == ("invalid_value", param)


@pytest.mark.parametrize("when", ["after the tool timeout", "a second time"])
def test_late_tool_result_is_accepted_quietly(sandbox_factory: Factory, when: str) -> None:
    """protocol.md §3.5: a tool.result is accepted any time after its tool.call."""
    sb = sandbox_factory(reply_s=0.2, tool_call="lookup_order")
    tools = [{**TOOLS[0], "timeout_seconds": 1}]

    async def go() -> tuple[str, list[ServerEvent]]:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({"tools": tools})
            await talk(c, utterance())
            call_id = (await c.wait_for("tool.call", "tool")).payload["call_id"]
            result = {"type": "tool.result", "call_id": call_id, "result": '{"ok": true}'}
            if when == "a second time":
                await c.send(result)
            await collect_until(c, "transcript.agent")  # answered, or the timeout apology
            await collect_until(c, "reply.done")
            await c.send(result)
            # Messages are handled in order: an update answered after it, with no error
            # between, means the late result was taken quietly.
            await c.send({"type": "session.update", "session": {"system_prompt": "x"}})
            after = await collect_until(c, "session.updated")
            await c.end()
            return call_id, after

    call_id, after = run(go())
    assert "session.error" not in [e.type for e in after]
    assert sb.find("tool.result_late", call_id=call_id)


def test_reply_create_speaks_the_instructions(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=0.2)

    async def go() -> dict[str, Any]:
        ws = await raw(sb, {"Authorization": sb.api_key})
        await send(ws, {"type": "session.update", "session": {}})
        await recv_until(ws, "session.ready")
        await send(ws, {"type": "reply.create", "instructions": "One moment please."})
        agent = (await recv_until(ws, "transcript.agent"))[-1]
        done = await recv(ws)
        await ws.close()
        assert done["type"] == "reply.done"
        return agent

    assert run(go())["text"] == "One moment please."


def test_two_turns_give_two_replies(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=0.1, reply_realtime=False)

    async def go() -> list[str]:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({})
            ids = []
            for seed in (1, 2):
                await talk(c, utterance(seed=seed))
                ids.append(str((await c.wait_for("reply.done", "reply")).payload["reply_id"]))
            await asyncio.wait_for(c.end(), 5)
            return ids

    first, second = run(go())
    assert first != second
