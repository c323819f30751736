"""`resume`: does `session.resume` work for this account, and does `session.end` end cleanly.

Open a session, drop the TCP connection abruptly (no `session.end`, no close frame), wait
`--resume-delay`, open a new connection and send `session.resume` as its first message;
`session.ready` must come back with the same id. Then `session.end` / `session.ended`,
so the grace window is not billed.

A refusal (`session_not_found`) is what every live attempt got in the field
(field-facts §6): a warning whose fix is the app's (start a fresh session), with the
evidence support needs, and the check then starts that fresh session itself to show the
fallback works. `fail` is kept for what breaks the app: no session at all (the first
one, or the fresh one after a refusal, does not start), a resume that hangs, a session
owned by another key.

Which credential: with an API key alone, the key on both connections (a server app).
When the user also gave `--token`, the app uses tokens: each connection gets a token
freshly minted with the key right before it (the user's own token was used by the
`token` check). With a token and no key a second token cannot be had, so the check is
skipped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from doctor import guide
from doctor.context import Context
from doctor.credentials import cleaned
from doctor.net.auth_outcome import (
    GRACE_WINDOW_S,
    Failure,
    Outcome,
    after_resume_outcome,
    resume_outcome,
    session_outcome,
)
from doctor.net.mint_outcome import request_for
from doctor.net.sessions import Attempt, Auth, Sessions, budget_s, fix_values
from doctor.registry import check
from doctor.result import Result, Status, passed, problem, skipped


def _timeout(ctx: Context) -> float:
    """The worst case of the client's waits: two sessions, one of them dropped, a mint
    before each when the app uses tokens, and the user's delay."""
    mints = 3 if ctx.token is not None else 0
    # two sessions for the story, a third, fresh one after a refusal
    return budget_s(ctx.timeout, sessions=3, mints=mints, drops=1) + ctx.resume_delay


@dataclass(frozen=True)
class Leg:
    """How one of the two connections authenticates: the key itself, or a token minted
    with it right before connecting."""

    key: str
    minted: bool


@dataclass(frozen=True)
class Plan:
    first: Leg
    second: Leg

    @property
    def auth(self) -> str:
        return "token" if self.first.minted else "api_key"


def plan_for(ctx: Context) -> Plan | Result:
    if ctx.api_key is None:
        cause, why = (
            (
                "needs_api_key",
                "a resume needs a second connection, which the docs say needs a token of its "
                "own, and a run with --token alone cannot mint one",
            )
            if ctx.token
            else ("no_credentials", "no credentials")
        )
        return skipped(
            cause,
            f"{why}: pass --api-key (or set ASSEMBLYAI_API_KEY) so fresh tokens can be minted",
            {"api_key": None, "token": ctx.token.describe() if ctx.token else None},
        )
    key = cleaned(ctx.api_key.value)
    leg = Leg(key, minted=ctx.token is not None)
    return Plan(leg, leg)


