"""The `token` check against the live service as the field saw it (field-facts §1, §2,
§5, §16): the sandbox's default behaviour, over real sockets, through the real CLI; and
the pure judgement of the token endpoint's field answers."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from clirun import assert_valid_report, cli_env, run_cli
from tokenrun import doctor, mint

from doctor.net.mint_outcome import mint_outcome
from doctor.result import Status
from doctor.sandbox.threaded import ThreadedSandbox

SandboxFactory = Callable[..., ThreadedSandbox]

# --- the token endpoint's answers (pure) -----------------------------------------------------


@pytest.mark.parametrize(
    "body", [{"detail": "Invalid API key"}, {"detail": "invalid api key."}], ids=["as seen", "case"]
)
def test_404_invalid_api_key_is_a_refused_key(body: dict[str, Any]) -> None:
    out = mint_outcome(404, False, None, 60, str(body["detail"]), body)
    assert out is not None and (out.cause, out.status, out.guide) == (
        "unauthorized", Status.FAIL, "token_auth",
    )  # fmt: skip
    assert "HTTP 404" in out.summary and "Invalid API key" in out.summary


@pytest.mark.parametrize(
    ("body", "seen"),
    [
        ("<html><head><title>404 Not Found</title></head></html>", "an HTML page titled"),
        ({"detail": "Not Found"}, 'JSON {"detail": "Not Found"}'),
        ({"error": "no route"}, 'JSON {"error": "no route"}'),
        ("", "an empty body"),
    ],
    ids=["html", "fastapi not found", "other json", "empty"],
)
def test_any_other_404_is_still_the_wrong_url_and_says_what_came(body: Any, seen: str) -> None:
    out = mint_outcome(404, False, None, 60, None, body)
    assert out is not None and (out.cause, out.guide) == ("bad_request", "token_request")
    assert "no token endpoint at this URL: HTTP 404 with " + seen in out.summary


def test_422_on_the_authorization_header_is_no_credentials() -> None:
    missing = {"type": "missing", "loc": ["header", "authorization"], "msg": "Field required"}
    body = {"detail": [missing]}
    out = mint_outcome(422, False, None, 60, str(body["detail"]), body)
    assert out is not None and (out.cause, out.guide) == ("no_credentials", "token_auth")
    assert "HTTP 422" in out.summary


def test_422_on_a_query_parameter_names_it_and_its_bound() -> None:
    body = {
        "detail": [
            {"type": "greater_than_equal", "loc": ["query", "max_session_duration_seconds"],
             "msg": "Input should be greater than or equal to 60", "input": "30",
             "ctx": {"ge": 60}},
        ]
    }  # fmt: skip
    out = mint_outcome(422, False, None, 60, None, body)
    assert out is not None and (out.cause, out.guide) == ("bad_request", "token_request")
    assert (
        "`max_session_duration_seconds` (Input should be greater than or equal to 60)"
        in out.summary
    )


# --- the check against the field's service ----------------------------------------------------


def key_run(sb: ThreadedSandbox, tmp_path: Path, key: str, *extra: str) -> Any:
    return doctor(sb, tmp_path, "--api-key", key, *extra, secrets=(key, sb.api_key))


def test_a_wrong_key_is_unauthorized_and_the_check_says_the_404(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    r = key_run(sandbox, tmp_path, "0123456789abcdef0123456789abcdef").result("token")
    assert (r["status"], r["cause"]) == ("fail", "unauthorized")
    assert 'HTTP 404 {"detail": "Invalid API key"}' in r["summary"]
    assert r["fix"]["guide"] == "token_auth"
    assert r["evidence"]["mint"]["body"] == {"detail": "Invalid API key"}


def test_a_good_key_passes_with_reuse_and_the_cap_as_evidence(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    r = key_run(sandbox, tmp_path, sandbox.api_key).result("token")
    assert (r["status"], r["cause"]) == ("pass", None)
    assert r["evidence"]["token_reuse"] == "accepted"
    assert r["evidence"]["session_cap"]["max_session_duration_seconds_asked"] == 60
    assert "the same token opened a second session" in r["summary"]
    assert r["fix"]["guide"] == "token_lifetime"  # the advice, on a pass
    steps = " ".join(r["fix"]["steps"])
    assert "own session timer" in steps and "session.end" in steps


def test_a_key_of_unusual_shape_that_the_service_accepts_passes(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    key = "sk_live_" + "Z" * 40  # not 32 hex characters, and still a working key
    sb = sandbox_factory(api_keys=[key])
    r = key_run(sb, tmp_path, key).result("token")
    assert (r["status"], r["cause"]) == ("pass", None), r["summary"]
    findings = r["evidence"]["credentials"]["api_key"]["findings"]
    assert [f["code"] for f in findings] == ["looks_like_token"]  # kept as evidence


def test_the_shape_hint_still_explains_a_refusal(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    r = key_run(sandbox, tmp_path, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl")
    t = r.result("token")
    assert (t["status"], t["cause"]) == ("fail", "malformed_credentials")
    assert "unauthorized" in t["summary"]


@pytest.mark.parametrize("how", ["bad token", "token used after its window"])
def test_websocket_refusal_after_the_upgrade_is_unauthorized(
    sandbox_factory: SandboxFactory, tmp_path: Path, how: str
) -> None:
    """field-facts §2: the upgrade succeeds, then `unauthorized` and close 1008."""
    offset = [0.0]
    sb = sandbox_factory(clock=lambda: time.monotonic() + offset[0])  # moved, not slept
    if how == "bad token":
        token = "not-a-token-" + "x" * 40
    else:
        token = mint(sb, expires_s=1)
        offset[0] += 5
    r = doctor(sb, tmp_path, "--token", token, secrets=(token,)).result("token")
    assert (r["status"], r["cause"]) == ("fail", "unauthorized"), r["summary"]
    assert "session.error unauthorized (Authentication failed), then close 1008" in r["summary"]
    assert "1006" not in r["summary"]  # a browser sees open, the frame, then 1008


# --- a 403 from the token endpoint (issue 13's "Done when") -----------------------------------


@pytest.mark.parametrize(
    "body",
    [{"detail": "Forbidden"}, {"error": "Forbidden"}, "Forbidden"],
    ids=["detail", "error", "text"],
)
def test_403_from_the_token_endpoint_is_a_refused_key_and_says_it_was_403(body: Any) -> None:
    out = mint_outcome(403, False, None, 60, "Forbidden", body)
    assert out is not None and (out.cause, out.status, out.guide) == (
        "unauthorized", Status.FAIL, "token_auth",
    )  # fmt: skip
    assert "HTTP 403" in out.summary and "403" in out.detail
    assert "without Voice Agent API access" in out.summary


def test_the_token_check_calls_a_403_unauthorized_with_the_status_and_both_fixes(
    tmp_path: Path,
) -> None:
    """Through the real CLI: a token endpoint that answers 403 (a real HTTP server on
    loopback); the summary names HTTP 403, the evidence keeps it, the fix covers a wrong
    key and a key without Voice Agent access."""

    class Refuse(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps({"detail": "Forbidden"}).encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    key = secrets.token_hex(16)
    try:
        token_url = f"http://127.0.0.1:{server.server_address[1]}/v1/token"
        proc = run_cli(
            "check", "token", "--skip", "wss", "--ws-url", "ws://127.0.0.1:9/v1/ws",
            "--token-url", token_url, "--api-key", key, "--timeout", "5", "--json",
            env=cli_env(),
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert key not in proc.stdout + proc.stderr
    report = assert_valid_report(json.loads(proc.stdout))
    (r,) = [c for c in report["checks"] if c["id"] == "token"]
    assert (r["status"], r["cause"]) == ("fail", "unauthorized"), r["summary"]
    assert "HTTP 403" in r["summary"] and "Forbidden" in r["summary"]
    assert r["evidence"]["mint"]["http_status"] == 403
    assert r["fix"]["guide"] == "token_auth"
    steps = " ".join(r["fix"]["steps"])
    assert "Check the key in your dashboard" in steps and "Voice Agent API access" in steps
    assert r["evidence"]["sessions"] == []  # the key session would be refused the same way
    assert proc.returncode == 1
