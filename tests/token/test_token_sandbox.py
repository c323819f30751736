"""The `token` check through the real CLI against the sandbox (real TLS, real sockets).

Every run asserts that neither the key nor any token appears in stdout, stderr or the
`--report` file, and that every `token=` in them is masked.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from tokenrun import (
    assert_ended_cleanly,
    conns_with,
    doctor,
    mint,
    support_sessions,
)

from doctor.sandbox.pytest_plugin import SandboxFactory
from doctor.sandbox.threaded import ThreadedSandbox

# The documented service (protocol.md); the field's default is in test_*_field.py.
pytestmark = pytest.mark.sandbox_behaviour("documented")


def key_run(sb: ThreadedSandbox, tmp_path: Path, key: str | None = None, *extra: str) -> Any:
    key = sb.api_key if key is None else key
    return doctor(sb, tmp_path, "--api-key", key, *extra, secrets=(key, sb.api_key))


def test_good_key_mints_opens_two_sessions_ends_both_and_sees_reuse_refused(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    run = key_run(sandbox, tmp_path)
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("pass", None), r["summary"]
    assert (
        "reusing the token was refused" in r["summary"]
        and "2 sessions over 3 connections" in r["summary"]
    )
    ev = r["evidence"]
    cred = ev["credentials"]["api_key"]
    assert cred == {
        "source": "option --api-key",
        "length": 32,
        "masked": "****" + sandbox.api_key[-4:],
        "findings": [],
        "sent": "as given",
    }
    assert ev["mint"]["http_status"] == 200 and ev["mint"]["expires_in_seconds"] == 60
    assert ev["mint"]["token"].startswith("****")
    assert ev["token_reuse"] == "refused"
    key_s, token_s, reuse = ev["sessions"]
    assert key_s["auth"] == "api_key" and key_s["auth_header"] == "Bearer <key>"
    assert token_s["auth"] == "token" and reuse["auth"] == "token"
    for s in (key_s, token_s):
        assert s["session_id"].startswith("sess_") and s["time_to_ready_ms"] > 0
        assert s["session_ended_received"] is True and s["close_code"] == 1000
        types = [e["type"] for e in s["events"]]
        assert types.index("session.end") < types.index("session.ended") < types.index("closed")
    assert reuse["session_id"] is None and reuse["close_code"] == 1008
    assert reuse["failure"]["error_code"] == "UNAUTHORIZED"
    # The sandbox saw a raw key on the token endpoint, Bearer on the WebSocket.
    auths = [e["authorization"] for e in sandbox.find("http.request") if e["authorization"]]
    assert auths[:2] == ["raw", "bearer"]
    assert sandbox.find("token.minted")[0]["expires_in_seconds"] == 60
    assert sandbox.find("token.minted")[0]["max_session_duration_seconds"] == 60
    assert_ended_cleanly(sandbox)
    assert len(conns_with(sandbox, "session.ready", "out")) == 2
    # The support block: every session with id, close, start, region; the human total.
    sessions = support_sessions(run, "token")
    assert [s["ended_cleanly"] for s in sessions] == [True, True, None]
    assert [s["close_code"] for s in sessions] == [1000, 1000, 1008]
    assert all(s["region"] == "us" and s["started_at"] for s in sessions)
    assert run.report["support"]["session_ids"] == [key_s["session_id"], token_s["session_id"]]
    assert run.report["redactions"] == ["api_key", "minted_token"]


def test_human_report_says_how_many_sessions_and_how_long(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    from clirun import cli_env, run_cli

    proc = run_cli(
        "check", "token", "--ws-url", sandbox.ws_url, "--token-url", sandbox.token_url,
        "--ca-bundle", str(sandbox.ca_file), env=cli_env({"ASSEMBLYAI_API_KEY": sandbox.api_key}),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "sessions opened by agent-doctor: 2 over 3 connections (" in proc.stdout
    assert "session ids: sess_" in proc.stdout
    assert sandbox.api_key not in proc.stdout + proc.stderr


def test_verbose_debug_logs_leak_neither_the_key_nor_the_minted_tokens(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    run = key_run(sandbox, tmp_path, None, "-v")
    assert run.result("token")["status"] == "pass"
    assert "Authorization: Bearer ****" in run.proc.stderr  # websockets' own debug log
    assert len(sandbox.sandbox.store.tokens) == 1  # checked by `doctor` against every output


def test_key_from_the_environment_names_its_source(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    run = doctor(
        sandbox, tmp_path, env={"ASSEMBLYAI_API_KEY": sandbox.api_key}, secrets=(sandbox.api_key,)
    )
    r = run.result("token")
    assert r["status"] == "pass"
    assert r["evidence"]["credentials"]["api_key"]["source"] == "environment ASSEMBLYAI_API_KEY"


def test_bearer_prefix_pasted_into_the_key_fails_but_says_the_key_itself_works(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    run = key_run(sandbox, tmp_path, f"Bearer {sandbox.api_key}")
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", "malformed_credentials")
    assert "`Bearer `" in r["summary"] and "with that undone it works" in r["summary"]
    assert r["evidence"]["credentials"]["api_key"]["sent"] == "cleaned"
    assert r["fix"]["guide"] == "token_auth"
    assert_ended_cleanly(sandbox)


@pytest.mark.parametrize(
    ("value", "code", "status"),
    [
        ("'{key}'", "quoted", "fail"),
        ('"{key}"', "quoted", "fail"),
        ("  {key} ", "whitespace", "warn"),
    ],
)
def test_paste_mistakes_in_the_key(
    sandbox: ThreadedSandbox, tmp_path: Path, value: str, code: str, status: str
) -> None:
    run = key_run(sandbox, tmp_path, value.format(key=sandbox.api_key))
    r = run.result("token")
    assert (r["status"], r["cause"]) == (status, "malformed_credentials"), r["summary"]
    assert [f["code"] for f in r["evidence"]["credentials"]["api_key"]["findings"]] == [code]
    assert_ended_cleanly(sandbox)


def test_a_trailing_newline_from_the_environment(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    key = sandbox.api_key
    run = doctor(sandbox, tmp_path, env={"ASSEMBLYAI_API_KEY": key + "\n"}, secrets=(key,))
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", "malformed_credentials")
    assert "line break" in r["summary"] and "works" in r["summary"]


def test_empty_key_variable_is_malformed_not_missing(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    run = doctor(sandbox, tmp_path, env={"ASSEMBLYAI_API_KEY": ""})
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", "malformed_credentials")
    assert "set but empty" in r["summary"] and "not sent" in r["summary"]
    assert run.report["support"] is None  # nothing was opened
    assert not sandbox.find("http.request", authorization="raw")


def test_empty_key_option_is_not_sent(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    r = doctor(sandbox, tmp_path, "--api-key", "   ").result("token")
    assert (r["status"], r["cause"]) == ("fail", "malformed_credentials")
    assert "empty" in r["summary"] and r["evidence"]["credentials"]["api_key"]["sent"] == "not sent"


def test_a_token_passed_as_the_key_is_explained(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    token = mint(sandbox)
    run = doctor(sandbox, tmp_path, "--api-key", token, secrets=(token, sandbox.api_key))
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", "malformed_credentials")
    assert "does not look like an API key" in r["summary"] and "refused" in r["summary"]


def test_a_key_passed_as_the_token_is_explained(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    run = doctor(sandbox, tmp_path, "--token", sandbox.api_key, secrets=(sandbox.api_key,))
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", "malformed_credentials")
    assert "looks like an API key" in r["summary"]


def test_wrong_key_is_unauthorized_at_the_token_endpoint(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    wrong = secrets.token_hex(16)
    run = key_run(sandbox, tmp_path, wrong)
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", "unauthorized")
    assert "HTTP 401" in r["summary"] and r["fix"]["guide"] == "token_auth"
    assert run.report["support"] is None and not sandbox.find("ws.open", auth="api_key")


@pytest.mark.parametrize(("mode", "words"), [("close", "1008"), ("http", "HTTP 401")])
def test_an_invalid_token_is_unauthorized_in_both_documented_ways(
    sandbox_factory: SandboxFactory, tmp_path: Path, mode: str, words: str
) -> None:
    sb = sandbox_factory(auth_failure=mode)
    bogus = secrets.token_urlsafe(32)
    r = doctor(sb, tmp_path, "--token", bogus, secrets=(bogus,)).result("token")
    assert (r["status"], r["cause"]) == ("fail", "unauthorized")
    assert words in r["summary"] and "1006" in r["summary"]


def test_handshake_reject_says_browsers_see_1006(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory(faults={"handshake-reject": None})
    run = key_run(sb, tmp_path)
    assert run.result("wss")["status"] == "pass"  # 401 to an unauthenticated upgrade
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", "unauthorized")
    assert "HTTP 401" in r["summary"] and "1006" in r["summary"]
    assert r["evidence"]["sessions"][0]["failure"]["http_status"] == 401
    assert run.report["support"] is None  # the upgrade was refused: nothing opened


def test_unauthorized_after_upgrade_is_1008(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory(faults={"unauthorized-after-upgrade": None})
    run = key_run(sb, tmp_path)
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", "unauthorized")
    assert "UNAUTHORIZED" in r["summary"] and "1008" in r["summary"] and "1006" in r["summary"]
    closes = run.report["support"]["closes"]
    assert [(c["code"], c["reason"]) for c in closes] == [(1008, "UNAUTHORIZED")]


def test_token_expired_first_frame(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    sb = sandbox_factory(faults={"token-expired-frame": None})
    r = key_run(sb, tmp_path).result("token")
    assert (r["status"], r["cause"]) == ("fail", "token_expired")
    assert "unauthorized" in r["summary"] and "fresh temporary token" in " ".join(r["fix"]["steps"])


def test_forbidden_key(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    key = secrets.token_hex(16)
    sb = sandbox_factory(forbidden_keys=[key])
    sb.sandbox.api_keys.append(key)  # may mint, but has no Voice Agent access
    run = key_run(sb, tmp_path, key)
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", "forbidden"), r["summary"]


@pytest.mark.parametrize(
    ("fault", "cause", "words"),
    [
        ("at-capacity", "server_error", "server_error"),
        ("internal-error", "server_error", "INTERNAL_ERROR"),
        ("agent-init-failed", "no_session_ready", "agent_init_failed"),
    ],
)
def test_service_side_refusals(
    sandbox_factory: SandboxFactory, tmp_path: Path, fault: str, cause: str, words: str
) -> None:
    sb = sandbox_factory(faults={fault: None})
    run = key_run(sb, tmp_path)
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", cause)
    assert words in r["summary"] and r["fix"]["guide"] == "service_side"
    assert run.report["support"]["closes"], "the close goes to the support block"


def test_agent_timeout_is_no_session_ready_with_the_code(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory(faults={"agent-timeout": 0.3})
    r = key_run(sb, tmp_path).result("token")
    assert (r["status"], r["cause"]) == ("fail", "no_session_ready")
    assert "agent_timeout" in r["summary"] and "1011" in r["summary"]


def test_slow_ready_beyond_the_timeout_is_a_timeout(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory(faults={"slow-ready": 3.0})
    run = doctor(sb, tmp_path, "--api-key", sb.api_key, secrets=(sb.api_key,), timeout_s="0.5")
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", "timeout")
    assert "session.ready" in r["summary"] and "0.5 s" in r["summary"]


@pytest.mark.parametrize(
    ("fault", "cause"),
    [("token-rate-limited", "rate_limited"), ("token-server-error", "server_error")],
)
def test_token_endpoint_failures_still_try_the_key_session(
    sandbox_factory: SandboxFactory, tmp_path: Path, fault: str, cause: str
) -> None:
    sb = sandbox_factory(faults={fault: None})
    run = key_run(sb, tmp_path)
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", cause)
    assert r["evidence"]["sessions"][0]["session_ended_received"] is True
    assert len(r["evidence"]["sessions"]) == 1  # no token: no token sessions
    assert_ended_cleanly(sb)


@pytest.mark.parametrize(("form", "seconds"), [("seconds", 30.0), ("date", 45.0)])
def test_rate_limited_says_how_long_to_wait(
    sandbox_factory: SandboxFactory, tmp_path: Path, form: str, seconds: float
) -> None:
    """Retry-After in both forms (delta-seconds, HTTP-date) reaches the summary, the
    evidence and the fix."""
    sb = sandbox_factory(faults={"token-rate-limited": seconds}, retry_after_form=form)
    run = key_run(sb, tmp_path)
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", "rate_limited")
    assert f"HTTP 429, retry after {seconds:g} s" in r["summary"]
    mint_ev = r["evidence"]["mint"]
    assert (mint_ev["http_status"], mint_ev["retry_after_s"]) == (429, seconds)
    assert r["fix"]["guide"] == "rate_limit"
    steps = " ".join(r["fix"]["steps"])
    assert f"the service asks for {seconds:g} s (Retry-After)" in steps
    assert "exponential backoff" in steps
    assert run.proc.returncode == 1


def test_close_without_a_frame_after_a_good_mint_does_not_blame_the_key(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """protocol.md §2.2/§4.4: a refused credential shows up in browsers as 1006 with no
    frame; but the same key just minted a token (HTTP 200), so the key is not the cause
    (it used to be called "most likely the API key was refused")."""
    sb = sandbox_factory(faults={"close-without-frame": None})
    run = key_run(sb, tmp_path)
    assert run.result("wss")["status"] == "pass"  # the upgrade itself works
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", "no_session_ready"), r["summary"]
    summary = r["summary"]
    assert "no session.error, no close frame: 1006" in summary
    assert "most likely" not in summary and "refused" not in summary
    assert "just minted a token (HTTP 200)" in summary
    assert "a proxy or the service cut the connection" in summary
    assert r["fix"]["guide"] == "service_side"
    (session,) = r["evidence"]["sessions"]
    assert session["failure"]["close_frame"] is False and session["close_code"] == 1006
    assert "error_code" not in session["failure"]
    assert not [e for e in session["events"] if e["direction"] == "received"]
    # The token was minted; the key session was cut before ready, so nothing else ran.
    assert r["evidence"]["mint"]["http_status"] == 200
    assert sb.find("ws.drop") and not sb.find("session.ready")
    closes = run.report["support"]["closes"]
    assert [c["code"] for c in closes] == [1006]


def test_reused_token_accepted_is_evidence_not_a_warning_and_every_session_is_ended(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Contract v2: the field accepts reuse (field-facts §1); it is evidence, with the
    advice that holds either way, never a warning."""
    sb = sandbox_factory(token_policy="field")
    run = key_run(sb, tmp_path)
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("pass", None)
    assert r["evidence"]["token_reuse"] == "accepted"
    assert r["fix"]["guide"] == "token_lifetime"
    steps = " ".join(r["fix"]["steps"])
    assert "fresh token right before each connection" in steps and "session.end" in steps
    assert run.proc.returncode == 0
    assert_ended_cleanly(sb)
    assert len(conns_with(sb, "session.ready", "out")) == 3
    assert [s["ended_cleanly"] for s in support_sessions(run, "token")] == [True, True, True]


