"""`agent-doctor browser --no-open` as a subprocess, and a browser that clicks Start.

The CLI prints the page's URL on stderr (stdout keeps the JSON report); the test points a
real browser at it, clicks Start (a real click: the user gesture audio needs), and reads
both the page's answer and the CLI's report.
"""

from __future__ import annotations

import json
import re
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from browsers import Driver

URL_LINE = re.compile(r"open (http://127\.0\.0\.1:\d+/#nonce=\S+) in the browser")


@dataclass
class BrowserCli:
    proc: subprocess.Popen[str]
    url: str
    stderr_head: list[str] = field(default_factory=list)

    def finish(self, timeout_s: float = 90) -> tuple[dict[str, Any], str, int]:
        """The JSON report, stderr and exit code once the CLI ends."""
        try:
            out, err = self.proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError(f"the CLI did not end: {err[-2000:]}") from None
        stderr = "\n".join(self.stderr_head) + "\n" + err
        try:
            report = json.loads(out)
        except ValueError:
            raise AssertionError(f"no JSON report: {out[-500:]!r} {stderr[-2000:]}") from None
        return report, stderr, self.proc.returncode


def start_cli(args: list[str], env: dict[str, str], timeout_s: float = 30) -> BrowserCli:
    proc = subprocess.Popen(
        [sys.executable, "-m", "doctor", "browser", "--no-open", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    head: list[str] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if not sel.select(max(0.0, deadline - time.monotonic())):
                continue
            line = proc.stderr.readline()
            if not line:
                break
            head.append(line.rstrip("\n"))
            m = URL_LINE.search(line)
            if m:
                return BrowserCli(proc, m.group(1), head)
    finally:
        sel.close()
    proc.kill()
    proc.communicate()
    raise AssertionError(f"no URL line from the CLI: {head}")


def click_start(driver: Driver, url: str, timeout_s: float = 60) -> dict[str, Any]:
    """Open the page, click Start, and wait for the verdicts the page shows."""
    driver.goto(url)
    driver.wait_for("window.__doctorReady === true", 60)  # only bounds a failure
    driver.click("#start")
    try:
        answer: dict[str, Any] = driver.wait_for("window.__doctorDone", timeout_s)
    except Exception as exc:  # say where the page stood, not only that it timed out
        raise AssertionError(
            f"the page did not finish: {exc!r}; page: {page_state(driver)}"
        ) from exc
    return answer


def page_state(driver: Driver) -> str:
    try:
        return str(driver.evaluate("document.body.innerText.slice(0, 3000)"))
    except Exception as exc:
        return f"(unreadable: {exc!r})"


def checks_by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in report["checks"]}


def run_case(
    launch: Any, cli_args: list[str], env: dict[str, str], url: Any = None, timeout_s: float = 200
) -> tuple[dict[str, Any], dict[str, Any], str, int]:
    """The whole round: CLI up, browser opens the page and clicks Start, CLI report back.
    `launch()` returns a browser context manager; `url(u)` may rewrite the page's URL.
    `timeout_s` bounds only a failing run: at load 10-14 on 2 cores a Firefox page that
    worked was still analysing its echo recording when 90 s ran out."""
    cli = start_cli([*cli_args, "--timeout", str(timeout_s)], env)
    try:
        with launch() as driver:
            answer = click_start(driver, url(cli.url) if url else cli.url, timeout_s)
    except BaseException:
        cli.proc.kill()
        cli.proc.communicate()
        raise
    report, stderr, rc = cli.finish(timeout_s)
    return report, answer, stderr, rc


Case = tuple[dict[str, Any], dict[str, Any], str, int]


def run_until(
    launch: Any, cli_args: list[str], env: dict[str, str], shows: Any, attempts: int
) -> tuple[Case, list[Any]]:
    """`run_case` again until `shows(report)` holds, at most `attempts` times: for a browser's
    own echo canceller, which on this machine fails to converge in a fraction of runs (see
    the callers), where the test's subject is what the doctor makes of a run that converged.
    Returns the last case and, per attempt, the browser-echo runs' verdicts and ERLs."""
    seen: list[Any] = []
    for _ in range(attempts):
        case = run_case(launch, cli_args, env)
        runs = checks_by_id(case[0])["browser-echo"]["evidence"]["runs"]
        seen.append([(r.get("context_rate_hz"), r.get("verdict"), r.get("erl_db")) for r in runs])
        if shows(case[0]):
            break
    return case, seen


def sandbox_args(sb: Any) -> list[str]:
    return ["--ws-url", sb.ws_url, "--token-url", sb.token_url]
