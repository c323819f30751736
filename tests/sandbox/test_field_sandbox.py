"""The sandbox's default: the live service as third parties measured it (field-facts.md),
over real sockets and real TLS, with plain `websockets` and `httpx` as any client would.

Each test names the fact it holds the sandbox to; the documented variants behind the
switches are in the other test_sandbox_*.py modules.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sandbox_wire import FakeClock, chunks, raw, recv, recv_until, run, send, utterance
from websockets.exceptions import ConnectionClosed

from doctor.sandbox.config import FIELD_VOICES
from doctor.sandbox.threaded import ThreadedSandbox

Factory = Callable[..., ThreadedSandbox]
ERROR_KEYS = ["code", "message", "session_id", "param", "type", "timestamp"]  # §2, §4
PROTOCOL_ERROR_KEYS = ["code", "message", "type", "timestamp"]  # §4: no session_id, param


def get_token(sb: ThreadedSandbox, headers: dict[str, str], **params: Any) -> httpx.Response:
    assert sb.ca_file is not None
    with httpx.Client(verify=ssl.create_default_context(cafile=sb.ca_file)) as client:
        return client.get(sb.token_url, params=params, headers=headers, timeout=10)


async def drain(ws: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every frame until the server closes."""
    seen: list[dict[str, Any]] = []
    try:
        while True:
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    except ConnectionClosed:
        return seen


async def open_session(sb: ThreadedSandbox, session: dict[str, Any]) -> tuple[Any, list[Any]]:
    ws = await raw(sb, {"Authorization": sb.api_key})
    await send(ws, {"type": "session.update", "session": session})
    return ws, await recv_until(ws, "session.ready")


# --- §1 the token endpoint ----------------------------------------------------------------


def test_token_endpoint_answers_as_the_field_saw(sandbox: ThreadedSandbox) -> None:
    bad = get_token(sandbox, {"Authorization": "0" * 32}, expires_in_seconds=60)
    assert (bad.status_code, bad.json()) == (404, {"detail": "Invalid API key"})

    missing = get_token(sandbox, {}, expires_in_seconds=60)
    assert missing.status_code == 422
    (item,) = missing.json()["detail"]
    assert (item["type"], item["loc"]) == ("missing", ["header", "authorization"])

    no_expiry = get_token(sandbox, {"Authorization": sandbox.api_key})
    assert no_expiry.status_code == 422
    assert no_expiry.json()["detail"][0]["loc"] == ["query", "expires_in_seconds"]

    zero = get_token(
        sandbox, {"Authorization": sandbox.api_key}, expires_in_seconds=0,
        max_session_duration_seconds=30,
    )  # fmt: skip
    assert zero.status_code == 422
    assert [i["msg"] for i in zero.json()["detail"]] == [
        "Input should be greater than or equal to 1",
        "Input should be greater than or equal to 60",
    ]
    good = get_token(sandbox, {"Authorization": f"Bearer {sandbox.api_key}"}, expires_in_seconds=60)
    assert good.status_code == 200 and set(good.json()) == {"token", "expires_in_seconds"}


@pytest.mark.parametrize(
    ("fault", "status", "message"),
    [("token-rate-limited", 429, "Too many requests"), ("token-server-error", 500, None)],
)
def test_token_endpoint_error_bodies_are_detail_in_the_field(
    sandbox_factory: Factory, fault: str, status: int, message: str | None
) -> None:
    """§1 (open question 8 answered): the live endpoint's error bodies are
    `{"detail": ...}`; `--token-error-body` shapes only the documented endpoint's."""
    for body_switch in ("error", "detail"):
        sb = sandbox_factory(faults={fault: None}, token_error_body=body_switch)
        answer = get_token(sb, {"Authorization": sb.api_key}, expires_in_seconds=60)
        assert answer.status_code == status
        assert list(answer.json()) == ["detail"] and isinstance(answer.json()["detail"], str)
        if message is not None:
            assert answer.json()["detail"] == message
    documented = sandbox_factory(faults={fault: None}, token_errors="documented")
    answer = get_token(documented, {"Authorization": documented.api_key}, expires_in_seconds=60)
    assert answer.status_code == status and list(answer.json()) == ["error"]


