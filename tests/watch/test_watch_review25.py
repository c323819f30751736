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
