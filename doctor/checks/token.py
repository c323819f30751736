"""`token`: are the credentials good, and does a session really start and end cleanly.

With an API key: mint a temporary token (60 s window, 60 s session cap; the key raw in
`Authorization`) and check its shape; open a session with the key in the header (the
`Bearer` form, so both documented header forms are exercised), wait for `session.ready`,
end it with `session.end` and wait for `session.ended` (so no grace window is billed);
open one with the minted token in `?token=` as a browser would and end it too; then try
the same token once more. The docs promise single use; the live service accepted reuse
within the window (field-facts §1) and did not enforce the session cap (§5), so either
answer is evidence, with the advice that holds both ways (a fresh token per connection,
the app's own session timer), never a warning.

With `--token` only: one session with it; a token may be single use, so the check may
consume it. With both: everything above, then the user's token too.

Offline findings come first. A value that cannot be sent at all (empty, an inner line
break) is not sent. Otherwise the check sends what the user meant (quotes, spaces and a
pasted `Bearer ` removed), so it can say whether fixing the paste is enough: a mistake the
app would send as is fails even when the cleaned value works; a shape hint (a token in the
key variable) only explains a refusal, and says nothing when the service accepts the value.
"""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from doctor import guide
from doctor.context import API_KEY_ENV, Context, Credential
from doctor.credentials import Finding, cleaned, inspect
from doctor.net.auth_outcome import (
    Failure,
    Outcome,
    findings_outcome,
    reuse_refused,
    session_outcome,
)
from doctor.net.mint_outcome import mint_unreachable, request_for
from doctor.net.sessions import (
    TOKEN_MAX_SESSION_S,
    Attempt,
    Auth,
    Sessions,
    budget_s,
    fix_values,
)
from doctor.registry import check
from doctor.result import Result, Status, passed, problem, skipped

_AUTH = ("unauthorized", "token_expired", "forbidden")
Runner = Callable[[str, list[Outcome]], Awaitable[str]]


def _timeout(ctx: Context) -> float:
    """The worst case of the client's waits: with a key, a mint and three sessions (key,
    token, token reuse); with --token, one more session."""
    sessions = (3 if ctx.api_key else 0) + (1 if ctx.token else 0)
    return budget_s(ctx.timeout, sessions=sessions, mints=1 if ctx.api_key else 0)


@dataclass
class Cred:
    """One user credential: as given, what goes on the wire, and what was wrong with it."""

    credential: Credential
    findings: list[Finding]
    wire: str | None  # None: not sendable

    @classmethod
    def of(cls, credential: Credential, ctx: Context) -> Cred:
        findings = inspect(credential.value, credential.kind)
        wire = cleaned(credential.value) if findings else credential.value
        ctx.add_secret(credential.kind, wire)
        if not wire or any(f.severity == "fail" for f in inspect(wire, credential.kind)):
            return cls(credential, findings, None)
        return cls(credential, findings, wire)

    def evidence(self) -> dict[str, Any]:
        ev = self.credential.describe()
        ev["findings"] = [
            {"code": f.code, "severity": f.severity, "message": f.message} for f in self.findings
        ]
        ev["sent"] = "not sent" if self.wire is None else "cleaned" if self.findings else "as given"
        return ev


def _empty_env_key() -> Finding | None:
    """click treats an empty variable as unset; an empty ASSEMBLYAI_API_KEY is a mistake."""
    if os.environ.get(API_KEY_ENV) == "":
        return Finding("empty", "fail", f"{API_KEY_ENV} is set but empty")
    return None


def _ready_text(a: Attempt) -> str:
    return f"ready in {a.time_to_ready_ms:.0f} ms" if a.time_to_ready_ms is not None else "ready"


def _ended_problem(a: Attempt) -> Outcome | None:
    if a.ready and a.ended is False:
        return Outcome(
            "no_session_ended",
            Status.WARN,
            f"session.end on the {a.label} session got no session.ended "
            f"{a.no_ended_text()}: the service may bill the 30 s grace window",
            "billing",
            f"{a.session_id}: {a.close_code} {a.close_reason or ''}".strip(),
        )
    return None


