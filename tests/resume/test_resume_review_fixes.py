"""Review findings on the `resume` check (issue 9): a `session.ready` without
`session_id` (first connection or resumed one), one fix per cause, and fixes naming the
hosts of the run. In-process `run_resume` over real sockets where the CLI cannot provoke
the case (a second key, a protocol violation the sandbox has no fault for)."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from tokenraw import raw_server
from tokenrun import doctor

from doctor.checks.resume import Leg, Plan, run_resume
from doctor.checks.resume import _timeout as resume_timeout
from doctor.context import Context, Credential
from doctor.result import Result
from doctor.sandbox.pytest_plugin import SandboxFactory

# The documented service (protocol.md); the field's default is in test_*_field.py.
pytestmark = pytest.mark.sandbox_behaviour("documented")


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def resume_with(
    ws_url: str, key: str, second_key: str | None = None, ca_bundle: str | None = None
) -> Result:
    """`run_resume` with the key on both connections, or `second_key` on the second."""
    ctx = Context.build(
        ws_url=ws_url,
        token_url="https://127.0.0.1:9/v1/token",  # unused: no leg mints
        api_key=Credential("api_key", key, "test"),
        ca_bundle=ca_bundle,
        timeout=5.0,
        resume_delay=0.1,
    )
    plan = Plan(Leg(key, minted=False), Leg(second_key or key, minted=False))
    return asyncio.run(run_resume(ctx, plan))


def test_a_first_ready_without_session_id_is_no_session_ready_not_a_crash() -> None:
    key = secrets.token_hex(16)
    with raw_server("session.update") as raw:
        result = resume_with(raw.ws_url, key)
        (conn,) = raw.session_conns
        assert raw.types(conn) == ["session.update", "session.end"]
    assert (result.status.value, result.cause) == ("fail", "no_session_ready"), result.summary
    assert "the first session did not start" in result.summary
    assert "session.ready without session_id" in result.summary
    assert len(result.evidence["connections"]) == 1  # no resume of a session with no id


def test_a_resumed_ready_without_session_id_is_no_ready_after_resume() -> None:
    key = secrets.token_hex(16)
    with raw_server("session.resume") as raw:
        result = resume_with(raw.ws_url, key)
        first, second = raw.session_conns
        assert raw.types(first) == ["session.update"]  # dropped, not ended
        assert raw.types(second) == ["session.resume", "session.end"]
    assert (result.status.value, result.cause) == ("fail", "no_ready_after_resume")
    assert result.fix is not None and result.fix.guide == "resume_no_ready"
    steps = " ".join(result.fix.steps)
    assert "What came instead: session.ready without session_id" in steps
    assert "problem is on the service side" not in steps


def test_resume_forbidden_fix_is_about_the_key_and_names_both_credentials(
    sandbox_factory: SandboxFactory,
) -> None:
    first_key, second_key = secrets.token_hex(16), secrets.token_hex(16)
    sb = sandbox_factory(api_keys=[first_key, second_key])
    result = resume_with(sb.ws_url, first_key, second_key, ca_bundle=sb.ca_file)
    assert (result.status.value, result.cause) == ("fail", "resume_forbidden")
    assert result.fix is not None and result.fix.guide == "resume_forbidden"
    steps = " ".join(result.fix.steps)
    assert "same key" in steps and "If resume fails inside the window" not in steps
    assert f"connection #1 (API key) used ****{first_key[-4:]}" in steps
    assert f"connection #2 (API key) used ****{second_key[-4:]}" in steps
    assert first_key not in steps and second_key not in steps


def test_resume_rejected_gives_the_apps_fix_through_the_cli(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory(faults={"resume-rejected": None})
    run = doctor(
        sb, tmp_path, "--api-key", sb.api_key, "--resume-delay", "0.1", check="resume",
        secrets=(sb.api_key,),
    )  # fmt: skip
    r = run.result("resume")
    assert (r["cause"], r["fix"]["guide"]) == ("resume_rejected", "resume_refused")
    steps = " ".join(r["fix"]["steps"])
    assert "catch `session_not_found`" in steps and "start a fresh session" in steps
    assert "support@assemblyai.com" in steps


def test_a_mint_failure_before_a_resume_names_the_token_host_and_the_other_region(
    sandbox_factory: SandboxFactory, closed_port: int
) -> None:
    sb = sandbox_factory()
    ctx = Context.build(
        region="eu", ws_url=sb.ws_url, token_url=f"https://127.0.0.1:{closed_port}/v1/token",
        api_key=Credential("api_key", sb.api_key, "test"), ca_bundle=sb.ca_file, timeout=5.0,
    )  # fmt: skip
    result = asyncio.run(run_resume(ctx, Plan(Leg(sb.api_key, True), Leg(sb.api_key, True))))
    assert (result.status.value, result.cause) == ("fail", "token_url_unreachable")
    # the token endpoint's own fix (session 26: it was the WebSocket firewall's)
    assert result.fix is not None and result.fix.guide == "token_unreachable"
    steps = " ".join(result.fix.steps)
    assert f"outbound TCP {closed_port} (HTTPS) to 127.0.0.1" in steps
    assert "WebSocket" not in steps and "agents.eu.assemblyai.com" not in steps


@pytest.mark.parametrize("timeout", [0.3, 1.0, 10.0])
def test_the_resume_budget_covers_two_sessions_two_mints_a_drop_and_the_delay(
    timeout: float,
) -> None:
    ctx = Context.build(
        api_key=Credential("api_key", "k" * 32, "test"),
        token=Credential("token", "t" * 40, "test"),
        timeout=timeout,
        resume_delay=5.0,
    )
    worst = 2 * (6 * timeout + 2.1) + 2 * 3 * timeout + 3 * timeout + 5.0
    assert resume_timeout(ctx) > worst
