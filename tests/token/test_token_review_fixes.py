"""Review findings on the `token` check (issue 5): a `session.ready` without `session_id`,
sessions left open by a cancelled check, fixes naming the wrong host, and the time budget.
Real sockets throughout: the sandbox, or a raw websockets server for protocol violations
the sandbox has no fault for."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from tokenraw import raw_server
from tokenrun import doctor

from doctor.checks.token import _timeout as token_timeout
from doctor.context import Context, Credential
from doctor.net.agent_api import AgentConnection
from doctor.net.sessions import MINIMAL_CONFIG, Attempt, Auth, Sessions
from doctor.sandbox.pytest_plugin import SandboxFactory
from doctor.sandbox.threaded import ThreadedSandbox


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_session_ready_without_session_id_fails_and_the_session_is_still_ended(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    with raw_server("session.update") as raw:
        run = doctor(
            sandbox, tmp_path, "--api-key", sandbox.api_key, "--ws-url", raw.ws_url,
            secrets=(sandbox.api_key,),
        )  # fmt: skip
        (conn,) = raw.session_conns
        assert raw.types(conn) == ["session.update", "session.end"]
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", "no_session_ready"), r["summary"]
    assert "session.ready without session_id" in r["summary"]
    assert r["fix"]["guide"] == "service_side"
    (session,) = r["evidence"]["sessions"]
    assert session["failure"]["kind"] == "no_session_id" and session["session_id"] is None
    assert session["session_ended_received"] is True
    assert run.proc.returncode == 1


def test_finish_ends_a_session_whose_ready_came_before_open_stored_the_id(
    sandbox: ThreadedSandbox,
) -> None:
    """The state a check cancelled by its timeout leaves: the client noted the id on
    receipt of session.ready, `Sessions.open` never returned, so `attempt.ready` is False."""
    ctx = Context.build(
        ws_url=sandbox.ws_url, token_url=sandbox.token_url, ca_bundle=sandbox.ca_file,
        api_key=Credential("api_key", sandbox.api_key, "test"), timeout=5.0,
    )  # fmt: skip

    async def scenario() -> Attempt:
        s = Sessions(ctx, "token")
        conn = await AgentConnection.open(
            sandbox.ws_url, api_key=sandbox.api_key, ca_bundle=sandbox.ca_file, timeout=5.0
        )
        await conn.start_session(MINIMAL_CONFIG)
        attempt = Attempt(
            label="API key", auth=Auth("api_key", sandbox.api_key, "API key"),
            started_at=datetime.now(timezone.utc), offset_s=0.0, conn=conn,
            opened_at=time.monotonic(), upgraded=True,
        )  # fmt: skip
        s.attempts.append(attempt)
        assert conn.session_id is not None and not attempt.ready
        await s.finish()
        return attempt

    attempt = asyncio.run(scenario())
    assert attempt.conn is not None
    sid = attempt.conn.session_id
    (ready,) = sandbox.find("session.ready", direction="out")
    assert ready["session_id"] == sid
    conn = ready["conn"]
    sandbox.wait_for("ws.closed", conn=conn)
    assert sandbox.find("session.end", direction="in", conn=conn), "session.end never came"
    assert sandbox.find("session.ended", direction="out", conn=conn)
    (record,) = ctx.support
    assert record.session_id == sid and record.ended_cleanly is True


def test_no_session_ended_with_a_small_timeout_is_the_warning_not_a_timeout(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory(faults={"no-session-ended": None})
    run = doctor(sb, tmp_path, "--api-key", sb.api_key, secrets=(sb.api_key,), timeout_s="0.3")
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("warn", "no_session_ended"), r["summary"]
    assert run.proc.returncode == 0


@pytest.mark.parametrize("timeout", [0.3, 1.0, 10.0, 60.0])
def test_the_token_budget_covers_every_wait_of_four_sessions_and_a_mint(timeout: float) -> None:
    """Connect, ready, ended, server close, close handshake and its wait: 6 waits a
    session (1 s after a failed send each time, twice); a mint: connect, write, read."""
    ctx = Context.build(
        api_key=Credential("api_key", "k" * 32, "test"),
        token=Credential("token", "t" * 40, "test"),
        timeout=timeout,
    )
    worst = 4 * (6 * timeout + 2 * 1.0 + 0.1) + 3 * timeout
    assert token_timeout(ctx) > worst
    key_only = Context.build(api_key=Credential("api_key", "k" * 32, "test"), timeout=timeout)
    assert token_timeout(key_only) > 3 * (6 * timeout + 2.1) + 3 * timeout
    assert token_timeout(key_only) < token_timeout(ctx)


# --- fixes name the hosts of this run -----------------------------------------------------


def test_a_mint_failure_names_the_token_host_and_port_and_the_other_region(
    sandbox: ThreadedSandbox, tmp_path: Path, closed_port: int
) -> None:
    token_url = f"https://127.0.0.1:{closed_port}/v1/token"
    run = doctor(
        sandbox, tmp_path, "--api-key", sandbox.api_key, "--region", "eu",
        "--token-url", token_url, secrets=(sandbox.api_key,),
    )  # fmt: skip
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", "token_url_unreachable"), r["summary"]
    # the token endpoint's own fix (session 26: it was the WebSocket firewall's)
    assert r["fix"]["guide"] == "token_unreachable"
    steps = " ".join(r["fix"]["steps"])
    assert f"outbound TCP {closed_port} (HTTPS) to 127.0.0.1" in steps
    assert "WebSocket" not in steps
    # --region eu: neither region's default host stands in for the custom URL.
    assert "agents.eu.assemblyai.com" not in steps
    assert "agents.assemblyai.com:" not in steps and f"https://127.0.0.1:{closed_port}/" in (
        " ".join(r["fix"]["commands"])
    )


def test_a_custom_url_failure_does_not_name_the_default_host(
    sandbox: ThreadedSandbox, tmp_path: Path, closed_port: int
) -> None:
    token_url = f"https://127.0.0.1:{closed_port}/v1/token"
    run = doctor(
        sandbox, tmp_path, "--api-key", sandbox.api_key, "--token-url", token_url,
        secrets=(sandbox.api_key,),
    )  # fmt: skip
    r = run.result("token")
    steps = " ".join(r["fix"]["steps"])
    assert f"outbound TCP {closed_port} (HTTPS) to 127.0.0.1" in steps
    assert "agents.assemblyai.com" not in steps
    assert r["fix"]["commands"][-1] == f"curl -sv -o /dev/null {token_url}"


def _token_with_url(sandbox: ThreadedSandbox, tmp_path: Path, token_url: str) -> Any:
    run = doctor(
        sandbox, tmp_path, "--api-key", sandbox.api_key, "--token-url", token_url,
        secrets=(sandbox.api_key,),
    )  # fmt: skip
    return run.result("token")


def test_a_plain_http_token_url_is_named_with_its_scheme_and_port(
    sandbox: ThreadedSandbox, tmp_path: Path, closed_port: int
) -> None:
    """The detail used to say `GET https://127.0.0.1/v1/token` for an http:// URL with a
    port, and the fix to allow `TLS, WebSocket upgrade`."""
    token_url = f"http://127.0.0.1:{closed_port}/v1/token"
    r = _token_with_url(sandbox, tmp_path, token_url)
    assert (r["status"], r["cause"]) == ("fail", "token_url_unreachable"), r["summary"]
    steps = " ".join(r["fix"]["steps"])
    assert f"Detail: GET {token_url}: " in steps
    assert f"outbound TCP {closed_port} (plain HTTP) to 127.0.0.1" in steps
    assert "https://" not in steps and "TLS" not in steps


def test_a_wrong_token_path_names_the_path_that_answered_404(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    token_url = sandbox.token_url.replace("/v1/token", "/v1/tokens")
    r = _token_with_url(sandbox, tmp_path, token_url)
    assert (r["status"], r["cause"]) == ("fail", "bad_request"), r["summary"]
    steps = " ".join(r["fix"]["steps"])
    assert "GET /v1/tokens answered HTTP 404" in steps and "GET /v1/token " not in steps
