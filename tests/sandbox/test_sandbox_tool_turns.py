"""A tool turn never overlaps another reply, and a barge-in cannot strand it.

The first test is a client over real sockets: a greeting the user cannot interrupt
(`interrupt_response: false`) is still playing when the user's turn ends and the sandbox
calls a tool (`--tool-call`). The second drives `Conversation` directly with a connection
that holds the carrier right after its `reply.started`, the one moment a barge-in could
fall between that and the `tool.call`; real sockets cannot hit that instant on purpose.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

from sandbox_wire import chunks, raw, recv_until, run, send, utterance

from doctor.sandbox.config import SandboxConfig
from doctor.sandbox.conversation import Conversation
from doctor.sandbox.store import Session
from doctor.sandbox.threaded import ThreadedSandbox

Factory = Callable[..., ThreadedSandbox]
TOOL = {
    "type": "function",
    "name": "lookup_order",
    "description": "Find an order",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
}


def assert_one_reply_at_a_time(seen: list[dict[str, Any]]) -> None:
    """Every reply.audio belongs to the reply that is open; a reply.started only once the
    one before it sent reply.done."""
    open_id: str | None = None
    for event in seen:
        kind = event["type"]
        if kind == "reply.started":
            assert open_id is None, f"{event['reply_id']} started while {open_id} plays"
            open_id = event["reply_id"]
        elif kind == "reply.audio":
            assert event["reply_id"] == open_id, "reply.audio of a reply that is not open"
        elif kind == "reply.done":
            assert event["reply_id"] == open_id
            open_id = None


def test_a_tool_turn_waits_for_the_greeting_it_could_not_interrupt(
    sandbox_factory: Factory,
) -> None:
    # Each reply lasts 4 s: the user's whole turn (sent faster than real time) ends
    # while the greeting still plays.
    sb = sandbox_factory(reply_s=4.0, tool_call="lookup_order")
    session = {
        "greeting": "Hello, thanks for calling; let me tell you about our opening hours.",
        "input": {"turn_detection": {"interrupt_response": False}},
        "tools": [TOOL],
    }

    async def go() -> list[dict[str, Any]]:
        ws = await raw(sb, {"Authorization": sb.api_key})
        await send(ws, {"type": "session.update", "session": session})
        seen = await recv_until(ws, "session.ready")
        seen += await recv_until(ws, "reply.audio")  # the greeting plays
        for chunk in chunks(utterance()):
            await send(ws, {"type": "input.audio", "audio": base64.b64encode(chunk).decode()})
        seen += await recv_until(ws, "tool.call")
        seen += await recv_until(ws, "reply.done")  # the carrier's
        await ws.close()
        return seen

    seen = run(go())
    assert_one_reply_at_a_time(seen)
    started = [e["reply_id"] for e in seen if e["type"] == "reply.started"]
    done = [e for e in seen if e["type"] == "reply.done"]
    assert len(started) == 2 and [d["reply_id"] for d in done] == started
    assert done[0]["status"] == "completed"  # the greeting was heard to its end
    types = [e["type"] for e in seen]
    assert types.index("transcript.user") < types.index("reply.done")  # the turn came first


class HoldingConnection:
    """What `Conversation` needs of a connection; the carrier's `reply.started` goes out
    (it is in `sent`) and then the carrier is held until the test lets it go on."""

    def __init__(self, session: Session) -> None:
        self.cfg = SandboxConfig(tool_call="lookup_order", reply_realtime=False)
        self.session = session
        self.sent: list[dict[str, Any]] = []
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()

    async def send(self, event: dict[str, Any]) -> None:
        self.sent.append(event)
        if event["type"] == "reply.started" and not self.release.is_set():
            self.held.set()
            await self.release.wait()

    async def error(self, err: Any) -> None:
        self.sent.append({"type": "session.error", "code": err.code})

    def record(self, *args: Any, **detail: Any) -> None:
        pass

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        return task


def test_a_barge_in_before_the_tool_call_went_out_ends_the_turn() -> None:
    """The carrier is cut after its reply.started and before its tool.call: the client
    never saw a call, so the turn must not wait for a result (here up to 30 s)."""
    tool = {**TOOL, "timeout_seconds": 30}
    session = Session("sess_test", "key", 0.0, 1e9, config={"tools": [tool]}, ready=True)

    async def go() -> HoldingConnection:
        conn = HoldingConnection(session)
        talk = Conversation(conn)  # type: ignore[arg-type]
        turn = asyncio.ensure_future(talk._turn())
        await conn.held.wait()  # the carrier's reply.started is out
        await talk.on_speech_started()  # barge-in (interrupt_response defaults to true)
        conn.release.set()
        await asyncio.wait_for(turn, 10)  # ends at once; before the fix, 30 s
        assert not talk.tool_waits
        for task in conn.tasks:
            task.cancel()
        return conn

    conn = run(go())
    types = [e["type"] for e in conn.sent]
    assert "tool.call" not in types
    assert types.count("reply.started") == 1  # no answer reply ("did not answer in time")
    assert [e.get("status") for e in conn.sent if e["type"] == "reply.done"] == ["interrupted"]
    assert session.tool_calls == []