def test_documented_token_errors_behind_the_switch(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(token_errors="documented")
    assert get_token(sb, {"Authorization": "0" * 32}, expires_in_seconds=60).status_code == 401
    assert get_token(sb, {"Authorization": sb.api_key}).status_code == 400


def test_tokens_are_reusable_and_their_cap_is_not_enforced(sandbox_factory: Factory) -> None:
    """§1: one token opened several sessions; §5: a 60 s cap did not end the session.
    The cap is shrunk to 0.3 s of wall time; a 1 s reply streams past it untouched."""
    sb = sandbox_factory(duration_scale=0.005, reply_s=1.0)
    token = get_token(
        sb, {"Authorization": sb.api_key}, expires_in_seconds=60, max_session_duration_seconds=60
    ).json()["token"]

    async def session() -> list[str]:
        ws = await raw(sb, query=f"token={token}")
        await send(ws, {"type": "session.update", "session": {}})
        await recv_until(ws, "session.ready")
        await send(ws, {"type": "reply.create", "instructions": "a long enough answer"})
        seen = [e["type"] for e in await recv_until(ws, "reply.done")]
        await send(ws, {"type": "session.end"})
        seen += [e["type"] for e in await drain(ws)]
        return seen

    async def go() -> list[list[str]]:
        first = await session()
        return [first, *await asyncio.gather(session(), session())]  # again, and concurrently

    for seen in run(go()):
        assert "session.error" not in seen and seen[-1] == "session.ended"


def test_documented_token_policy_single_use_and_cap(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(token_policy="documented", duration_scale=0.005)
    token = get_token(
        sb, {"Authorization": sb.api_key}, expires_in_seconds=60, max_session_duration_seconds=60
    ).json()["token"]

    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        ws = await raw(sb, query=f"token={token}")
        await send(ws, {"type": "session.update", "session": {}})
        capped = await drain(ws)
        again = await raw(sb, query=f"token={token}")
        return capped, await drain(again)

    capped, again = run(go())
    assert [e.get("code") for e in capped if e["type"] == "session.error"] == ["session_expired"]
    assert again[0]["code"] == "unauthorized"


# --- §2 refused credentials on the WebSocket ----------------------------------------------


@pytest.mark.parametrize("how", ["bad key", "no credential", "expired token"])
def test_refused_credential_upgrades_then_errors_and_closes_1008(
    sandbox_factory: Factory, how: str
) -> None:
    clock = FakeClock()
    sb = sandbox_factory(clock=clock)

    async def go() -> tuple[str, Any]:
        if how == "bad key":
            ws = await raw(sb, {"Authorization": "f" * 32})
        elif how == "no credential":
            ws = await raw(sb)
        else:
            token = get_token(sb, {"Authorization": sb.api_key}, expires_in_seconds=1)
            clock.advance(3)  # §2: a 1 s token used 3 s later
            ws = await raw(sb, query=f"token={token.json()['token']}")
        frame = await asyncio.wait_for(ws.recv(), 10)  # sent at once, before any message
        await ws.wait_closed()
        return str(frame), ws.close_code

    frame, code = run(go())
    error = json.loads(frame)
    assert list(error) == ERROR_KEYS
    assert error["code"] == "unauthorized" and error["message"] == "Authentication failed"
    assert error["session_id"] is None and error["param"] is None
    assert isinstance(error["timestamp"], float) and code == 1008


# --- §3 opening, §12 ending -----------------------------------------------------------------


def test_session_updated_then_ready_and_ended_as_the_field_shows(sandbox: ThreadedSandbox) -> None:
    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        ws, opened = await open_session(
            sandbox, {"system_prompt": "Be brief.", "output": {"voice": "anna"}}
        )
        for chunk in chunks(utterance()):
            await send(ws, {"type": "input.audio", "audio": base64.b64encode(chunk).decode()})
        await recv_until(ws, "reply.done")
        await send(ws, {"type": "session.end"})
        return opened, await drain(ws)

    opened, closing = run(go())
    assert [e["type"] for e in opened] == ["session.updated", "session.ready"]
    ready = opened[1]
    assert set(ready) == {"type", "session_id", "config", "expires_at", "resume_token", "timestamp"}
    assert ready["session_id"].startswith("sess_") and isinstance(ready["resume_token"], str)
    assert 3590 < ready["expires_at"] - ready["timestamp"] <= 3600
    config = ready["config"]
    assert config["output"]["voice"] == "anna" and config["system_prompt"] == "Be brief."
    assert config["greeting"] is None and config["llm"] is None
    assert config["input"]["transcription_mode"] is None  # undocumented fields, null
    assert config["input"]["format"] == {"encoding": "audio/pcm", "sample_rate": 24000}
    assert opened[0]["config"] == config
    ended = closing[-1]
    assert list(ended) == [
        "session_duration_seconds",
        "audio_duration_seconds",
        "type",
        "timestamp",
    ]
    assert ended["audio_duration_seconds"] is None  # §12, though audio was streamed
    for event in opened + closing:
        assert isinstance(event["timestamp"], float), event["type"]  # §3: every event


# --- §4 errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("session", "code", "message", "param"),
    [
        (
            {"output": {"voice": "ivy"}},
            "invalid_value",
            "Invalid voice 'ivy'. Must be one of: " + ", ".join(FIELD_VOICES),
            "output.voice",
        ),
        (
            {"agent_id": "agent_" + "0" * 32, "system_prompt": "x"},
            "invalid_value",
            "agent_id is mutually exclusive with other session fields",
            "agent_id",
        ),
        ({"agent_id": "agent_" + "1" * 32}, "agent_not_found", "Agent not found", "agent_id"),
        ({"llm": {"model": "gpt-4o"}}, "invalid_value", None, "llm"),
    ],
    ids=["unknown voice", "agent_id and inline fields", "unknown agent_id", "inline llm"],
)
def test_first_update_config_errors_close_1008(
    sandbox: ThreadedSandbox, session: dict[str, Any], code: str, message: str | None, param: str
) -> None:
    async def go() -> tuple[list[dict[str, Any]], Any]:
        ws = await raw(sandbox, {"Authorization": sandbox.api_key})
        await send(ws, {"type": "session.update", "session": session})
        return await drain(ws), ws.close_code

    (error,), close_code = run(go())
    assert list(error) == ERROR_KEYS and close_code == 1008
    assert (error["code"], error["param"]) == (code, param)
    assert message is None or error["message"] == message
    assert error["session_id"].startswith("sess_")


def test_a_known_agent_id_starts_a_session(sandbox_factory: Factory) -> None:
    agent = "agent_" + "a" * 32
    sb = sandbox_factory(agent_ids=[agent])

    async def go() -> list[dict[str, Any]]:
        ws, opened = await open_session(sb, {"agent_id": agent})
        await ws.close()
        return opened

    assert run(go())[-1]["config"]["agent_id"] == agent


def test_protocol_errors_leave_the_session_open(sandbox: ThreadedSandbox) -> None:
    """§4: a null greeting in the first update, then bad audio, unknown types of old
    clients, bad JSON, audio without `audio`, a voice change: all answered, none fatal."""

    async def go() -> list[dict[str, Any]]:
        ws = await raw(sandbox, {"Authorization": sandbox.api_key})
        await send(ws, {"type": "session.update", "session": {"greeting": None}})
        errors = [await recv(ws)]
        await send(ws, {"type": "session.update", "session": {"output": {"voice": "jane"}}})
        await recv_until(ws, "session.ready")
        for frame in (
            {"type": "input.audio", "audio": "not base64!"},
            {"type": "session.terminate"},
            {"type": "user.transcript", "text": "hi"},
            {"type": "input.audio"},
            {"type": "conversation.message", "role": "assistant", "content": "x"},
            {"type": "session.update", "session": {"output": {"voice": "nobody"}}},
        ):
            await send(ws, frame)
            errors.append(await recv(ws))
        await ws.send("{not json")
        errors.append(await recv(ws))
        await send(ws, {"type": "session.update", "session": {"system_prompt": "still here"}})
        assert (await recv(ws))["type"] == "session.updated"
        await ws.close()
        return errors

    errors = run(go())
    assert [(e["code"], e["message"]) for e in errors] == [
        ("invalid_format", "Invalid message format for type 'session.update'"),
        ("invalid_audio", "Invalid audio data"),
        ("invalid_format", "Unknown message type: session.terminate"),
        ("invalid_format", "Unknown message type: user.transcript"),
        ("invalid_format", "Invalid message format for type 'input.audio'"),
        ("invalid_format", "Invalid message format for type 'conversation.message'"),
        ("immutable_field", "'output.voice' cannot be changed after the first session.update"),
        ("invalid_format", "Invalid JSON format."),
    ]
    for error in errors:
        keys = ERROR_KEYS if error["code"] == "immutable_field" else PROTOCOL_ERROR_KEYS
        assert list(error) == keys, error


def test_conversation_message_is_accepted_and_ignored(sandbox: ThreadedSandbox) -> None:
    """§11: accepted (no error), and it triggers nothing; an update after it is answered."""

    async def go() -> list[str]:
        ws, _ = await open_session(sandbox, {})
        for role in ("user", "system"):
            await send(ws, {"type": "conversation.message", "role": role, "content": "ctx"})
        await send(ws, {"type": "session.update", "session": {"output": {"volume": 50}}})
        seen = [e["type"] for e in await recv_until(ws, "session.updated")]
        await ws.close()
        return seen

    assert run(go()) == ["session.updated"]
    assert len(sandbox.find("conversation.message_ignored")) == 2


# --- §10 voices ------------------------------------------------------------------------------


def test_the_eighteen_live_voices_and_no_others(sandbox: ThreadedSandbox) -> None:
    async def opens(voice: str) -> bool:
        ws = await raw(sandbox, {"Authorization": sandbox.api_key})
        await send(ws, {"type": "session.update", "session": {"output": {"voice": voice}}})
        first = [await recv(ws)]
        await ws.close()
        return first[0]["type"] == "session.updated"

    async def go() -> dict[str, bool]:
        voices = [*FIELD_VOICES, "ivy", "claire", "dawn", "james"]
        return dict(zip(voices, await asyncio.gather(*(opens(v) for v in voices)), strict=True))

    opened = run(go())
    assert [v for v, ok in opened.items() if ok] == list(FIELD_VOICES)
    assert len(FIELD_VOICES) == 18


# --- §7 reply audio and captions -------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "chunk_bytes", "chunk_s"), [("audio/pcm", 480, 0.01), ("audio/pcmu", 300, 0.0375)]
)
def test_reply_audio_in_field_chunks_at_real_time_after_silence(
    sandbox_factory: Factory, encoding: str, chunk_bytes: int, chunk_s: float
) -> None:
    sb = sandbox_factory(reply_s=0.6)

    async def go() -> list[tuple[float, dict[str, Any]]]:
        ws, _ = await open_session(sb, {"output": {"format": {"encoding": encoding}}})
        loop = asyncio.get_running_loop()
        await send(ws, {"type": "reply.create", "instructions": "one two three four five six"})
        timed: list[tuple[float, dict[str, Any]]] = []
        while not timed or timed[-1][1]["type"] != "reply.done":
            timed.append(((event := await recv(ws)) and loop.time(), event))
        await ws.close()
        return timed

    timed = run(go())
    kinds = [e["type"] for _, e in timed]
    audio = [(t, base64.b64decode(e["data"])) for t, e in timed if e["type"] == "reply.audio"]
    assert {len(data) for _, data in audio} == {chunk_bytes}
    silent = 0.25  # the lead-in: whole chunks of digital silence (μ-law silence is 0xFF)
    quiet = {0, 0xFF} if encoding == "audio/pcmu" else {0}
    lead = [data for _, data in audio[: int(round(silent / chunk_s, 6))]]
    assert lead and all(set(data) <= quiet for data in lead)
    assert not set(audio[-1][1]) <= quiet
    spoken_s = len(audio) * chunk_s
    assert audio[-1][0] - audio[0][0] >= 0.9 * (spoken_s - chunk_s)  # paced, not a burst
    # §7: every word in one burst before any voice is played, with times in the audio
    deltas = [e for _, e in timed if e["type"] == "transcript.agent.delta"]
    words = ["one", "two", "three", "four", "five", "six"]
    assert "".join(d["delta"] for d in deltas).split() == words
    assert kinds.index("transcript.agent.delta") < kinds.index("reply.audio")
    assert all(d["start_ms"] < d["end_ms"] for d in deltas)
    assert deltas[0]["start_ms"] >= 240 and deltas[-1]["end_ms"] <= spoken_s * 1000 + 1
    assert (
        kinds[-2:] == ["transcript.agent", "reply.done"] and timed[-1][1]["status"] == "completed"
    )
    assert timed[0][1]["reply_id"].startswith("resp_") and timed[0][1]["item_id"].startswith("msg_")