async def _session(
    s: Sessions, auth: Auth, problems: list[Outcome], key_minted: bool = False
) -> Attempt:
    """Open, and end at once if ready; a failure goes to `problems`. `key_minted`: the
    key just minted a token, which weighs against blaming the key for a refusal."""
    attempt = await s.open(auth)
    if attempt.failure is not None:
        age = None if auth.minted_at is None else (attempt.opened_at - auth.minted_at)
        problems.append(
            session_outcome(
                attempt.failure,
                auth.kind,
                token_age_s=age,
                token_window_s=auth.window_s,
                key_minted=key_minted,
            )
        )
        return attempt
    await s.end(attempt)
    ended = _ended_problem(attempt)
    if ended is not None:
        problems.append(ended)
    return attempt


async def _with_key(s: Sessions, key: str, problems: list[Outcome], ev: dict[str, Any]) -> str:
    """Mint, key session, token session, token reuse. Returns what worked, for the summary."""
    from doctor.net.agent_api import AgentApiError

    token_auth: Auth | None = None
    mint_problem: Outcome | None
    key_minted = False
    try:
        result, token_auth = await s.mint(key, "minted token #1")
        mint_problem = s.judge_mint(result, get=request_for(s.ctx.token_url))
        key_minted = result.status == 200
        ev["mint"] = {**s.minted[-1], "body": result.body}
    except AgentApiError as err:
        mint_problem = mint_unreachable(Failure.of(err), s.ctx.token_url)
        ev["mint"] = {"failure": err.facts()}
    worked: list[str] = []
    if mint_problem is not None:
        problems.append(mint_problem)
        token_auth = None
        if mint_problem.cause in _AUTH:
            return ""  # the key session would be refused the same way
    else:
        worked.append("token minted")
    key_attempt = await _session(s, Auth("api_key", key, "API key"), problems, key_minted)
    if not key_attempt.ready:
        return "; ".join(worked)
    worked.append(f"key session {_ready_text(key_attempt)}")
    if token_auth is None:
        return "; ".join(worked)
    token_attempt = await _session(s, token_auth, problems)
    if not token_attempt.ready:
        return "; ".join(worked)
    worked.append(f"token session {_ready_text(token_attempt)}")
    if all(a.ended for a in (key_attempt, token_attempt)):
        worked[-1] += ", both ended cleanly"
    # The same token again: single use is documented (protocol.md §2.2), reuse is what the
    # field saw (field-facts §1). Either way it is evidence, not the user's problem.
    again = Auth("token", token_auth.value, "minted token #1, second use")
    reuse = await s.open(again)
    if reuse.failure is None:
        await s.end(reuse)
        ev["token_reuse"] = "accepted"
        worked.append(
            "the same token opened a second session (the live service allows reuse within "
            "the window; mint one per connection anyway)"
        )
        return "; ".join(worked)
    refused = reuse_refused(reuse.failure)
    ev["token_reuse"] = "refused" if refused else "inconclusive"
    cause = session_outcome(reuse.failure, "token").cause
    worked.append(
        "reusing the token was refused (single use, as documented)"
        if refused
        else f"reusing the token gave no clear answer ({cause})"
    )
    return "; ".join(worked)


STALE_URL_TOKEN = (
    "--ws-url carries a token query parameter: it was left out of the key session and replaced by "
    "each token session's own (an app that sends it with a key is judged on that token)"
)


def _url_token(url: str) -> bool:
    """Whether `url` has a `token=` query (a stale one pasted from a browser URL)."""
    try:
        query = urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True)
    except ValueError:
        return False
    return any(k == "token" for k, _ in query)


def _first_fail(outcomes: list[Outcome]) -> Outcome | None:
    return next((o for o in outcomes if o.status is Status.FAIL), None)


async def _check_cred(
    cred: Cred, what: str, run: Runner, verdicts: list[Outcome], problems: list[Outcome]
) -> str:
    """Run the online part for one credential, then weigh its offline findings."""
    own: list[Outcome] = []
    worked = await run(cred.wire, own) if cred.wire is not None else ""
    verdict = findings_outcome(
        what,
        cred.findings,
        _first_fail(own),
        cred.wire is not None,
        "the service accepted it" if worked else "",
    )
    if verdict is not None:
        verdicts.append(verdict)
        if verdict.status is Status.FAIL:
            own = [p for p in own if p.cause not in _AUTH]
    problems += own
    return worked


