"""`agent-doctor browser` and `agent-doctor all --browser`: the thin shell around the page.

Serves the page, opens it, waits for the page's facts, judges them (verdicts, echo core,
the CLI's own handshake for a 1006), and hands `browser-*` results and
`environment.browser` to the normal report.
"""

from __future__ import annotations

import asyncio
import sys
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeGuard

import click

from doctor.browser.launch import Launched, LaunchFailure
from doctor.browser.launch import start as start_browser
from doctor.browser.options import PAGE_WAIT_S, browser_options
from doctor.cli import report_options, service_options_with
from doctor.context import Context, SessionRecord
from doctor.result import Result

NETWORK_TIMEOUT_S = 10.0
TOKEN_WINDOW_S = 60
WSS_PAGE_TIMEOUT_MS = 8000


@dataclass
class PageRun:
    """One page session's state on the CLI side; the token never leaves it but to the page."""

    ctx: Context
    token: str | None = field(default=None, repr=False)
    token_error: str | None = None
    token_problem: Result | None = None  # the token core's verdict on a failed mint
    outcome: asyncio.Future[tuple[list[Result], dict[str, Any] | None]] | None = None

    async def session(self) -> dict[str, Any]:
        """A fresh temporary token for the page's WebSocket, minted here with the key."""
        ctx = self.ctx
        if self.token is None and self.token_error is None:
            if ctx.token is not None:
                self.token = ctx.token.value
            elif ctx.api_key is not None:
                await self._mint(ctx)
            else:
                self.token_error = "no API key (set ASSEMBLYAI_API_KEY) and no --token"
        return {
            "ws_url": ctx.ws_url,
            "token": self.token,
            "token_error": self.token_error,
            "timeout_ms": int(min(ctx.timeout * 1000, WSS_PAGE_TIMEOUT_MS)),
        }

    async def _mint(self, ctx: Context) -> None:

        from doctor.net.agent_api import AgentApiError, mint_token
        from doctor.net.auth_outcome import Failure
        from doctor.net.mint_outcome import mint_unreachable, request_for
        from doctor.net.sessions import Sessions

        assert ctx.api_key is not None
        try:
            got = await mint_token(
                ctx.token_url,
                ctx.api_key.value,
                TOKEN_WINDOW_S,
                proxy=ctx.proxy,
                ca_bundle=ctx.ca_bundle,
                timeout=ctx.timeout,
            )
        except AgentApiError as err:
            self.token_error = ctx.redactor.scrub(f"token request failed: {err}")
            failed = mint_unreachable(Failure.of(err), ctx.token_url)
            self._token_failed(failed, {"failure": err.facts()})
            return
        if got.ok and got.token:
            ctx.add_secret("token", got.token)
            self.token = got.token
        else:
            self.token_error = ctx.redactor.scrub(
                f"token endpoint answered HTTP {got.status}: {got.error or got.body}"
            )[:300]
            outcome = Sessions.judge_mint(got, TOKEN_WINDOW_S, request_for(ctx.token_url))
            if outcome is not None:
                self._token_failed(outcome, {"http_status": got.status, "body": got.body})

    def _token_failed(self, outcome: Any, mint: dict[str, Any]) -> None:
        """A key was given and minting failed: the token core's cause and fix, not a skip."""
        from doctor import guide
        from doctor.net.sessions import fix_values
        from doctor.result import Status, problem

        ctx = self.ctx
        status = outcome.status if outcome.status in (Status.WARN, Status.FAIL) else Status.FAIL
        fix = guide.fix(outcome.guide, detail=outcome.detail, **fix_values(ctx, outcome.endpoint))
        summary = f"no temporary token for the page: {outcome.summary}"
        evidence = ctx.redactor.scrub_obj({"token_url": ctx.token_url, "mint": mint})
        self.token_problem = problem(status, outcome.cause, summary, evidence, fix)

    async def result(self, facts: dict[str, Any]) -> dict[str, Any]:
        """Judge what the page measured; the page shows the verdicts it gets back. Judging
        that raises ends the wait at once with an `error` result, never at --timeout."""
        from doctor.browser.verdicts import judging_failed_result

        env: dict[str, Any] | None
        try:
            results, env = await self._judge(facts)
        except Exception as exc:
            results, env = [judging_failed_result(exc)], None
        if self.outcome is not None and not self.outcome.done():
            self.outcome.set_result((results, env))
        checks = [self.ctx.redactor.scrub_obj(r.to_dict()) for r in results]
        return {"checks": checks}

    async def _judge(self, facts: dict[str, Any]) -> tuple[list[Result], dict[str, Any]]:
        from doctor.browser.echo import analyse_run, echo_verdict
        from doctor.browser.refine import repeat_handshake
        from doctor.browser.verdicts import judge
        from doctor.runner import run_blocking

        runs = [r for r in facts.get("echo") or [] if isinstance(r, dict)][:2]
        analysed = [await run_blocking(analyse_run, r) for r in runs]
        echo, round_trip = echo_verdict(analysed)
        refined = None
        if self.token and _closed_before_open(facts):
            refined = await repeat_handshake(self.ctx, self.token)
        results, info = judge(facts, echo, round_trip, refined, self.token_problem)
        self._record_session(facts)
        env = info.as_dict()
        description = str(facts.get("description") or "").strip()[:2000]
        if description:
            env["problem_description"] = description
        return results, env

    def _record_session(self, facts: dict[str, Any]) -> None:
        wss = facts.get("wss")
        if not isinstance(wss, dict) or not wss.get("events"):
            return
        events = [e for e in wss["events"] if isinstance(e, dict)]
        close = next((e for e in events if e.get("type") == "close"), {})
        ready = next((e for e in events if e.get("message_type") == "session.ready"), {})
        times = [e.get("t_ms") for e in events]
        last = max((t for t in times if _number(t)), default=0)
        self.ctx.record_session(
            SessionRecord(
                check="browser-wss",
                region=self.ctx.region,
                session_id=ready.get("session_id") or None,
                started_at=_page_time(facts.get("started_at")),
                duration_s=float(last) / 1000,
                close_code=close.get("code") if isinstance(close.get("code"), int) else None,
                close_reason=close.get("reason"),
                ended_cleanly=close.get("was_clean"),
                auth="token",
            )
        )


