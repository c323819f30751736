"""Every injectable fault, asserted as the CLIENT sees it (typed error, HTTP status, error
code, close code, close frame): what the `token` and `resume` checks will classify."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import pytest
from sandbox_wire import run

from doctor.net.agent_api import (
    AgentApiError,
    AgentConnection,
    ClosedByServer,
    HandshakeRejected,
    SessionError,
    StepTimeout,
    mint_token,
)
from doctor.sandbox.config import FAULTS
from doctor.sandbox.threaded import ThreadedSandbox

# These tests pin protocol.md's version; the field's default is in test_field_*.py.
pytestmark = pytest.mark.sandbox_behaviour("documented")

Factory = Callable[..., ThreadedSandbox]


async def start(
    sb: ThreadedSandbox, timeout: float = 5, ready_timeout: float | None = None
) -> AgentConnection:
    """`ready_timeout`: the ready step's own budget (the TLS connect keeps `timeout`)."""
    async with AgentConnection.open(sb.ws_url, api_key=sb.api_key, timeout=timeout) as c:
        await c.start_session({}, timeout=ready_timeout)
        await c.end()
        return c


def failure(
    sb: ThreadedSandbox, timeout: float = 5, ready_timeout: float | None = None
) -> AgentApiError:
    async def go() -> AgentApiError:
        try:
            await start(sb, timeout, ready_timeout)
        except AgentApiError as exc:
            return exc
        raise AssertionError("no failure")

    return run(go())


# fault -> (error class, step, http_status, error_code, close_code)
AT_CONNECT: dict[str, tuple[type[AgentApiError], str, int | None, str | None, int | None]] = {
    "handshake-reject": (HandshakeRejected, "handshake", 401, None, None),
    "handshake-forbidden": (HandshakeRejected, "handshake", 403, None, None),
    "unauthorized-after-upgrade": (SessionError, "ready", None, "UNAUTHORIZED", 1008),
    "forbidden-after-upgrade": (SessionError, "ready", None, "FORBIDDEN", 1008),
    "token-expired-frame": (SessionError, "ready", None, "unauthorized", 1008),
    "internal-error": (SessionError, "ready", None, "INTERNAL_ERROR", 1011),
    "at-capacity": (SessionError, "ready", None, "server_error", 1008),
    "agent-init-failed": (SessionError, "ready", None, "agent_init_failed", 1011),
}


@pytest.mark.parametrize("fault", sorted(AT_CONNECT))
def test_connect_fault_as_the_client_sees_it(sandbox_factory: Factory, fault: str) -> None:
    sb = sandbox_factory(faults={fault: None})
    cls, step, status, code, close = AT_CONNECT[fault]
    err = failure(sb)
    assert type(err) is cls
    facts = err.facts()
    if status is not None:
        assert (err.http_status, facts["http_status"]) == (status, status)
        assert facts["kind"] == "http_status" and "error" in (err.body or "")
    else:
        # the step is `ready` or `send`: the server may refuse before session.update goes out
        assert err.step in (step, "send")
        assert (err.error_code, err.close_code, err.close_frame) == (code, close, True)
        assert err.close_reason == code
        assert facts["error_code"] == code and facts["close_code"] == close


