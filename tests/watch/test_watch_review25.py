"""Regression tests for the s25 review of `agent-doctor watch` (a real watch process, the
sandbox upstream): who closed a connection, and what the report blames on the app."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from clirun import assert_valid_report
from watchparts import App, checks, problems, run, start_watch, stop_on_signal, watch_run

from doctor.sandbox.threaded import ThreadedSandbox


def _by_id(report: dict[str, Any], check_id: str) -> dict[str, Any]:
    found = [c for c in report["checks"] if c["id"] == check_id]
    assert found, [c["id"] for c in report["checks"]]
    return found[0]


def test_d1_ctrl_c_with_a_session_open_is_the_relays_close_not_the_apps(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    capture = tmp_path / "capture.jsonl"
    wp = start_watch(sandbox, "--json", "--capture", str(capture))

    async def app() -> tuple[int, str]:
        a = await App.open(wp.url, api_key=sandbox.api_key)
        await a.start()
        stopped = await asyncio.to_thread(stop_on_signal, wp)  # Ctrl-C, the session open
        await asyncio.wait_for(a.closed.wait(), 10)
        return stopped

    rc, out = run(app())
    report = assert_valid_report(json.loads(out))
    assert rc == 0, wp.stderr_text
    assert problems(report) == [], [(c["id"], c["summary"]) for c in problems(report)]
    billing = _by_id(report, "session-billing")
    assert billing["status"] == "pass" and "watch was stopped" in billing["summary"]
    relay = _by_id(report, "watch-relay")
    assert relay["evidence"]["sessions_open_at_stop"] == 1
    assert "1 session was still open when watch stopped" in relay["summary"]
    close = [json.loads(x) for x in capture.read_text().splitlines() if '"close"' in x][-1]
    assert close["by"] == "relay" and close["code"] == 1001


def test_d2_a_frame_the_relay_refuses_is_named_as_the_relays_close(
    sandbox: ThreadedSandbox,
) -> None:
    async def app(wp: Any) -> None:
        a = await App.open(wp.url, api_key=sandbox.api_key)
        await a.start()
        await a.send({"type": "input.audio", "audio": "A" * (17 * 1024 * 1024)})
        await asyncio.wait_for(a.closed.wait(), 20)
        assert a.ws.close_code == 1009

    report, _ = watch_run(sandbox, app)
    billing = _by_id(report, "session-billing")
    assert billing["status"] == "pass", billing["summary"]
    assert "relay closed the connection (1009" in billing["summary"]
    close = _by_id(report, "watch-close")
    assert close["status"] == "warn" and close["cause"] == "protocol_close"
    assert "the relay closed the connection with 1009 (message too big)" in close["summary"]
    assert "over the limit of 16777216" in close["summary"]
    assert close["evidence"]["closed_by"] == "relay"
    assert not any("app closed" in c["summary"] for c in problems(report))


def test_d3_the_service_closing_for_an_oversized_message_is_the_apps_protocol_fault(
    sandbox: ThreadedSandbox,
) -> None:
    async def app(wp: Any) -> None:
        a = await App.open(wp.url, api_key=sandbox.api_key)
        await a.start()
        await a.send({"type": "input.audio", "audio": "A" * (8 * 1024 * 1024)})
        await asyncio.wait_for(a.closed.wait(), 20)
        assert a.ws.close_code == 1009

    report, _ = watch_run(sandbox, app)
    found = checks(report, "protocol_close")
    assert found, [(c["id"], c["status"], c["summary"]) for c in report["checks"]]
    summary = found[0]["summary"]
    assert found[0]["status"] == "warn" and "1009 (message too big)" in summary
    assert "a message of" in summary and "over the limit of 4194304" in summary
    assert found[0]["fix"]["guide"] == "protocol_close"


async def _ask_token(url: str, key: str, **params: Any) -> int:
    import httpx

    async with httpx.AsyncClient(timeout=20) as client:
        answer = await client.get(url, params=params, headers={"Authorization": key})
    return answer.status_code


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_d4_token_failures_through_the_relay_are_in_the_report(
    sandbox: ThreadedSandbox,
) -> None:
    wp = start_watch(sandbox, "--json")
    status = run(_ask_token(wp.token_url, "sk_wrong_key_000000", expires_in_seconds=60))
    rc, out = stop_on_signal(wp)
    report = assert_valid_report(json.loads(out))
    token = _by_id(report, "watch-token")
    assert token["status"] == "fail" and token["cause"] == "unauthorized", token
    assert f"the app got HTTP {status}" in token["summary"]
    assert token["evidence"]["answers"][0]["app_status"] == status
    assert "sk_wrong_key_000000" not in out
    assert rc == 1
    relay = _by_id(report, "watch-relay")
    assert "still points at the service" not in relay["summary"]
    assert "asked it for 1 token" in relay["summary"]


def test_d4_an_unreachable_token_endpoint_is_named_not_hidden(sandbox: ThreadedSandbox) -> None:
    dead = f"http://127.0.0.1:{_free_port()}/v1/token"
    wp = start_watch(sandbox, "--json", "--token-url", dead)
    status = run(_ask_token(wp.token_url, sandbox.api_key, expires_in_seconds=60))
    assert status == 502
    rc, out = stop_on_signal(wp)
    report = assert_valid_report(json.loads(out))
    token = _by_id(report, "watch-token")
    assert token["status"] == "fail" and token["cause"] == "token_url_unreachable", token
    assert "the app got HTTP 502" in token["summary"] and rc == 1


def test_d4_a_good_token_request_passes(sandbox: ThreadedSandbox) -> None:
    wp = start_watch(sandbox, "--json")
    assert run(_ask_token(wp.token_url, sandbox.api_key, expires_in_seconds=60)) == 200
    _, out = stop_on_signal(wp)
    token = _by_id(assert_valid_report(json.loads(out)), "watch-token")
    assert token["status"] == "pass" and token["evidence"]["token_requests_failed"] == 0


def test_d5_a_ws_url_that_is_no_websocket_url_is_one_line_and_exit_2() -> None:
    import subprocess
    import sys

    for url, said in (
        ("notaurl", "is not a ws or wss URL (it has no scheme)"),
        ("ws://127.0.0.1:/v1/ws", "has no valid port"),
        ("http://127.0.0.1/v1/ws", "is not a ws or wss URL (its scheme is 'http')"),
        ("ws:///v1/ws", "names no host"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "doctor", "watch", "--for", "1", "--ws-url", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, (url, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and said in lines[0] and "--ws-url" in lines[0], lines
        assert "->" not in done.stderr  # the relay never started


def test_d5_the_url_check_never_echoes_credentials() -> None:
    from doctor.cli import url_problem

    for bad in ("http://user:s3cret@host/v1/ws", "wss://user:s3cret@[::1/v1/ws"):
        said = url_problem(bad, ("ws", "wss"))
        assert said is not None and "s3cret" not in said
    assert url_problem("wss://agents.assemblyai.com/v1/ws", ("ws", "wss")) is None
    assert url_problem("ws://127.0.0.1:8080/v1/ws", ("ws", "wss")) is None
    assert url_problem("wss://[::1]:8443/v1/ws?x=1", ("ws", "wss")) is None