def _page_time(text: Any) -> datetime:
    """When the page started (its own clock, ISO 8601); now if it sent nothing usable."""
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return datetime.now(timezone.utc)


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _closed_before_open(facts: dict[str, Any]) -> bool:
    wss = facts.get("wss")
    if not isinstance(wss, dict):
        return False
    types = [e.get("type") for e in wss.get("events") or [] if isinstance(e, dict)]
    return "open" not in types and ("close" in types or "error" in types)


def _probe(rate_hz: int) -> bytes:
    from doctor.browser.echo import probe_bytes

    return probe_bytes(rate_hz)


def _open_default(url: str) -> bool:
    """The user's default browser; False when Python's `webbrowser` found none to run."""
    try:
        return bool(webbrowser.open(url))
    except Exception:
        return False


@dataclass
class _Opener:
    """How the page was opened, for an early end or the timeout's detail."""

    ctx: Context
    outcome: asyncio.Future[tuple[list[Result], dict[str, Any] | None]]
    page_loaded: Callable[[], bool]  # whether a browser fetched the page by now
    note: str | None = None  # what the launch did, when no browser fetched the page
    launched: Launched | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def open(self, url: str, no_open: bool, browser_cmd: str | None) -> None:
        if no_open:
            self.note = "--no-open: the address was only printed"
        elif browser_cmd:
            got = start_browser(browser_cmd, url)
            if isinstance(got, LaunchFailure):
                self._fail(got)
            else:
                self.launched = got
                self.tasks.append(asyncio.create_task(self._watch(got)))
        else:
            self.tasks.append(asyncio.create_task(self._default(url)))

    async def _default(self, url: str) -> None:
        from doctor.runner import run_blocking

        if not await run_blocking(_open_default, url):
            self.note = "no default browser could be started"
            click.echo(
                "agent-doctor: could not start a default browser; open the address above by hand",
                err=True,
            )

    async def _watch(self, launched: Launched) -> None:
        """A launcher that exits 0 handed the page over (keep waiting); one that exits
        non-zero before any browser fetched the page ends the wait now, and so does a
        browser killed by a signal (a crash) after it opened the page: a launcher that
        hands off exits, it is not killed."""
        code = await launched.exit_code()
        if self.outcome.done():
            return
        loaded = self.page_loaded()
        if loaded and code >= 0:
            return  # a browser has the page: a launcher's exit code is no verdict
        if code == 0:
            self.note = f"{launched.command!r} exited 0 but no browser fetched the page"
            return
        self._fail(launched.failure(code, after_page=loaded))

    def _fail(self, failure: LaunchFailure) -> None:
        from doctor.browser.verdicts import browser_start_result

        detail = self.ctx.redactor.scrub(failure.detail)
        click.echo(f"agent-doctor: {detail}", err=True)
        if self.outcome.done():
            return
        evidence = self.ctx.redactor.scrub_obj(
            {
                "command": failure.command,
                "error": failure.error,
                "exit_code": failure.exit_code,
                "stderr_tail": failure.stderr_tail,
            }
        )
        result = browser_start_result(detail, evidence, failure.error is not None)
        self.outcome.set_result(([result], None))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.launched is not None:
            self.launched.stderr.close()