# --- §9 tools -------------------------------------------------------------------------------

ORDER_TOOL = {
    "type": "function",
    "name": "lookup_order",
    "description": "Look up an order",
    "parameters": {
        "type": "object",
        "properties": {
            "order_id": {"type": "string"},
            "carrier": {"type": "string", "enum": ["ups", "dhl"]},
            "items": {"type": "integer", "minimum": 2},
            "gift": {"type": "boolean"},
        },
        "required": ["order_id", "items"],
    },
}


@pytest.mark.parametrize("when", ["before reply.done", "after reply.done"])
def test_tool_call_rides_a_reply_that_ends_and_takes_the_result_either_side(
    sandbox_factory: Factory, when: str
) -> None:
    import jsonschema

    sb = sandbox_factory(reply_s=0.3, tool_call="lookup_order")

    async def go() -> list[dict[str, Any]]:
        ws, _ = await open_session(sb, {"tools": [ORDER_TOOL]})
        for chunk in chunks(utterance()):
            await send(ws, {"type": "input.audio", "audio": base64.b64encode(chunk).decode()})
        seen = await recv_until(ws, "tool.call")
        call = seen[-1]
        answer = {"type": "tool.result", "call_id": call["call_id"], "result": '{"eta": "2d"}'}
        if when == "before reply.done":
            await send(ws, answer)
        seen += await recv_until(ws, "reply.done")
        if when == "after reply.done":
            await send(ws, answer)
        seen += await recv_until(ws, "transcript.agent")
        seen += await recv_until(ws, "reply.done")
        await ws.close()
        return seen

    seen = run(go())
    call = next(e for e in seen if e["type"] == "tool.call")
    assert call["call_id"].startswith("chatcmpl-tool-")
    jsonschema.validate(call["arguments"], ORDER_TOOL["parameters"])  # fits the declaration
    assert call["arguments"]["carrier"] == "ups" and call["arguments"]["items"] == 2
    started = [e for e in seen if e["type"] == "reply.started"]
    done = [e for e in seen if e["type"] == "reply.done"]
    assert [d["reply_id"] for d in done] == [s["reply_id"] for s in started]  # both end
    carrier = [e for e in seen if e.get("reply_id") == started[0]["reply_id"]]
    assert "transcript.agent" not in [e["type"] for e in carrier]  # §7: silent pre-amble
    assert all(d["status"] == "completed" for d in done)
    answer = next(e for e in seen if e["type"] == "transcript.agent")
    assert "2d" in answer["text"] and "session.error" not in [e["type"] for e in seen]
    # what a timeline needs, kept per session (issue 15 builds on it)
    session = next(iter(sb.sandbox.store.sessions.values()), None) or next(
        iter(sb.sandbox.store.finished.values())
    )
    (record,) = session.tool_calls
    assert record.call_id == call["call_id"] and record.result == '{"eta": "2d"}'
    assert record.result_at is not None and record.result_at >= record.dispatched_at
    assert [r.trigger for r in session.replies] == ["user_speech", "tool_result"]
    assert session.replies[1].audible_start_at is not None