def test_agent_timeout(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(faults={"agent-timeout": 0.2})
    err = failure(sb)
    assert isinstance(err, SessionError)
    assert (err.error_code, err.close_code) == ("agent_timeout", 1011)
    assert not sb.find("session.ready")


def test_agent_timeout_at_the_documented_limit(sandbox_factory: Factory) -> None:
    """slow-ready beyond agent_ready_limit_s becomes agent_timeout (the 10 s rule, scaled)."""
    sb = sandbox_factory(faults={"slow-ready": 5.0}, agent_ready_limit_s=0.2)
    err = failure(sb)
    assert isinstance(err, SessionError) and err.error_code == "agent_timeout"


def test_at_capacity_after_admits_n_sessions_then_refuses_new_ones(
    sandbox_factory: Factory,
) -> None:
    sb = sandbox_factory(faults={"at-capacity-after": 2})
    for _ in range(2):
        assert run(start(sb)).session_id
    err = failure(sb)
    assert isinstance(err, SessionError)
    assert (err.error_code, err.close_code, err.close_frame) == ("server_error", 1008, True)
    assert len(sb.find("session.ready")) == 2


def test_resume_rejected(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(faults={"resume-rejected": None})

    async def go() -> AgentApiError:
        c = await AgentConnection.open(sb.ws_url, api_key=sb.api_key)
        await c.start_session({})
        await c.drop()
        assert c.session_id
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as again:
            with pytest.raises(SessionError) as info:
                await again.resume(c.session_id)
        return info.value

    err = run(go())
    assert (err.error_code, err.close_code, err.step) == ("session_not_found", 1008, "resume")


def test_resume_silent(sandbox_factory: Factory) -> None:
    """session.resume gets no answer at all, and the socket stays open: the client's own
    timeout is what ends the wait (a resume that hangs)."""
    sb = sandbox_factory(faults={"resume-silent": None})

    async def go() -> tuple[StepTimeout, bool]:
        c = await AgentConnection.open(sb.ws_url, api_key=sb.api_key)
        await c.start_session({})
        await c.drop()
        assert c.session_id
        # the default budget for the TLS connect; the step under test gets its own 0.5 s
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as again:
            with pytest.raises(StepTimeout) as info:
                await again.resume(c.session_id, timeout=0.5)
            return info.value, again.close_code is None

    err, still_open = run(go())
    assert (err.step, err.timeout_s) == ("resume", 0.5) and still_open
    assert len(sb.find("session.resume_unanswered")) == 1 and not sb.find("session.error")


def test_no_session_ended(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(faults={"no-session-ended": None})

    async def go() -> tuple[dict[str, Any] | None, AgentConnection]:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({})
            return await c.end(), c

    ended, c = run(go())
    assert ended is None
    assert (c.close_code, c.close_frame) == (1000, True)
    assert "session.ended" not in [e.type for e in c.received]


def test_slow_first_ended_delays_only_the_first_session_ended(sandbox_factory: Factory) -> None:
    """field-facts §12: one session.ended came late. A client that gives up and cuts the
    socket ends the sandbox's wait; every later session.end is answered at once."""
    sb = sandbox_factory(faults={"slow-first-ended": 60.0})

    async def go() -> tuple[AgentApiError, dict[str, Any] | None]:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as first:
            await first.start_session({})
            with pytest.raises(StepTimeout) as info:
                await first.end(timeout=0.3)
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as second:
            await second.start_session({})
            return info.value, await second.end()

    err, ended = run(go())
    assert err.step == "end"
    assert ended is not None and ended["type"] == "session.ended"
    (delayed,) = sb.find("session.ended_delayed")
    assert delayed["delay_s"] == 60.0
    # The cut ended the sandbox's wait: the first connection is closed, with no
    # session.ended sent on it, long before the 60 s.
    assert sb.wait_for("ws.closed", conn=delayed["conn"])
    assert not sb.find("session.ended", conn=delayed["conn"])


def test_slow_first_ended_within_the_client_timeout(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(faults={"slow-first-ended": 0.3})

    async def go() -> dict[str, Any] | None:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({})
            return await c.end(timeout=10)

    assert run(go()) is not None
    asked = sb.find("session.end")[-1]["t_s"]
    ended = sb.find("session.ended")[-1]["t_s"]
    assert ended - asked >= 0.3 - 1e-3


def test_drop_after_ready(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(faults={"drop-after-ready": 0.05})

    async def go() -> ClosedByServer:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({})
            with pytest.raises(ClosedByServer) as info:
                await c.wait_for("session.ended", "wait")
            return info.value

    err = run(go())
    assert err.close_frame is False and err.close_code == 1006
    assert err.facts()["close_frame"] is False
    sid = sb.find("session.ready")[-1]["session_id"]
    assert sb.wait_for("session.detached", session_id=sid)  # resumable: a network drop


def test_slow_ready_within_the_client_timeout(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(faults={"slow-ready": 0.3})
    c = run(start(sb))
    assert c.ready_s is not None and c.session_id
    asked = sb.find("session.update")[-1]["t_s"]
    ready = sb.find("session.ready")[-1]["t_s"]
    assert ready - asked >= 0.3 - 1e-3  # the sandbox's own clock, logged to 0.1 ms


def test_slow_ready_beyond_the_client_timeout_is_a_step_timeout(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(faults={"slow-ready": 3.0})
    err = failure(sb, timeout=10, ready_timeout=0.3)
    assert isinstance(err, StepTimeout)
    assert (err.step, err.timeout_s) == ("ready", 0.3)
    assert err.facts()["kind"] == "timeout"


@pytest.mark.parametrize(
    ("fault", "status"), [("token-rate-limited", 429), ("token-server-error", 500)]
)
def test_token_endpoint_faults(sandbox_factory: Factory, fault: str, status: int) -> None:
    sb = sandbox_factory(faults={fault: None})
    result = run(mint_token(sb.token_url, sb.api_key, 60))
    assert (result.status, result.ok, result.token) == (status, False, None)
    assert result.error
    assert not sb.find("token.minted")
    # Only the 429 asks for a wait (the fault's default: 30 s).
    assert result.retry_after_s == (30.0 if status == 429 else None)


@pytest.mark.parametrize(
    ("seconds", "form", "header", "wait_s"),
    [
        (30.0, "seconds", "30", 30.0),
        (2.5, "seconds", "3", 3.0),  # delta-seconds are whole: rounded up, never shorter
        (0.0, "seconds", "0", 0.0),
        (30.0, "date", None, 30.0),  # an HTTP-date, read against the response's Date
        (90.0, "date", None, 90.0),
    ],
)
def test_rate_limited_sends_retry_after_in_both_forms(
    sandbox_factory: Factory, seconds: float, form: str, header: str | None, wait_s: float
) -> None:
    sb = sandbox_factory(faults={"token-rate-limited": seconds}, retry_after_form=form)

    async def go() -> tuple[int, dict[str, str]]:
        import httpx

        verify = ssl.create_default_context(cafile=sb.ca_file)
        async with httpx.AsyncClient(verify=verify, trust_env=False) as client:
            got = await client.get(
                sb.token_url,
                params={"expires_in_seconds": 60},
                headers={"Authorization": sb.api_key},
            )
        return got.status_code, dict(got.headers)

    status, headers = run(go())
    assert status == 429
    if header is not None:
        assert headers["retry-after"] == header
    else:
        assert headers["retry-after"].endswith(" GMT") and headers["date"].endswith(" GMT")
    result = run(mint_token(sb.token_url, sb.api_key, 60))
    assert result.retry_after_s == wait_s


def test_resume_new_id_keeps_the_session_under_a_new_id(sandbox_factory: Factory) -> None:
    """protocol.md §3.6 leaves the id after a resume open; with this fault the service
    answers with a new id, keeps the context, and forgets the old id."""
    sb = sandbox_factory(faults={"resume-new-id": None})
    config = {"system_prompt": "remember me", "output": {"voice": "james"}}

    async def go() -> tuple[str, str, dict[str, Any] | None, AgentApiError]:
        first = await AgentConnection.open(sb.ws_url, api_key=sb.api_key)
        await first.start_session(config)
        await first.drop()
        assert first.session_id
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as second:
            ready = await second.resume(first.session_id)
            new_id = ready["session_id"]
            assert sb.sandbox.store.sessions[new_id].config["system_prompt"] == "remember me"
            # The old id is gone at once, even for the account that owns it.
            async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as third:
                with pytest.raises(SessionError) as info:
                    await third.resume(first.session_id)
            ended = await second.end()
        return first.session_id, new_id, ended, info.value

    old_id, new_id, ended, err = run(go())
    assert new_id != old_id and new_id.startswith("sess_") and len(new_id) == 5 + 32
    assert (err.error_code, err.close_code) == ("session_not_found", 1008)
    assert ended is not None and ended["session_duration_seconds"] >= 0
    reissued = sb.wait_for("session.reissued")
    assert (reissued["old_session_id"], reissued["session_id"]) == (old_id, new_id)
    assert [e["session_id"] for e in sb.find("session.ready", direction="out")] == [
        old_id,
        new_id,
    ]
    assert old_id not in sb.sandbox.store.sessions and new_id not in sb.sandbox.store.sessions


def test_close_without_frame_is_a_1006_with_nothing_before_it(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(faults={"close-without-frame": None})

    async def go() -> tuple[AgentApiError, AgentConnection]:
        conn = await AgentConnection.open(sb.ws_url, api_key=sb.api_key, timeout=5)
        try:
            with pytest.raises(ClosedByServer) as info:
                await conn.start_session({})
        finally:
            await conn.aclose()
        return info.value, conn

    err, conn = run(go())
    assert err.step in ("ready", "send")
    assert (err.close_code, err.close_frame, err.error_code) == (1006, False, None)
    assert conn.received == []  # not one frame: no session.error, no close
    drop = sb.wait_for("ws.drop")
    assert "close-without-frame" in drop["detail"]
    closed = sb.wait_for("ws.closed", conn=drop["conn"])
    assert closed["close_frame_received"] is False
    assert not sb.find("session.error") and not sb.find("session.ready")
    # The upgrade itself succeeded (101): reachability probes still see the API.
    assert sb.find("ws.open", conn=drop["conn"])


def test_every_fault_has_a_test() -> None:
    covered = set(AT_CONNECT) | {
        "agent-timeout",
        "resume-rejected",
        "resume-silent",
        "no-session-ended",
        "slow-first-ended",
        "at-capacity-after",
        "drop-after-ready",
        "slow-ready",
        "token-rate-limited",
        "token-server-error",
        "resume-new-id",
        "close-without-frame",
    }
    assert covered == set(FAULTS)