async def run_page(
    ctx: Context, wait_s: float, no_open: bool, browser_cmd: str | None
) -> tuple[list[Result], dict[str, Any] | None]:
    """Serve the page and wait up to `wait_s` for its results, or less if the browser
    command fails before the page is fetched."""
    from doctor.browser.server import PageServer
    from doctor.browser.verdicts import page_timeout_result

    run = PageRun(ctx)
    run.outcome = asyncio.get_running_loop().create_future()
    server = await PageServer(run.session, _probe, run.result).start()
    opener = _Opener(ctx, run.outcome, lambda: server.page_loaded)
    click.echo(
        f"agent-doctor: open {server.url} in the browser you use for your app and click "
        f"Start (waiting up to {wait_s:g} s)",
        err=True,
    )
    try:
        await opener.open(server.url, no_open, browser_cmd)
        return await asyncio.wait_for(asyncio.shield(run.outcome), wait_s)
    except asyncio.TimeoutError:
        where = f"; it last said: {server.last_step}" if server.last_step else ""
        click.echo(f"agent-doctor: the page sent no results within {wait_s:g} s{where}", err=True)
        loaded = server.page_loaded
        return [page_timeout_result(wait_s, server.last_step, loaded, opener.note)], None
    finally:
        await opener.close()
        await server.stop()


def run_after_checks(
    ctx: Context, params: dict[str, Any]
) -> tuple[list[Result], dict[str, Any] | None]:
    """For `all --browser`: the page, after the Python checks."""
    return asyncio.run(
        run_page(
            ctx,
            float(params.get("browser_timeout") or PAGE_WAIT_S),
            bool(params.get("no_open")),
            params.get("browser_cmd"),
        )
    )


async def _page_and_wss(
    ctx: Context, wait_s: float, no_open: bool, browser_cmd: str | None
) -> tuple[list[Result], list[Result], dict[str, Any] | None]:
    from doctor.registry import load_checks
    from doctor.runner import run_checks

    specs = load_checks().select(["wss"])
    own, (page, env) = await asyncio.gather(
        run_checks(specs, ctx), run_page(ctx, wait_s, no_open, browser_cmd)
    )
    return own, page, env


def browser_main(params: dict[str, Any]) -> None:
    """`agent-doctor browser`: the page's checks plus the CLI's own `wss`, in one report."""
    from doctor.cli import build_context, check_report_path, emit_report
    from doctor.report.build import build_report, exit_code

    check_report_path(params.get("report_path"))
    wait_s = float(params["timeout"])
    params = {**params, "timeout": min(wait_s, NETWORK_TIMEOUT_S)}
    ctx = build_context(params)
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    own, page, env = asyncio.run(
        _page_and_wss(ctx, wait_s, bool(params.get("no_open")), params.get("browser_cmd"))
    )
    results = [*own, *page]
    report = build_report(
        "browser",
        ctx,
        results,
        started,
        round((time.monotonic() - t0) * 1000),
        params.get("report_path"),
    )
    if env is not None:
        report["environment"]["browser"] = ctx.redactor.scrub_obj(env)
    emit_report(report, params)
    sys.exit(exit_code(results))


def _browser(**params: Any) -> None:
    """Run the checks in your browser (microphone, echo, rates, WebSocket) and report.

    Serves a page on 127.0.0.1, opens it, and waits for one click there; the results join
    the CLI's own `wss` check in one report (--json, --report, exit codes as `all`).
    """
    browser_main(params)


browser_command = click.command("browser")(
    browser_options(
        service_options_with(
            report_options(_browser),
            PAGE_WAIT_S,
            "Seconds to wait for the page's results (network steps wait at most 10 s).",
        )
    )
)
