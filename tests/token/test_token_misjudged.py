"""The `token` check must not blame a key that works: a stale `token=` pasted into
--ws-url, and an abrupt cut after the same key minted a token (real sandbox, real TLS)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenrun import doctor

from doctor.net.auth_outcome import Failure, session_outcome
from doctor.sandbox.pytest_plugin import SandboxFactory

pytestmark = pytest.mark.sandbox_behaviour("documented")


def test_a_stale_token_in_the_ws_url_is_left_out_of_the_key_session_and_named(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """The sandbox (like the service) judges a `token=` before the key header: sent with
    the key it refused a good key as "the service refused the API key"."""
    sb = sandbox_factory()
    stale = "stale" + "0" * 40
    url = f"{sb.ws_url}?token={stale}&x=1"
    run = doctor(sb, tmp_path, "--api-key", sb.api_key, "--ws-url", url, secrets=(sb.api_key,))
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("pass", None), r["summary"]
    assert "--ws-url carries a token query parameter" in r["summary"]
    assert r["evidence"]["ws_url_token"].startswith("ignored")
    key_session = r["evidence"]["sessions"][0]
    assert key_session["auth"] == "api_key" and key_session["session_id"]


def test_a_key_refused_by_the_websocket_after_minting_says_the_mint_worked() -> None:
    """An explicit refusal stays `unauthorized`, but names the good mint and where to look."""
    f = Failure("session_error", "ready", error_code="unauthorized", close_code=1008)
    o = session_outcome(f, "api_key", key_minted=True)
    assert o.cause == "unauthorized"
    assert "just minted a token (HTTP 200)" in o.summary and "--ws-url" in o.summary
    assert "just minted" not in session_outcome(f, "api_key").summary


def test_a_401_whose_body_says_expired_is_token_expired_for_a_token_only() -> None:
    f = Failure("http_status", "connect", http_status=401, body='{"error": "Token expired"}')
    assert session_outcome(f, "token").cause == "token_expired"
    assert session_outcome(f, "api_key").cause == "unauthorized"
    plain = Failure("http_status", "connect", http_status=401, body="Invalid token")
    assert session_outcome(plain, "token").cause == "unauthorized"


def test_verbose_text_shows_close_codes_as_numbers(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """websockets hands a known close code over as a `CloseCode` enum; -v printed
    `close_code: <CloseCode.ABNORMAL_CLOSURE: 1006>`."""
    from clirun import cli_env, run_cli

    sb = sandbox_factory(faults={"close-without-frame": None})
    proc = run_cli(
        "check", "token", "--ws-url", sb.ws_url, "--token-url", sb.token_url,
        "--ca-bundle", str(sb.ca_file), "--api-key", sb.api_key, "--timeout", "5", "-v",
        env=cli_env(),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "1006" in proc.stdout
    assert "CloseCode" not in proc.stdout + proc.stderr
