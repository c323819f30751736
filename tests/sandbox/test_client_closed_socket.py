"""After the server closes: `next_event` keeps answering None at once, and `send_raw` raises
the client's own errors (ClosedByServer, or the fatal SessionError that came first)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sandbox_wire import run

from doctor.net.agent_api import AgentConnection, ClosedByServer, SessionError
from doctor.net.events import ServerEvent
from doctor.sandbox.threaded import ThreadedSandbox

# These tests pin protocol.md's version; the field's default is in test_field_*.py.
pytestmark = pytest.mark.sandbox_behaviour("documented")

Factory = Callable[..., ThreadedSandbox]


async def drain(c: AgentConnection) -> list[ServerEvent]:
    """Every event up to the close (the first None)."""
    seen: list[ServerEvent] = []
    while (event := await c.next_event(10)) is not None:
        seen.append(event)
    return seen


def test_next_event_stays_none_after_the_close(sandbox: ThreadedSandbox) -> None:
    async def go() -> list[ServerEvent | None]:
        async with AgentConnection.open(sandbox.ws_url, api_key=sandbox.api_key) as c:
            await c.start_session({})
            await c.send({"type": "session.end"})
            assert "session.ended" in [e.type for e in await drain(c)]
            # A long budget: without the sentinel put back, these would wait it out and
            # raise StepTimeout instead of answering None.
            return [await c.next_event(30) for _ in range(3)]

    assert run(go()) == [None, None, None]


def test_send_raw_after_a_normal_close_is_closed_by_server(sandbox: ThreadedSandbox) -> None:
    async def go() -> ClosedByServer:
        async with AgentConnection.open(sandbox.ws_url, api_key=sandbox.api_key) as c:
            await c.start_session({})
            await c.send({"type": "session.end"})
            await drain(c)
            with pytest.raises(ClosedByServer) as info:
                await c.send_raw('{"type": "input.audio", "audio": ""}')
            return info.value

    err = run(go())
    assert (err.step, err.close_code, err.close_frame) == ("send", 1000, True)
    assert err.kind == "closed"


def test_send_raw_after_a_refusal_is_the_servers_error(sandbox: ThreadedSandbox) -> None:
    async def go() -> SessionError:
        async with AgentConnection.open(sandbox.ws_url, api_key="wrong-key-" + "x" * 22) as c:
            await drain(c)  # UNAUTHORIZED frame, then close 1008
            with pytest.raises(SessionError) as info:
                await c.send_raw(b"\x00binary")
            return info.value

    err = run(go())
    assert (err.step, err.error_code, err.close_code) == ("send", "UNAUTHORIZED", 1008)
