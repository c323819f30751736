"""Conformance: the session lifecycle (protocol.md §3.1, §3.4) and message validation
(§4.2: the session stays open), through the real client and raw frames."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from sandbox_wire import chunks, raw, recv, recv_until, run, send, utterance
from websockets.exceptions import ConnectionClosed

from doctor.net.agent_api import AgentConnection
from doctor.sandbox.threaded import ThreadedSandbox

# These tests pin protocol.md's version; the field's default is in test_field_*.py.
pytestmark = pytest.mark.sandbox_behaviour("documented")

SESSION_ID = re.compile(r"^sess_[0-9a-f]{32}$")
FIRST = {"greeting": "Hello there", "output": {"voice": "ivy", "format": {"encoding": "audio/pcm"}}}


def key_headers(sb: ThreadedSandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {sb.api_key}"}


# --- lifecycle -----------------------------------------------------------------------------


def test_ready_carries_a_sess_id_client(sandbox: ThreadedSandbox) -> None:
    async def go() -> tuple[dict[str, Any], str | None]:
        async with AgentConnection.open(sandbox.ws_url, api_key=sandbox.api_key) as c:
            payload = await c.start_session({})
            await c.end()
            return payload, c.session_id

    payload, sid = run(go())
    assert SESSION_ID.match(payload["session_id"]) and sid == payload["session_id"]


def test_ready_carries_a_sess_id_raw(sandbox: ThreadedSandbox) -> None:
    async def go() -> list[dict[str, Any]]:
        ws = await raw(sandbox, key_headers(sandbox))
        await send(ws, {"type": "session.update", "session": {"system_prompt": "x"}})
        msgs = [await recv(ws)]
        await ws.close()
        return msgs

    (ready,) = run(go())
    assert ready["type"] == "session.ready" and SESSION_ID.match(ready["session_id"])


def test_later_update_gets_session_updated(sandbox: ThreadedSandbox) -> None:
    async def go() -> tuple[dict[str, Any], list[str]]:
        async with AgentConnection.open(sandbox.ws_url, api_key=sandbox.api_key) as c:
            await c.start_session({"system_prompt": "first"})
            updated = await c.update({"system_prompt": "second", "output": {"volume": 50}})
            await c.end()
            return updated, [e.type for e in c.received]

    updated, types = run(go())
    assert updated["config"]["system_prompt"] == "second"
    assert updated["config"]["output"]["volume"] == 50
    assert types.count("session.ready") == 1  # ready once; only later updates are acked
    assert types.index("session.updated") > types.index("session.ready")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"greeting": "Something else"}, "greeting"),
        ({"output": {"voice": "james"}}, "output.voice"),
        ({"output": {"format": {"encoding": "audio/pcmu"}}}, "output.format"),
    ],
)
def test_immutable_field_after_ready(
    sandbox: ThreadedSandbox, change: dict[str, Any], field: str
) -> None:
    async def go() -> list[dict[str, Any]]:
        ws = await raw(sandbox, key_headers(sandbox))
        await send(ws, {"type": "session.update", "session": FIRST})
        await recv_until(ws, "session.ready")
        await send(ws, {"type": "session.update", "session": change})
        error = await recv_until(ws, "session.error")
        # still open, and the change was dropped
        await send(ws, {"type": "session.update", "session": {"system_prompt": "after"}})
        updated = await recv_until(ws, "session.updated")
        await ws.close()
        return [error[-1], updated[-1]]

    error, updated = run(go())
    assert (error["code"], error["param"]) == ("immutable_field", field)
    config = updated["config"]
    assert config["greeting"] == FIRST["greeting"]
    assert config["output"]["voice"] == "ivy"
    assert config["output"]["format"] == {"encoding": "audio/pcm"}
    assert config["system_prompt"] == "after"


def test_session_end_sends_ended_then_closes_1000(sandbox: ThreadedSandbox) -> None:
    async def go() -> tuple[list[dict[str, Any]], int | None, str | None]:
        ws = await raw(sandbox, key_headers(sandbox))
        await send(ws, {"type": "session.update", "session": {}})
        await recv_until(ws, "session.ready")
        await send(ws, {"type": "session.end"})
        seen: list[dict[str, Any]] = []
        with pytest.raises(ConnectionClosed):
            while True:
                seen.append(await recv(ws))
        return seen, ws.close_code, ws.close_reason

    seen, code, _ = run(go())
    assert [m["type"] for m in seen] == ["session.ended"]
    ended = seen[0]
    assert set(ended) == {
        "type",
        "session_duration_seconds",
        "audio_duration_seconds",
        "timestamp",
    }
    assert ended["audio_duration_seconds"] is None  # no audio was sent
    assert isinstance(ended["session_duration_seconds"], float)
    assert code == 1000


@pytest.mark.parametrize("slow_ready_s", [0.0, 0.2])
def test_session_end_before_ready_arrives_still_ends_cleanly(
    sandbox_factory: Any, slow_ready_s: float
) -> None:
    """A client that hangs up at once: messages are handled in order, so the session comes
    up and then ends with session.ended and 1000 (not a bare close)."""
    sb = sandbox_factory(faults={"slow-ready": slow_ready_s})

    async def go() -> tuple[list[str], int | None]:
        ws = await raw(sb, key_headers(sb))
        await send(ws, {"type": "session.update", "session": {}})
        await send(ws, {"type": "session.end"})
        types: list[str] = []
        with pytest.raises(ConnectionClosed):
            while True:
                types.append((await recv(ws))["type"])
        return types, ws.close_code

    assert run(go()) == (["session.ready", "session.ended"], 1000)


def test_session_end_through_the_client_reports_audio_seconds(sandbox: ThreadedSandbox) -> None:
    async def go() -> tuple[dict[str, Any] | None, AgentConnection]:
        async with AgentConnection.open(sandbox.ws_url, api_key=sandbox.api_key) as c:
            await c.start_session({})
            for chunk in chunks(bytes(48000)):  # 1.0 s of silence
                await c.send_audio(chunk)
            ended = await c.end()
            return ended, c

    ended, c = run(go())
    assert ended is not None and ended["audio_duration_seconds"] == 1.0
    assert (c.close_code, c.close_frame) == (1000, True)
    assert c.timeline[-1].type == "closed"
    sandbox.wait_for("ws.closed", code=1000)
    assert not sandbox.find("session.detached")  # ended: no grace window


# --- validation: errors that leave the session open ----------------------------------------

BEFORE_READY = [
    ("not json", "{not json"),
    ("missing type", json.dumps({"session": {}})),
    ("unknown type", json.dumps({"type": "conversation.item.create"})),
    ("audio before ready", json.dumps({"type": "input.audio", "audio": "AAAA"})),
    ("binary frame", b"\x00\x01\x02\x03"),
]


@pytest.mark.parametrize(("name", "frame"), BEFORE_READY, ids=[n for n, _ in BEFORE_READY])
def test_invalid_format_before_ready_keeps_the_socket(
    sandbox: ThreadedSandbox, name: str, frame: str | bytes
) -> None:
    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        ws = await raw(sandbox, key_headers(sandbox))
        await ws.send(frame)
        error = await recv(ws)
        await send(ws, {"type": "session.update", "session": {}})
        ready = await recv(ws)
        await ws.close()
        return error, ready

    error, ready = run(go())
    assert error["type"] == "session.error" and error["code"] == "invalid_format"
    assert ready["type"] == "session.ready"


AFTER_READY = [
    ("not json", "[1, 2", "invalid_format"),
    ("missing type", json.dumps({"audio": "AAAA"}), "invalid_format"),
    ("unknown type", json.dumps({"type": "response.create"}), "invalid_format"),
    ("bad base64", json.dumps({"type": "input.audio", "audio": "@@not base64@@"}), "invalid_audio"),
    (
        "odd byte count",
        json.dumps({"type": "input.audio", "audio": base64.b64encode(b"\x01\x02\x03").decode()}),
        "invalid_audio",
    ),
    (
        "url-safe base64",
        json.dumps(
            {"type": "input.audio", "audio": base64.urlsafe_b64encode(b"\xfb\xff").decode()}
        ),
        "invalid_audio",
    ),
]


@pytest.mark.parametrize(("name", "frame", "code"), AFTER_READY, ids=[n for n, _, _ in AFTER_READY])
def test_invalid_after_ready_keeps_the_session(
    sandbox: ThreadedSandbox, name: str, frame: str, code: str
) -> None:
    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        async with AgentConnection.open(sandbox.ws_url, api_key=sandbox.api_key) as c:
            await c.start_session({})
            await c.send_raw(frame)
            error = await c.next_event()
            assert error is not None
            updated = await c.update({"system_prompt": "still open"})
            await c.end()
            return error.payload, updated

    error, updated = run(go())
    assert error["type"] == "session.error" and error["code"] == code
    assert isinstance(error["message"], str) and isinstance(error["timestamp"], str)
    assert updated["type"] == "session.updated"


def test_validation_errors_do_not_raise_in_the_client_wait(sandbox: ThreadedSandbox) -> None:
    """`wait_for(errors_fatal=False)` skips a live error and still finds the next event."""

    async def go() -> str:
        async with AgentConnection.open(sandbox.ws_url, api_key=sandbox.api_key) as c:
            await c.start_session({})
            await c.send_raw("{oops")
            await c.send({"type": "session.update", "session": {"system_prompt": "x"}})
            event = await c.wait_for("session.updated", "update", errors_fatal=False)
            await c.end()
            return event.type

    assert run(go()) == "session.updated"


def test_session_update_under_config_key_is_silently_ignored(sandbox: ThreadedSandbox) -> None:
    """3P-CONTRACT: config under `config` instead of `session` is accepted and ignored."""

    async def go() -> dict[str, Any]:
        ws = await raw(sandbox, key_headers(sandbox))
        await send(ws, {"type": "session.update", "config": {"system_prompt": "lost"}})
        await recv_until(ws, "session.ready")
        await send(ws, {"type": "session.update", "session": {"output": {"volume": 10}}})
        updated = (await recv_until(ws, "session.updated"))[-1]
        await ws.close()
        return updated

    assert "system_prompt" not in run(go())["config"]


def test_utterance_audio_counts_into_audio_duration(sandbox_factory: Any) -> None:
    sb = sandbox_factory(reply_s=0.1, reply_realtime=False)
    pcm = utterance()

    async def go() -> dict[str, Any] | None:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({})
            for chunk in chunks(pcm):
                await c.send_audio(chunk)
            await c.wait_for("reply.done", "reply")
            return await c.end()

    ended = run(go())
    assert ended is not None and ended["audio_duration_seconds"] == round(len(pcm) / 48000, 3)