class _Stop(Exception):
    """A step failed; its outcome is the result."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.summary)
        self.outcome = outcome


async def _auth_for(s: Sessions, leg: Leg, n: int, ev: dict[str, Any]) -> Auth:
    """The key, or a token minted now (a registered secret before anything can print)."""
    from doctor.net.agent_api import AgentApiError

    if not leg.minted:
        return Auth("api_key", leg.key, f"connection #{n} (API key)")
    try:
        result, auth = await s.mint(leg.key, f"token for connection #{n}")
    except AgentApiError as err:
        raise _Stop(
            Outcome(
                "timeout" if err.kind == "timeout" else "token_url_unreachable",
                Status.FAIL,
                f"could not mint a token for connection #{n}: {err}",
                "token_unreachable",
                str(err),
                endpoint="token",
            )
        ) from None
    ev.setdefault("tokens", []).append(s.minted[-1])
    bad = s.judge_mint(result, get=request_for(s.ctx.token_url))
    if bad is not None:
        raise _Stop(bad)
    if auth is None:  # judge_mint accepts only a 200 with a token, which mint turns into auth
        raise _Stop(
            Outcome("token_response_invalid", Status.FAIL, "no token in the answer", "service_side")
        )
    return dataclasses.replace(auth, label=f"connection #{n} (fresh token)")


async def run_resume(ctx: Context, plan: Plan) -> Result:
    """The drop-and-resume story with the credentials of `plan` (tests give the second
    leg another key to provoke `session_forbidden`)."""
    s = Sessions(ctx, "resume")
    ev: dict[str, Any] = {
        "auth": plan.auth,
        "resume_delay_requested_s": ctx.resume_delay,
        "grace_window_s": GRACE_WINDOW_S,
    }
    first: Attempt | None = None
    second: Attempt | None = None
    outcome: Outcome | None = None
    try:
        first = await s.open(await _auth_for(s, plan.first, 1, ev))
        if first.failure is not None:
            first_problem = session_outcome(first.failure, first.auth.kind)
            raise _Stop(
                Outcome(
                    first_problem.cause if first_problem.cause == "timeout" else "no_session_ready",
                    Status.FAIL,
                    f"the first session did not start: {first_problem.summary}",
                    first_problem.guide,
                    first_problem.detail,
                )
            )
        ev["t_ready_s"] = round(first.offset_s + (first.time_to_ready_ms or 0) / 1000, 4)
        dropped_at = await s.drop(first)
        # the drop follows the ready: two clocks rounded to 0.1 ms can put it 0.1 ms before
        ev["t_drop_s"] = max(ev["t_ready_s"], round(dropped_at - s.t0, 4))
        # Waiting is the feature here: the user's delay between the drop and the resume.
        await asyncio.sleep(max(0.0, ctx.resume_delay - (time.monotonic() - dropped_at)))
        if first.session_id is None:  # open() records a ready without an id as a failure
            raise _Stop(session_outcome(Failure("no_session_id", "ready"), first.auth.kind))
        auth = await _auth_for(s, plan.second, 2, ev)
        second = await s.open(auth, resume_id=first.session_id)
        resumed_at = _resume_sent_at(second, s)
        delay = (resumed_at - dropped_at) if resumed_at is not None else ctx.resume_delay
        ev["resume_delay_s"] = round(delay, 3)
        if second.failure is not None:
            stop = resume_outcome(second.failure, delay)
            if stop.cause == "resume_forbidden":
                used = ", ".join(f"{a.label} used {a.auth.masked}" for a in (first, second))
                stop = dataclasses.replace(stop, detail=f"{stop.detail}; {used}")
            if stop.cause == "resume_rejected":
                ev["resume_refusal"] = _refusal(first, second, delay)
                fresh, fresh_problem = await _fresh_session(s, plan, ev)
                ev["fresh_session_after_refusal"] = fresh
                stop = _after_refusal(stop, fresh_problem)
            raise _Stop(stop)
        await s.end(second)
        outcome = after_resume_outcome(
            first.session_id,
            second.session_id,
            bool(second.ended),
            second.close_code,
            second.close_reason,
            delay,
            second.no_ended_text(),
        )
    except _Stop as stop:
        outcome = stop.outcome
    finally:
        await s.finish()
    ev["session_ids"] = [a.session_id for a in (first, second) if a and a.session_id]
    ev["connections"] = [a.evidence() for a in s.attempts]
    ev["sessions_total_s"] = s.total_s
    if first is not None and second is not None and second.closed_at is not None:
        ev["session_span_s"] = round(second.closed_at - first.opened_at, 3)
    n = sum(a.upgraded for a in s.attempts)
    cost = f"{n} connection{'s' if n != 1 else ''}, {s.total_s:.2f} s connected"
    if outcome is None:
        assert first is not None and second is not None
        return passed(
            f"resumed {first.session_id} {ev['resume_delay_s']:.1f} s after an abrupt drop; "
            "session.ready kept the id and session.end got session.ended (the session "
            f"lasted {ev.get('session_span_s', 0):.2f} s over {cost})",
            ev,
        )
    summary = outcome.summary
    if "resume_refusal" in ev:
        ev["note"] = (
            "the first session was dropped and could not be resumed: the service may bill "
            "its grace window"
        )
    values = fix_values(ctx, outcome.endpoint)
    fix = guide.fix(outcome.guide, detail=outcome.detail, code="session_not_found", **values)
    return problem(outcome.status, outcome.cause, f"{summary} ({cost})"[:400], ev, fix)


def _refusal(first: Attempt, second: Attempt, delay: float) -> dict[str, Any]:
    """What support asks for about a refused resume (field-facts §6, §15.1)."""
    failure = second.failure
    assert failure is not None
    return {
        "session_id": first.session_id,
        "delay_s": round(delay, 3),
        "code": failure.error_code,
        "message": failure.error_message,
        "close_code": failure.close_code,
        "close_reason": failure.close_reason,
        "resume_sent_at": second.started_at.isoformat(timespec="milliseconds"),
    }


async def _fresh_session(
    s: Sessions, plan: Plan, ev: dict[str, Any]
) -> tuple[dict[str, Any], Outcome | None]:
    """What the app should do after a refusal: a new session with `session.update`. The
    evidence, and why it did not start (None when it did)."""
    try:
        attempt = await s.open(await _auth_for(s, plan.second, 3, ev))
    except _Stop as stop:
        return {"started": False, "why": stop.outcome.summary}, stop.outcome
    if attempt.failure is not None:
        problem = session_outcome(attempt.failure, attempt.auth.kind)
        return {"started": False, "why": problem.summary}, problem
    await s.end(attempt)
    return {
        "started": True,
        "session_id": attempt.session_id,
        "time_to_ready_ms": attempt.time_to_ready_ms,
        "ended_cleanly": attempt.ended,
    }, None


def _after_refusal(refused: Outcome, fresh_problem: Outcome | None) -> Outcome:
    """A refused resume warns when the app's fallback works: a fresh session started.
    When that fresh session cannot start either, the app has no session at all: `fail`,
    with the cause and fix of what stopped the fresh session (as for a first session that
    does not start), the refusal kept in the summary and in evidence."""
    if fresh_problem is None:
        return dataclasses.replace(
            refused, summary=f"{refused.summary}; a fresh session then started as the app's "
            "fallback would"
        )  # fmt: skip
    return Outcome(
        fresh_problem.cause if fresh_problem.cause == "timeout" else "no_session_ready",
        Status.FAIL,
        f"{refused.summary}; a fresh session did not start either: {fresh_problem.summary}",
        fresh_problem.guide,
        fresh_problem.detail,
        endpoint=fresh_problem.endpoint,
    )


def _resume_sent_at(attempt: Attempt, s: Sessions) -> float | None:
    """When `session.resume` went out, on the monotonic clock."""
    for event in attempt.timeline():
        if event["direction"] == "sent" and event["type"] == "session.resume":
            return s.t0 + float(event["t_s"])
    return None


@check("resume", "Session resume", needs=("token",), timeout=_timeout)
async def resume(ctx: Context) -> Result:
    """Drop a session, resume it within the grace window, then end it cleanly."""
    plan = plan_for(ctx)
    if isinstance(plan, Result):
        return plan
    return await run_resume(ctx, plan)
