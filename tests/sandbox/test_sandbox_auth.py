"""Conformance: how the sandbox authenticates (protocol.md §2), through the real client and
through raw websockets frames. One test per rule; switches parametrised."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sandbox_wire import FakeClock, raw, recv, run
from websockets.exceptions import ConnectionClosed, InvalidStatus

from doctor.net.agent_api import (
    AgentConnection,
    HandshakeRejected,
    SessionError,
    mint_token,
    ssl_context_for,
)
from doctor.sandbox.threaded import ThreadedSandbox

# These tests pin protocol.md's version; the field's default is in test_field_*.py.
pytestmark = pytest.mark.sandbox_behaviour("documented")

Factory = Callable[..., ThreadedSandbox]
FORBIDDEN_KEY = "forbidden-key-0123456789abcdef"
WRONG_KEY = "wrong-key-0123456789abcdef0123"


async def ready_with(sb: ThreadedSandbox, **auth: Any) -> str:
    async with AgentConnection.open(sb.ws_url, ca_bundle=sb.ca_file, timeout=5, **auth) as c:
        payload = await c.start_session({})
        await c.end()
    return str(payload["session_id"])


# --- accepted credentials ------------------------------------------------------------------


@pytest.mark.parametrize("header", ["raw", "bearer"])
def test_api_key_in_either_header_form_opens_a_session(
    sandbox: ThreadedSandbox, header: str
) -> None:
    sid = run(ready_with(sandbox, api_key=sandbox.api_key, auth_header=header))
    assert sid.startswith("sess_")
    request = sandbox.find("http.request", path="/v1/ws")[-1]
    assert request["authorization"] == header
    assert sandbox.find("ws.open")[-1]["auth"] == "api_key"


@pytest.mark.parametrize("prefix", ["", "Bearer ", "bearer "])
def test_api_key_raw_frames_accepts_both_header_forms(
    sandbox: ThreadedSandbox, prefix: str
) -> None:
    async def go() -> dict[str, Any]:
        ws = await raw(sandbox, {"Authorization": prefix + sandbox.api_key})
        await ws.send(json.dumps({"type": "session.update", "session": {}}))
        msg = await recv(ws)
        await ws.close()
        return msg

    assert run(go())["type"] == "session.ready"


def test_token_in_query_opens_a_session(sandbox: ThreadedSandbox) -> None:
    async def go() -> str:
        minted = await mint_token(sandbox.token_url, sandbox.api_key, 60, ca_bundle=sandbox.ca_file)
        assert minted.ok and minted.token
        return await ready_with(sandbox, token=minted.token)

    assert run(go()).startswith("sess_")
    assert sandbox.find("ws.open")[-1]["auth"] == "token"
    path = sandbox.find("http.request", path=None) or sandbox.find("http.request")
    assert any(e["path"].startswith("/v1/ws?token=****") for e in path)


def test_token_raw_frames_in_query(sandbox: ThreadedSandbox) -> None:
    async def go() -> dict[str, Any]:
        async with httpx.AsyncClient(verify=ssl_context_for(sandbox.ca_file) or True) as http:
            r = await http.get(
                sandbox.token_url,
                params={"expires_in_seconds": 60},
                headers={"Authorization": sandbox.api_key},
            )
        ws = await raw(sandbox, query=f"token={r.json()['token']}")
        await ws.send(json.dumps({"type": "session.update", "session": {}}))
        msg = await recv(ws)
        await ws.close()
        return msg

    assert run(go())["type"] == "session.ready"


# --- refused credentials: both documented behaviours (auth_failure switch) -------------------

REFUSALS: dict[str, tuple[dict[str, str], str, int]] = {
    # case: (credentials, error code after the upgrade, HTTP status instead of it)
    "wrong_key": ({"api_key": WRONG_KEY}, "UNAUTHORIZED", 401),
    "no_credentials": ({}, "UNAUTHORIZED", 401),
    "forbidden_key": ({"api_key": FORBIDDEN_KEY}, "FORBIDDEN", 403),
    "unknown_token": ({"token": "not-a-token-0123456789"}, "UNAUTHORIZED", 401),
}


@pytest.mark.parametrize("mode", ["close", "http"])
@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_credentials_client_sees(sandbox_factory: Factory, case: str, mode: str) -> None:
    sb = sandbox_factory(auth_failure=mode, forbidden_keys=[FORBIDDEN_KEY])
    creds, code, status = REFUSALS[case]

    async def go() -> BaseException:
        try:
            await ready_with(sb, **creds)
        except (SessionError, HandshakeRejected) as exc:
            return exc
        raise AssertionError("the sandbox accepted a bad credential")

    err = run(go())
    if mode == "close":
        assert isinstance(err, SessionError)
        assert (err.error_code, err.close_code, err.close_frame) == (code, 1008, True)
        assert err.close_reason == code
    else:
        assert isinstance(err, HandshakeRejected)
        assert err.http_status == status and err.step == "handshake"
        assert err.facts()["http_status"] == status


@pytest.mark.parametrize("mode", ["close", "http"])
@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_credentials_raw_frames(sandbox_factory: Factory, case: str, mode: str) -> None:
    sb = sandbox_factory(auth_failure=mode, forbidden_keys=[FORBIDDEN_KEY])
    creds, code, status = REFUSALS[case]
    given = creds
    headers = {"Authorization": f"Bearer {given['api_key']}"} if "api_key" in given else {}
    query = f"token={given['token']}" if "token" in given else ""

    async def go() -> tuple[dict[str, Any] | None, int | None, int | None]:
        try:
            ws = await raw(sb, headers, query)
        except InvalidStatus as exc:
            return None, None, exc.response.status_code
        first = await recv(ws)  # the error comes first, unprompted
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        return first, ws.close_code, None

    first, close_code, http_status = run(go())
    if mode == "close":
        assert first is not None and first["type"] == "session.error"
        assert first["code"] == code and isinstance(first["timestamp"], str)
        assert close_code == 1008
    else:
        assert http_status == status


# --- the token endpoint --------------------------------------------------------------------


@pytest.mark.parametrize("header", ["raw", "bearer"])
def test_token_endpoint_200_shape(sandbox: ThreadedSandbox, header: str) -> None:
    async def go() -> Any:
        return await mint_token(
            sandbox.token_url,
            sandbox.api_key,
            120,
            600,
            ca_bundle=sandbox.ca_file,
            auth_header=header,
        )

    result = run(go())
    assert result.status == 200 and result.ok
    assert set(result.body) == {"token", "expires_in_seconds"}
    assert result.expires_in_seconds == 120 and isinstance(result.token, str)
    minted = sandbox.find("token.minted")[-1]
    assert minted["max_session_duration_seconds"] == 600
    assert minted["token"] != result.token and minted["token"].startswith("****")


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({}, "expires_in_seconds"),
        ({"expires_in_seconds": 0}, "expires_in_seconds"),
        ({"expires_in_seconds": 601}, "expires_in_seconds"),
        ({"expires_in_seconds": "soon"}, "expires_in_seconds"),
        (
            {"expires_in_seconds": 60, "max_session_duration_seconds": 59},
            "max_session_duration_seconds",
        ),
        (
            {"expires_in_seconds": 60, "max_session_duration_seconds": 10801},
            "max_session_duration_seconds",
        ),
    ],
)
def test_token_endpoint_400_names_the_parameter(
    sandbox: ThreadedSandbox, query: dict[str, Any], param: str
) -> None:
    r = httpx.get(
        sandbox.token_url,
        params=query,
        headers={"Authorization": sandbox.api_key},
        verify=ssl_context_for(sandbox.ca_file) or True,
    )
    assert r.status_code == 400
    body = r.json()
    assert param in body["error"] and body["details"] == {"param": param}
    assert not sandbox.find("token.minted")


def test_token_endpoint_400_through_the_client(sandbox: ThreadedSandbox) -> None:
    result = run(mint_token(sandbox.token_url, sandbox.api_key, 601, ca_bundle=sandbox.ca_file))
    assert result.status == 400 and not result.ok and result.token is None
    assert result.error is not None and "expires_in_seconds" in result.error


@pytest.mark.parametrize("header", [None, WRONG_KEY, f"Bearer {WRONG_KEY}"])
def test_token_endpoint_401_for_a_bad_key(sandbox: ThreadedSandbox, header: str | None) -> None:
    r = httpx.get(
        sandbox.token_url,
        params={"expires_in_seconds": 60},
        headers={"Authorization": header} if header else {},
        verify=ssl_context_for(sandbox.ca_file) or True,
    )
    assert r.status_code == 401 and "error" in r.json()
    client = run(mint_token(sandbox.token_url, WRONG_KEY, 60, ca_bundle=sandbox.ca_file))
    assert client.status == 401 and client.token is None


# --- token lifetime ------------------------------------------------------------------------


def test_token_is_single_use(sandbox: ThreadedSandbox) -> None:
    async def go() -> SessionError:
        minted = await mint_token(sandbox.token_url, sandbox.api_key, 60, ca_bundle=sandbox.ca_file)
        assert minted.token
        await ready_with(sandbox, token=minted.token)
        with pytest.raises(SessionError) as info:
            await ready_with(sandbox, token=minted.token)
        return info.value

    err = run(go())
    assert (err.error_code, err.close_code) == ("UNAUTHORIZED", 1008)
    assert "used" in (err.error_message or "")


@pytest.mark.parametrize(
    ("mode", "code"), [("frame", "unauthorized"), ("close", "UNAUTHORIZED"), ("http", None)]
)
def test_token_expires_after_its_redemption_window(
    sandbox_factory: Factory, mode: str, code: str | None
) -> None:
    """expires_in_seconds=1, and the sandbox clock moves 1.5 s: nobody sleeps."""
    clock = FakeClock()
    sb = sandbox_factory(clock=clock, expired_token=mode)

    async def go() -> BaseException:
        minted = await mint_token(sb.token_url, sb.api_key, 1, ca_bundle=sb.ca_file)
        assert minted.token
        clock.advance(1.5)
        with pytest.raises((SessionError, HandshakeRejected)) as info:
            await ready_with(sb, token=minted.token)
        return info.value

    err = run(go())
    if code is None:
        assert isinstance(err, HandshakeRejected) and err.http_status == 401
    else:
        assert isinstance(err, SessionError)
        assert (err.error_code, err.close_code) == (code, 1008)


def test_token_within_its_window_works_and_stops_mattering_after_ready(
    sandbox_factory: Factory,
) -> None:
    clock = FakeClock()
    sb = sandbox_factory(clock=clock)

    async def go() -> dict[str, Any]:
        minted = await mint_token(sb.token_url, sb.api_key, 1, ca_bundle=sb.ca_file)
        clock.advance(0.5)
        async with AgentConnection.open(sb.ws_url, token=minted.token, ca_bundle=sb.ca_file) as c:
            await c.start_session({})
            clock.advance(5.0)  # the window is long gone; the session is not
            updated = await c.update({"system_prompt": "still here"})
            await c.end()
        return updated

    assert run(go())["type"] == "session.updated"


def test_token_max_session_duration_caps_the_session(sandbox_factory: Factory) -> None:
    """duration_scale 0.005: the token's 60 s cap lasts 0.3 s of wall time (the key's
    default 10800 s cap would last 54 s, so only the token's cap can end it in time)."""
    sb = sandbox_factory(duration_scale=0.005)

    async def go() -> tuple[SessionError, list[str]]:
        minted = await mint_token(sb.token_url, sb.api_key, 60, 60, ca_bundle=sb.ca_file)
        async with AgentConnection.open(
            sb.ws_url, token=minted.token, ca_bundle=sb.ca_file, timeout=10
        ) as c:
            await c.start_session({})
            with pytest.raises(SessionError) as info:
                await c.wait_for("session.ended", "cap", errors_fatal=False)
            return info.value, [e.type for e in c.received]

    err, types = run(go())
    assert (err.error_code, err.close_code, err.close_frame) == ("session_expired", 1008, True)
    assert types[-2:] == ["session.error", "session.ended"]  # SKILL: ended after expiry
    assert sb.find("session.created")[-1]["cap_s"] == 60
    ended = sb.find("session.ended")[-1]
    assert ended["session_duration_seconds"] >= 0.3


def test_api_key_session_cap_from_config(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(max_session_s=0.2)

    async def go() -> SessionError:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key, ca_bundle=sb.ca_file) as c:
            await c.start_session({})
            with pytest.raises(SessionError) as info:
                await c.wait_for("session.ended", "cap")
            return info.value

    err = run(go())
    assert (err.error_code, err.close_code) == ("session_expired", 1008)
    assert sb.find("session.created")[-1]["cap_s"] == 0.2