@check("token", "API key and temporary token", needs=("wss",), timeout=_timeout)
async def token(ctx: Context) -> Result:
    """Credentials: offline sanity, token minting, real sessions ended cleanly."""
    key = Cred.of(ctx.api_key, ctx) if ctx.api_key else None
    user_token = Cred.of(ctx.token, ctx) if ctx.token else None
    empty_env = _empty_env_key() if key is None and user_token is None else None
    if key is None and user_token is None and empty_env is None:
        return skipped(
            "no_credentials",
            f"no API key or token: pass --api-key, set {API_KEY_ENV}, or pass --token",
            {"api_key": None, "token": None},
            guide.fix(
                "token_auth",
                detail=f"no --api-key, {API_KEY_ENV} or --token given",
                **fix_values(ctx),
            ),
        )
    ev: dict[str, Any] = {"credentials": {}}
    if key is not None:
        ev["credentials"]["api_key"] = key.evidence()
    if user_token is not None:
        ev["credentials"]["token"] = user_token.evidence()
    if empty_env is not None:
        ev["credentials"]["api_key"] = {"source": f"environment {API_KEY_ENV}", "length": 0}
    problems: list[Outcome] = []
    verdicts: list[Outcome] = []
    parts: list[str] = []
    s = Sessions(ctx, "token")
    if _url_token(ctx.ws_url):
        # agent_api sends key sessions without it and replaces it for token sessions
        ev["ws_url_token"] = "ignored: every session here used its own credential"
        parts.append(STALE_URL_TOKEN)

    async def run_key(wire: str, own: list[Outcome]) -> str:
        return await _with_key(s, wire, own, ev)

    async def run_token(wire: str, own: list[Outcome]) -> str:
        attempt = await _session(s, Auth("token", wire, "your --token"), own)
        if not attempt.ready:
            return ""
        return (
            f"your token: session {_ready_text(attempt)}"
            + (" and ended cleanly" if attempt.ended else "")
            + "; if the service enforces single use, this token is now consumed"
        )

    try:
        if empty_env is not None:
            verdict = findings_outcome("API key", [empty_env], None, went_online=False)
            verdicts += [verdict] if verdict else []
        if key is not None:
            parts.append(await _check_cred(key, "API key", run_key, verdicts, problems))
        if user_token is not None:
            parts.append(await _check_cred(user_token, "token", run_token, verdicts, problems))
    finally:
        await s.finish()
    ev["sessions"] = [a.evidence() for a in s.attempts]
    ev["connections_opened"] = sum(a.upgraded for a in s.attempts)
    ev["sessions_opened"] = len({a.session_id for a in s.attempts if a.session_id})
    ev["sessions_total_s"] = s.total_s
    ev["session_ids"] = [a.session_id for a in s.attempts if a.session_id]
    return _verdict(ctx, [*verdicts, *problems], parts, ev, s)


def _verdict(
    ctx: Context, outcomes: list[Outcome], parts: list[str], ev: dict[str, Any], s: Sessions
) -> Result:
    n, c = ev["sessions_opened"], ev["connections_opened"]
    cost = (
        f"{n} session{'s' if n != 1 else ''} over {c} connection{'s' if c != 1 else ''}, "
        f"{s.total_s:.2f} s in total"
    )
    worst = next((o for o in outcomes if o.status is Status.FAIL), None) or next(
        (o for o in outcomes if o.status is Status.WARN), None
    )
    if worst is None:
        result = passed(f"{'; '.join(p for p in parts if p)} ({cost})", ev)
        if "token_reuse" in ev:
            # field-facts §1, §5: what holds whichever way the service enforces tokens
            ev["session_cap"] = {
                "max_session_duration_seconds_asked": TOKEN_MAX_SESSION_S,
                "observed": "not waited for (the sessions were ended at once)",
                "field": "the live service did not end sessions at this cap",
            }
            return dataclasses.replace(result, fix=guide.fix("token_lifetime"))
        return result
    if len(outcomes) > 1:
        ev["other_problems"] = [
            {"cause": o.cause, "summary": o.summary} for o in outcomes if o is not worst
        ]
    fix = guide.fix(worst.guide, detail=worst.detail, **fix_values(ctx, worst.endpoint))
    return problem(worst.status, worst.cause, f"{worst.summary} ({cost})"[:400], ev, fix)
