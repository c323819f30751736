"""Conformance: resume and the grace window (protocol.md §3.6). The window's end is an
event in the sandbox log; tests wait on it, never sleep."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sandbox_wire import raw, recv, recv_until, run, send
from websockets.exceptions import ConnectionClosed

from doctor.net.agent_api import AgentConnection, SessionError, mint_token
from doctor.sandbox.threaded import ThreadedSandbox

# These tests pin protocol.md's version; the field's default is in test_field_*.py.
pytestmark = pytest.mark.sandbox_behaviour("documented")

Factory = Callable[..., ThreadedSandbox]


async def dropped_session(sb: ThreadedSandbox, key: str | None = None) -> str:
    """A session whose socket went away abruptly (no close frame, no session.end)."""
    c = await AgentConnection.open(sb.ws_url, api_key=key or sb.api_key, ca_bundle=sb.ca_file)
    await c.start_session({"system_prompt": "remember me"})
    await c.drop()
    assert c.session_id is not None
    return c.session_id


async def resume(sb: ThreadedSandbox, sid: str, key: str | None = None) -> dict[str, Any]:
    async with AgentConnection.open(
        sb.ws_url, api_key=key or sb.api_key, ca_bundle=sb.ca_file
    ) as c:
        payload = await c.resume(sid)
        await c.end()
        return payload


def test_resume_within_the_grace_window_keeps_the_id(sandbox: ThreadedSandbox) -> None:
    sid = run(dropped_session(sandbox))
    sandbox.wait_for("session.detached", session_id=sid)
    payload = run(resume(sandbox, sid))
    assert payload == {"type": "session.ready", "session_id": sid}
    assert sandbox.find("session.ended", session_id=sid)  # then ended cleanly


def test_resume_within_the_window_raw_frames_keeps_the_config(sandbox: ThreadedSandbox) -> None:
    sid = run(dropped_session(sandbox))

    async def go() -> list[dict[str, Any]]:
        ws = await raw(sandbox, {"Authorization": sandbox.api_key})
        await send(ws, {"type": "session.resume", "session_id": sid})
        ready = await recv(ws)
        await send(ws, {"type": "session.update", "session": {"output": {"volume": 80}}})
        updated = (await recv_until(ws, "session.updated"))[-1]
        await ws.close()
        return [ready, updated]

    ready, updated = run(go())
    assert ready == {"type": "session.ready", "session_id": sid}
    assert updated["config"]["system_prompt"] == "remember me"  # context kept


def test_resume_with_a_fresh_token_minted_by_the_same_key(sandbox: ThreadedSandbox) -> None:
    sid = run(dropped_session(sandbox))

    async def go() -> dict[str, Any]:
        minted = await mint_token(sandbox.token_url, sandbox.api_key, 60)
        async with AgentConnection.open(sandbox.ws_url, token=minted.token) as c:
            payload = await c.resume(sid)
            await c.end()
            return payload

    assert run(go())["session_id"] == sid


def test_resume_after_the_grace_window_is_session_not_found(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(grace_s=0.05)
    sid = run(dropped_session(sb))
    sb.wait_for("session.grace_expired", session_id=sid)
    with pytest.raises(SessionError) as info:
        run(resume(sb, sid))
    err = info.value
    assert (err.error_code, err.close_code, err.close_reason) == (
        "session_not_found",
        1008,
        "session_not_found",
    )
    assert err.step == "resume"


def test_resume_of_an_unknown_id(sandbox: ThreadedSandbox) -> None:
    with pytest.raises(SessionError) as info:
        run(resume(sandbox, "sess_" + "0" * 32))
    assert (info.value.error_code, info.value.close_code) == ("session_not_found", 1008)


def test_resume_after_session_end_is_not_found(sandbox: ThreadedSandbox) -> None:
    async def ended() -> str:
        async with AgentConnection.open(sandbox.ws_url, api_key=sandbox.api_key) as c:
            await c.start_session({})
            await c.end()
            assert c.session_id
            return c.session_id

    sid = run(ended())
    with pytest.raises(SessionError) as info:
        run(resume(sandbox, sid))
    assert info.value.error_code == "session_not_found"


def test_resume_with_another_key_is_session_forbidden(sandbox_factory: Factory) -> None:
    owner, other = "owner-key-0123456789abcdef", "other-key-0123456789abcdef"
    sb = sandbox_factory(api_keys=[owner, other])
    sid = run(dropped_session(sb, owner))
    with pytest.raises(SessionError) as info:
        run(resume(sb, sid, other))
    assert (info.value.error_code, info.value.close_code) == ("session_forbidden", 1008)
    assert run(resume(sb, sid, owner))["session_id"] == sid  # still there for its owner


def test_resume_not_as_the_first_message_is_invalid_format(sandbox: ThreadedSandbox) -> None:
    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        ws = await raw(sandbox, {"Authorization": sandbox.api_key})
        await send(ws, {"type": "session.update", "session": {}})
        ready = await recv(ws)
        await send(ws, {"type": "session.resume", "session_id": ready["session_id"]})
        error = await recv(ws)
        await send(ws, {"type": "session.end"})
        ended = await recv(ws)
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        return error, ended

    error, ended = run(go())
    assert (error["code"], error["param"]) == ("invalid_format", "type")
    assert ended["type"] == "session.ended"  # the session stayed open


def test_resume_takes_over_a_session_still_attached(sandbox: ThreadedSandbox) -> None:
    """A client that reconnects before its old socket died: the new one wins."""

    async def go() -> tuple[str, int | None]:
        old = await AgentConnection.open(sandbox.ws_url, api_key=sandbox.api_key)
        await old.start_session({})
        assert old.session_id
        async with AgentConnection.open(sandbox.ws_url, api_key=sandbox.api_key) as new:
            payload = await new.resume(old.session_id)
            await old._wait_closed(5)
            await new.end()
        await old.aclose()
        return str(payload["session_id"]), old.close_code

    sid, old_code = run(go())
    assert sid.startswith("sess_") and old_code == 1008


def test_close_without_end_also_opens_the_grace_window(sandbox: ThreadedSandbox) -> None:
    async def go() -> str:
        c = await AgentConnection.open(sandbox.ws_url, api_key=sandbox.api_key)
        await c.start_session({})
        await c.close()  # a close frame, but no session.end
        assert c.session_id
        return c.session_id

    sid = run(go())
    detached = sandbox.wait_for("session.detached", session_id=sid)
    assert detached["grace_s"] == 30.0
    assert run(resume(sandbox, sid))["session_id"] == sid
