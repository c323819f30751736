"""Run `agent-doctor check token|resume` against a sandbox and check what leaks and what the
sandbox saw (tests/resume imports it too, see its conftest)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clirun import assert_valid_report, cli_env, run_cli

from doctor.net.agent_api import mint_token
from doctor.sandbox.threaded import ThreadedSandbox


@dataclass
class Run:
    proc: subprocess.CompletedProcess[str]
    report: dict[str, Any]
    report_file_text: str

    def result(self, check_id: str) -> dict[str, Any]:
        found = [c for c in self.report["checks"] if c["id"] == check_id]
        assert found, [c["id"] for c in self.report["checks"]]
        return found[0]

    @property
    def everything(self) -> str:
        return self.proc.stdout + self.proc.stderr + self.report_file_text


def doctor(
    sb: ThreadedSandbox,
    tmp_path: Path,
    *args: str,
    check: str = "token",
    env: dict[str, str] | None = None,
    secrets: tuple[str, ...] = (),
    timeout_s: str = "5",
) -> Run:
    """`agent-doctor check CHECK --json --report FILE` against `sb`; asserts the exit code
    matches the statuses, the report validates, and no secret is anywhere."""
    report_path = tmp_path / f"report-{len(list(tmp_path.glob('report-*')))}.json"
    proc = run_cli(
        "check",
        check,
        "--ws-url",
        sb.ws_url,
        "--token-url",
        sb.token_url,
        "--ca-bundle",
        str(sb.ca_file),
        "--timeout",
        timeout_s,
        "--json",
        "--report",
        str(report_path),
        *args,
        env=cli_env(env),
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    report = assert_valid_report(json.loads(proc.stdout))
    text = report_path.read_text(encoding="utf-8")
    assert json.loads(text) == report
    bad = any(c["status"] in ("fail", "error") for c in report["checks"])
    assert proc.returncode == (1 if bad else 0)
    run = Run(proc, report, text)
    # Every token the sandbox ever handed out, the check's own included.
    minted = tuple(sb.sandbox.store.tokens)
    assert_no_secrets(run, (*secrets, *minted))
    return run


def assert_no_secrets(run: Run, secrets: tuple[str, ...]) -> None:
    """No given secret in stdout, stderr or the report file; every `token=` masked."""
    for secret in secrets:
        core = secret.strip().strip("'\"").strip()
        if core.lower().startswith("bearer "):
            core = core[7:].strip()
        assert core and core not in run.everything, "a secret leaked"
    for match in re.finditer(r"token=([^&\s\"']*)", run.everything):
        assert match.group(1).startswith("****"), f"unmasked token in {match.group(0)[:12]}..."


def mint(sb: ThreadedSandbox, expires_s: int = 60, key: str | None = None) -> str:
    """A token minted by the test itself (the sandbox's log masks the ones it hands out)."""
    result = asyncio.run(
        mint_token(sb.token_url, key or sb.api_key, expires_s, 60, ca_bundle=sb.ca_file)
    )
    assert result.ok and result.token
    return result.token


def conns_with(sb: ThreadedSandbox, type_: str, direction: str) -> list[int]:
    return sorted({e["conn"] for e in sb.find(type_, direction=direction) if e["conn"]})


def assert_ended_cleanly(sb: ThreadedSandbox, conns: list[int] | None = None) -> None:
    """For every connection that got a session.ready (or the given ones): session.end came
    in before the server closed the socket."""
    conns = conns if conns is not None else conns_with(sb, "session.ready", "out")
    assert conns, "no session was opened"
    for conn in conns:
        sb.wait_for("ws.closed", conn=conn)
        events = [e for e in sb.events if e.get("conn") == conn]
        kinds = [(e["direction"], e["type"]) for e in events]
        assert ("in", "session.end") in kinds, f"conn {conn}: no session.end: {kinds}"
        end = kinds.index(("in", "session.end"))
        closed = kinds.index(("server", "ws.closed"))
        assert end < closed, f"conn {conn}: closed before session.end: {kinds}"


def support_sessions(run: Run, check_id: str) -> list[dict[str, Any]]:
    support = run.report["support"]
    assert support is not None
    return [s for s in support["sessions"] if s["check"] == check_id]
