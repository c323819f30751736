"""End to end: a real websockets client talks to the sandbox over a real socket and logs
what it sent and received, the way apps log (JSON lines, `received_at`, `direction`);
`agent-doctor analyze` then reads that log."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from clirun import assert_valid_report, run_cli
from websockets.asyncio.client import connect

from doctor.sandbox.audio import synth_voice
from doctor.sandbox.threaded import ThreadedSandbox

Factory = Callable[..., ThreadedSandbox]


class LoggedClient:
    def __init__(self, log: Path) -> None:
        self.fh = log.open("w", encoding="utf-8")

    def write(self, direction: str, msg: dict[str, Any]) -> None:
        entry = {"received_at": time.time(), "direction": direction, "event": msg}
        self.fh.write(json.dumps(entry) + "\n")

    async def send(self, ws: Any, msg: dict[str, Any]) -> None:
        self.write("sent", msg)
        await ws.send(json.dumps(msg))

    async def recv_until(self, ws: Any, type_: str, timeout: float = 20.0) -> dict[str, Any]:
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            self.write("received", msg)
            if msg.get("type") == type_:
                return dict(msg)


async def conversation(sb: ThreadedSandbox, log: Path, *, end: bool) -> None:
    c = LoggedClient(log)
    speech = (
        np.concatenate(
            [np.zeros(2400, np.int16), synth_voice(0.8, seed=3), np.zeros(36000, np.int16)]
        )
        .astype("<i2")
        .tobytes()
    )
    async with connect(
        sb.ws_url, additional_headers={"Authorization": sb.api_key}, proxy=None, open_timeout=10
    ) as ws:
        c.fh.write(
            json.dumps({"received_at": time.time(), "type": "open", "url": sb.ws_url}) + "\n"
        )
        await c.send(
            ws,
            {
                "type": "session.update",
                "session": {"system_prompt": "Be brief.", "greeting": "Hello!"},
            },
        )
        await c.recv_until(ws, "session.ready")
        await c.recv_until(ws, "reply.done")  # the greeting
        step = 2400  # 50 ms of PCM16 at 24 kHz, sent at real-time pace
        for i in range(0, len(speech), step):
            await c.send(
                ws,
                {"type": "input.audio", "audio": base64.b64encode(speech[i : i + step]).decode()},
            )
            await asyncio.sleep(0.05)
        await c.recv_until(ws, "reply.done")
        if end:
            await c.send(ws, {"type": "session.end"})
            await c.recv_until(ws, "session.ended")
        await ws.close()
        code, reason = ws.close_code, ws.close_reason
    c.fh.write(
        json.dumps({"received_at": time.time(), "type": "close", "code": code, "reason": reason})
        + "\n"
    )
    c.fh.close()


def analyze(log: Path, key: str) -> dict[str, Any]:
    p = run_cli("analyze", str(log), "--json")
    assert p.returncode in (0, 1), p.stderr
    assert key not in p.stdout + p.stderr + log.read_text()
    return assert_valid_report(json.loads(p.stdout))


def test_well_behaved_client_gets_no_warning(sandbox_factory: Factory, tmp_path: Path) -> None:
    sb = sandbox_factory(reply_s=0.6)
    log = tmp_path / "app.jsonl"
    asyncio.run(asyncio.wait_for(conversation(sb, log, end=True), 60))
    report = analyze(log, sb.api_key)
    checks = {c["id"]: c for c in report["checks"]}
    bad = {k: c["summary"] for k, c in checks.items() if c["status"] in ("warn", "fail")}
    assert bad == {}
    assert checks["session-latency"]["status"] == "pass"  # audible start from reply.audio
    assert checks["session-audio"]["evidence"]["chunks"] > 30
    assert report["sessions"][0]["session_id"].startswith("sess_")


def test_client_that_skips_session_end(sandbox_factory: Factory, tmp_path: Path) -> None:
    sb = sandbox_factory(reply_s=0.6)
    log = tmp_path / "app.jsonl"
    asyncio.run(asyncio.wait_for(conversation(sb, log, end=False), 60))
    checks = {c["id"]: c for c in analyze(log, sb.api_key)["checks"]}
    assert checks["session-billing"]["cause"] == "no_session_end"
