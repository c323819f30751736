"""The end report of a watch: the session analysis on the capture, plus what only the relay saw.

The session analysis (issue 15's core, `doctor.session`) runs on the capture when it is
installed; the relay's own findings are added where that analysis did not already report
the same cause for the same session, and `watch-relay` gives the relay's own figures.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from doctor.context import SessionRecord
from doctor.net.sessions import fix_values
from doctor.result import Result, Status
from doctor.watch.observe import Finding
from doctor.watch.results import relay_result, token_result, watch_results

if TYPE_CHECKING:
    from doctor.context import Context
    from doctor.watch.run import WatchOutcome


def session_analysis(capture_path: str) -> tuple[list[Result], list[dict[str, Any]], list[str]]:
    """Issue 15's analysis on the capture: (results, session summaries, reader notes)."""
    from doctor.commands.analyze import session_results
    from doctor.session_readers.detect import analyze_path

    notes: list[str] = []
    try:
        found = analyze_path(capture_path, notes.append)
    except Exception as exc:  # its failure must not cost the relay's own findings
        err = f"{type(exc).__name__}: {exc}"[:300]
        return (
            [
                Result(
                    Status.ERROR,
                    f"the session analysis failed: {err}",
                    "analysis_crashed",
                    {"exception": err},
                    id="session",
                    title="Session analysis",
                )
            ],
            [],
            notes,
        )
    return session_results(found), [f.summary() for f in found], notes


def _support(ctx: Context, conns: list[dict[str, Any]]) -> None:
    for c in conns:
        ctx.record_session(
            SessionRecord(
                check="watch",
                region=ctx.region,
                session_id=c.get("session_id"),
                started_at=datetime.fromtimestamp(float(c.get("opened_wall") or 0), timezone.utc),
                duration_s=c.get("duration_s"),
                close_code=c.get("close_code"),
                close_reason=c.get("close_reason"),
                ended_cleanly=c.get("ended_cleanly"),
                auth={"query": "token", "header": "api_key"}.get(str(c.get("auth")), "none"),
            )
        )


def watch_report_results(outcome: WatchOutcome, capture_path: str, ctx: Context) -> list[Result]:
    findings = [Finding(**f) for f in outcome.findings]
    _support(ctx, list(outcome.worker_stats.get("conns") or []))
    theirs, sessions, notes = session_analysis(capture_path)
    outcome.sessions = sessions
    outcome.input_notes = notes
    skip = {
        (r.cause, r.evidence.get("session_id"))
        for r in theirs
        if r.cause is not None and r.status in (Status.WARN, Status.FAIL)
    }
    stats = {
        **outcome.relay_stats,
        **{k: v for k, v in outcome.worker_stats.items() if k not in ("conns",)},
    }
    conns = int(outcome.relay_stats.get("connections") or 0)
    ids = {r.id for r in theirs}
    theirs = [_with_relay_evidence(r, findings) for r in theirs]
    token = token_result(stats, fix_values(ctx, "token"))
    return [
        *theirs,
        *watch_results(
            findings, conns, skip, ids, _unjudged(stats), _partial(stats), fix_values(ctx)
        ),
        *([] if token is None else [token]),
        relay_result(stats),
    ]


def _unjudged(stats: dict[str, Any]) -> tuple[str, str] | None:
    """Why the relay's analysis cannot vouch for the areas it found nothing in, if so."""
    crashed = stats.get("analysis_crashed")
    if crashed:
        return "analysis_crashed", f"the analysis stopped ({crashed})"
    if stats.get("analysis_stopped_behind"):
        return "analysis_behind", "the analysis fell too far behind and stopped"
    if not stats.get("app_frames") and not stats.get("service_frames"):
        return "no_frames", "no frame went through the relay"
    return None


def _partial(stats: dict[str, Any]) -> dict[str, str]:
    """Areas the analysis looked at only in part (it rations its costliest measurement)."""
    unmeasured = stats.get("echo_unmeasured_connections") or []
    if not unmeasured:
        return {}
    shown = ", ".join(str(c) for c in unmeasured[:10]) + ("..." if len(unmeasured) > 10 else "")
    return {
        "echo": f"{len(unmeasured)} connection(s) not measured ({shown}): the echo "
        "measurement is rationed when many sessions run at once"
    }


def _with_relay_evidence(r: Result, findings: list[Finding]) -> Result:
    """The session analysis's result, with what the relay saw of the same problem (the
    frame number of the first bad frame, who closed, the token used...) under `relay`."""
    if r.cause is None:
        return r
    sid = r.evidence.get("session_id")
    mine = [f for f in findings if f.cause == r.cause and f.evidence.get("session_id") == sid]
    if not mine:
        return r
    relay = {k: v for k, v in mine[0].evidence.items() if k != "session_id"}
    return replace(r, evidence={**r.evidence, "relay": relay})