def test_no_session_ended_is_a_billing_warning(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory(faults={"no-session-ended": None})
    r = key_run(sb, tmp_path).result("token")
    assert (r["status"], r["cause"]) == ("warn", "no_session_ended")
    assert "grace window" in r["summary"] and r["fix"]["guide"] == "billing"


def test_no_credentials_is_a_skip_that_says_how(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    run = doctor(sandbox, tmp_path)
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("skip", "no_credentials")
    for how in ("--api-key", "ASSEMBLYAI_API_KEY", "--token"):
        assert how in r["summary"]
    assert run.proc.returncode == 0


# --- --token --------------------------------------------------------------------------------


def test_a_good_token_is_used_once_and_said_to_be_consumed(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    token = mint(sandbox)
    run = doctor(sandbox, tmp_path, "--token", token, secrets=(token, sandbox.api_key))
    r = run.result("token")
    assert r["status"] == "pass", r["summary"]
    assert "single use" in r["summary"] and "consumed" in r["summary"]
    assert r["evidence"]["credentials"]["token"]["source"] == "option --token"
    assert run.report["target"]["auth"] == "token" and "token" in run.report["redactions"]
    opened = sandbox.find("ws.open", auth="token")
    assert len(opened) == 1 and opened[0]["path"].endswith("token=****" + token[-4:])
    assert_ended_cleanly(sandbox)


def test_an_already_used_token_is_unauthorized(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    token = mint(sandbox)
    doctor(sandbox, tmp_path, "--token", token, secrets=(token,))
    r = doctor(sandbox, tmp_path, "--token", token, secrets=(token,)).result("token")
    assert (r["status"], r["cause"]) == ("fail", "unauthorized")
    assert "already used" in r["summary"]


@pytest.mark.parametrize("mode", ["frame", "close", "http"])
def test_an_expired_token_is_token_expired(
    sandbox_factory: SandboxFactory, tmp_path: Path, mode: str
) -> None:
    sb = sandbox_factory(expired_token=mode)
    token = mint(sb, expires_s=1)
    # Age the token in the sandbox's own store rather than sleeping past its window.
    sb.sandbox.store.tokens[token].minted_at -= 120
    r = doctor(sb, tmp_path, "--token", token, secrets=(token,)).result("token")
    # http: the 401's body says "Token expired" (it used to be called unauthorized)
    assert (r["status"], r["cause"]) == ("fail", "token_expired"), r["summary"]
    if mode == "http":
        assert "HTTP 401" in r["summary"] and "expired" in r["summary"]
    if mode == "frame":
        assert "session.error unauthorized" in r["summary"]


def test_key_and_token_both_checked_and_the_token_consumed(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    token = mint(sandbox)
    run = doctor(
        sandbox, tmp_path, "--api-key", sandbox.api_key, "--token", token,
        secrets=(token, sandbox.api_key),
    )  # fmt: skip
    r = run.result("token")
    assert r["status"] == "pass", r["summary"]
    assert "your token" in r["summary"] and "consumed" in r["summary"]
    labels = [s["connection"] for s in r["evidence"]["sessions"]]
    assert labels == ["API key", "minted token #1", "minted token #1, second use", "your --token"]
    assert_ended_cleanly(sandbox)