# --- §6 resume --------------------------------------------------------------------------------


def test_resume_is_refused_with_session_not_found(sandbox: ThreadedSandbox) -> None:
    async def go() -> tuple[list[dict[str, Any]], Any]:
        ws, opened = await open_session(sandbox, {})
        ws.transport.abort()  # an abrupt drop, as in every field attempt
        again = await raw(sandbox, {"Authorization": sandbox.api_key})
        await send(again, {"type": "session.resume", "session_id": opened[-1]["session_id"]})
        return await drain(again), again.close_code

    (error,), code = run(go())
    assert (error["code"], error["message"], code) == (
        "session_not_found",
        "Session not found or grace window has expired",
        1008,
    )


def test_documented_resume_behind_the_switch(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(resume="documented")

    async def go() -> tuple[str, dict[str, Any]]:
        ws, opened = await open_session(sb, {})
        sid = opened[-1]["session_id"]
        ws.transport.abort()
        await asyncio.to_thread(sb.wait_for, "session.detached", session_id=sid)
        again = await raw(sb, {"Authorization": sb.api_key})
        await send(again, {"type": "session.resume", "session_id": sid})
        ready = (await recv_until(again, "session.ready"))[-1]
        await again.close()
        return sid, ready

    sid, ready = run(go())
    assert ready["session_id"] == sid
