"""Where protocol.md records two behaviours, the sandbox has a switch: both positions here.
(`auth_failure` and `expired_token` are in test_sandbox_auth.py, with the refusals.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sandbox_wire import chunks, raw, recv, recv_until, run, send, utterance

from doctor.net.agent_api import AgentConnection, SessionError, mint_token
from doctor.sandbox.threaded import ThreadedSandbox

# These tests pin protocol.md's version; the field's default is in test_field_*.py.
pytestmark = pytest.mark.sandbox_behaviour("documented")

Factory = Callable[..., ThreadedSandbox]


@pytest.mark.parametrize(("switch", "status"), [("completed", "completed"), ("absent", None)])
def test_reply_done_status_on_normal_completion(
    sandbox_factory: Factory, switch: str, status: str | None
) -> None:
    sb = sandbox_factory(reply_s=0.1, reply_done_status=switch)

    async def go() -> dict[str, Any]:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({})
            for chunk in chunks(utterance()):
                await c.send_audio(chunk)
            done = await c.wait_for("reply.done", "reply")
            await c.end()
            return done.payload

    done = run(go())
    assert done.get("status") == status and ("status" in done) == (status is not None)
    assert done["reply_id"].startswith("reply_")


@pytest.mark.parametrize("body", ["error", "detail"])
def test_token_error_body_shape(sandbox_factory: Factory, body: str) -> None:
    sb = sandbox_factory(token_error_body=body)
    result = run(mint_token(sb.token_url, "not-the-key-0123456789", 60))
    assert result.status == 401
    assert isinstance(result.body, dict) and list(result.body) == [body]
    assert result.error == "Unauthorized"  # the client reads either shape


@pytest.mark.parametrize("policy", ["documented", "field"])
def test_token_reuse(sandbox_factory: Factory, policy: str) -> None:
    """Documented: single use. Live (field-facts §1): reusable within the window."""
    single_use = policy == "documented"
    sb = sandbox_factory(token_policy=policy)

    async def session(token: str) -> str:
        async with AgentConnection.open(sb.ws_url, token=token) as c:
            payload = await c.start_session({})
            await c.end()
            return str(payload["session_id"])

    async def go() -> list[str | None]:
        minted = await mint_token(sb.token_url, sb.api_key, 60)
        assert minted.token
        out: list[str | None] = [await session(minted.token)]
        try:
            out.append(await session(minted.token))
        except SessionError as err:
            assert err.error_code == "UNAUTHORIZED"
            out.append(None)
        return out

    first, second = run(go())
    assert first is not None
    assert (second is None) == single_use


@pytest.mark.parametrize("also_first", [False, True])
def test_session_updated_after_the_first_update(sandbox_factory: Factory, also_first: bool) -> None:
    """SEQ: only mid-session updates are acked; older EVENTS text: every applied update."""
    sb = sandbox_factory(updated_after_first_update=also_first)

    async def go() -> list[str]:
        ws = await raw(sb, {"Authorization": sb.api_key})
        await send(ws, {"type": "session.update", "session": {"system_prompt": "a"}})
        await send(ws, {"type": "session.end"})
        types = [m["type"] for m in await recv_until(ws, "session.ended")]
        await ws.close()
        return types

    types = run(go())
    expected = ["session.ready", "session.updated", "session.ended"]
    assert types == (expected if also_first else [expected[0], expected[2]])


@pytest.mark.parametrize("ended", [True, False])
def test_session_ended_after_expiry(sandbox_factory: Factory, ended: bool) -> None:
    """SKILL: session.ended also follows session_expired; the switch turns it off."""
    sb = sandbox_factory(max_session_s=0.1, ended_on_expiry=ended)

    async def go() -> tuple[list[str], int | None]:
        ws = await raw(sb, {"Authorization": sb.api_key})
        await send(ws, {"type": "session.update", "session": {}})
        types = [(await recv(ws))["type"]]
        try:
            while True:
                types.append((await recv(ws))["type"])
        except Exception:
            pass
        return types, ws.close_code

    types, code = run(go())
    tail = ["session.error", "session.ended"] if ended else ["session.error"]
    assert types == ["session.ready", *tail] and code == 1008


@pytest.mark.parametrize("strict", [True, False])
def test_sample_rate_other_than_24000(sandbox_factory: Factory, strict: bool) -> None:
    """TROUBLE: exactly 24 kHz. 3P-CONTRACT: other rates accepted at setup, failing later."""
    sb = sandbox_factory(strict_sample_rate=strict)
    update = {"input": {"format": {"encoding": "audio/pcm", "sample_rate": 16000}}}

    async def go() -> dict[str, Any]:
        ws = await raw(sb, {"Authorization": sb.api_key})
        await send(ws, {"type": "session.update", "session": update})
        first = await recv(ws)
        await ws.close()
        return first

    first = run(go())
    if strict:
        assert (first["code"], first["param"]) == ("invalid_value", "input.format.sample_rate")
    else:
        assert first["type"] == "session.ready"
