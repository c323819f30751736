"""The relay's findings and its own figures as report results (pure).

One result per finding (`watch-<area>`, evidence with the session id and connection), a
pass per area where nothing was wrong, and `watch-relay` with what the relay itself did:
frames forwarded, its send time per frame (from the bytes read to the frame written to the
other side's socket; the wait for the event loop before the read is not in it), and
whether the analysis kept up.
"""

from __future__ import annotations

from typing import Any

from doctor import guide
from doctor.result import Result, Status
from doctor.watch.observe import Finding

AREAS: dict[str, str] = {
    "connect": "Connecting (the WebSocket upgrade)",
    "audio": "The app's audio (input.audio)",
    "pacing": "Audio pacing",
    "close": "How sessions end",
    "resume": "Resume after a drop",
    "echo": "Echo on the wire",
    "latency": "Reply latency",
    "tools": "Tool results",
    "messages": "Messages and errors",
}
PASS_SUMMARY = {
    "connect": "every WebSocket upgrade was accepted by the service",
    "audio": "every input.audio frame was valid PCM16 mono as declared",
    "pacing": "audio was sent at real-time pace, after session.ready",
    "close": "sessions ended with session.end (or the service closed them)",
    "resume": "no resume attempted, or resumed as documented",
    "echo": "the agent's audio did not come back in the app's input",
    "latency": "replies started in normal time",
    "tools": "every tool.call got its tool.result in time",
    "messages": "no unknown messages, no session.error",
}


def finding_result(f: Finding, values: dict[str, str] | None = None) -> Result:
    """`values`: the guide's placeholders for the upstream (its host, port and scheme)."""
    status = Status.FAIL if f.severity == "fail" else Status.WARN
    return Result(
        status,
        f.summary,
        f.cause,
        f.evidence,
        guide.fix(
            f.guide, detail=f.detail or None, code=f.evidence.get("answer"), **(values or {})
        ),
        id=f"watch-{f.area}",
        title=AREAS.get(f.area, f.area),
    )


# The session analysis (issue 15) judges these areas from the capture on its own; the
# relay then adds only its findings there, not a second "nothing wrong".
COVERED_BY_SESSION = {
    "latency": "session-latency",
    "tools": "session-tools",
    "messages": "session-errors",
}


def watch_results(
    findings: list[Finding],
    sessions: int,
    skip_causes: set[tuple[str, str | None]] | None = None,
    session_ids: set[str] | None = None,
    unjudged: tuple[str, str] | None = None,
    partial: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> list[Result]:
    """Findings as results; `skip_causes` holds (cause, session_id) the session analysis
    already reported, so a problem is not listed twice; `session_ids` are the check ids the
    session analysis produced. `unjudged` (cause, why): the analysis could not judge (it
    crashed, or saw no frame), so an area without findings is skipped, never passed;
    `partial` (area -> why) adds to an area's pass what it did not look at; `values` fill
    the fixes' placeholders (the upstream's host, port, scheme)."""
    skip = skip_causes or set()
    theirs = session_ids or set()
    out = [
        finding_result(f, values)
        for f in findings
        if (f.cause, f.evidence.get("session_id")) not in skip
    ]
    if sessions:
        seen = {f.area for f in findings}
        for area, title in AREAS.items():
            if area not in seen and COVERED_BY_SESSION.get(area) not in theirs:
                if unjudged is not None and area != "connect":
                    out.append(
                        Result(
                            Status.SKIP,
                            f"not judged: {unjudged[1]}",
                            unjudged[0],
                            {"connections": sessions},
                            id=f"watch-{area}",
                            title=title,
                        )
                    )
                    continue
                conns = f"{sessions} connection{'s' * (sessions != 1)}"
                if partial and area in partial:  # part was not looked at: never a clean pass
                    out.append(
                        Result(
                            Status.WARN,
                            f"{partial[area]}; none of those measured showed it ({conns} in all)",
                            "analysis_behind",
                            {"connections": sessions},
                            guide.fix("watch_relay", detail=partial[area]),
                            id=f"watch-{area}",
                            title=title,
                        )
                    )
                    continue
                out.append(
                    Result(
                        Status.PASS,
                        f"{PASS_SUMMARY[area]} ({conns})",
                        None,
                        {"connections": sessions},
                        id=f"watch-{area}",
                        title=title,
                    )
                )
    return out


def _ms(name: str, value: Any) -> str:
    """A send-time percentile, or that none was measured (no frame was forwarded)."""
    return f"{name} not measured (no frame)" if value is None else f"{name} {value} ms"


def relay_result(stats: dict[str, Any]) -> Result:
    """What the relay did: forwarded frames, its own latency, the analysis keeping up."""
    behind = int(stats.get("analysis_dropped_frames") or 0)
    crashed = stats.get("analysis_crashed")
    ev = dict(stats)
    summary = (
        f"forwarded {stats.get('frames_forwarded', 0)} frames on "
        f"{stats.get('connections', 0)} connections; send time per frame (read to written, "
        f"not counting the wait to be read) {_ms('p50', stats.get('added_latency_p50_ms'))}, "
        f"{_ms('p99', stats.get('added_latency_p99_ms'))}"
    )
    cut = int(stats.get("sessions_open_at_stop") or 0)
    if cut:  # said once, here: the relay's stop is not the app's close
        summary += (
            f"; {cut} session{'s were' if cut != 1 else ' was'} still open when watch stopped "
            "(the relay closed them with 1001: not the app's doing)"
        )
    tokens = int(stats.get("token_requests") or 0)
    if not stats.get("connections") and not stats.get("connections_refused_upstream"):
        return Result(
            Status.WARN,
            (
                f"no app connected to the relay's WebSocket, though the app asked it for "
                f"{tokens} token{'s' * (tokens != 1)} (see watch-token): it may have "
                "stopped at the token, or still open its WebSocket on the service"
                if tokens
                else "no app connected to the relay: nothing was watched (the app still "
                "points at the service: give it the relay's URL printed at the start)"
            ),
            "no_app_connected",
            ev,
            guide.fix("watch_no_app"),
            id="watch-relay",
            title="The relay",
        )
    capture = stats.get("capture_failed")
    if capture:
        return Result(
            Status.WARN,
            f"{summary}; the capture could not be written ({capture}): the capture file is "
            "incomplete, and the session analysis of it is partial",
            "capture_failed",
            ev,
            guide.fix("watch_capture", detail=str(capture)),
            id="watch-relay",
            title="The relay",
        )
    if crashed:
        return Result(
            Status.WARN,
            f"{summary}; the analysis stopped ({crashed}): frames still flowed",
            "analysis_crashed",
            ev,
            guide.fix("watch_relay", detail=str(crashed)),
            id="watch-relay",
            title="The relay",
        )
    lost = int(stats.get("capture_dropped_frames") or 0)
    if lost:
        return Result(
            Status.WARN,
            f"{summary}; the capture missed {lost} frames (its writer fell behind): every "
            "frame was forwarded, but the capture and the session analysis of it are partial"
            + (f"; the live analysis also skipped {behind} audio frames" if behind else ""),
            "capture_dropped",
            ev,
            guide.fix("watch_relay", detail=f"{lost} frames not captured"),
            id="watch-relay",
            title="The relay",
        )
    if behind:
        what = (
            f"the analysis fell too far behind and stopped ({behind} frames not analysed): "
            "the relay's findings are missing, the session analysis of the capture stands"
            if stats.get("analysis_stopped_behind")
            else f"the analysis fell behind and skipped {behind} audio frames"
        )
        return Result(
            Status.WARN,
            f"{summary}; {what}",
            "analysis_behind",
            ev,
            guide.fix("watch_relay", detail=f"{behind} frames not analysed"),
            id="watch-relay",
            title="The relay",
        )
    return Result(Status.PASS, summary, None, ev, id="watch-relay", title="The relay")


def token_result(stats: dict[str, Any], values: dict[str, str]) -> Result | None:
    """What the token requests the app made through the relay got, with the `token`
    check's cause codes; None when the app asked for none. `values`: the guide's host
    placeholders for the token URL."""
    asked = int(stats.get("token_requests") or 0)
    if not asked:
        return None
    answers = list(stats.get("token_answers") or [])
    failed = int(stats.get("token_requests_failed") or 0)
    ev = {"token_requests": asked, "token_requests_failed": failed, "answers": answers}
    title = "Token requests through the relay"
    bad = [a for a in answers if a.get("cause")]
    if not failed:
        return Result(
            Status.PASS,
            f"the token endpoint answered every token request with a token ({asked})",
            None,
            ev,
            id="watch-token",
            title=title,
        )
    first = bad[0]
    causes = sorted({str(a["cause"]) for a in bad})
    # an app that got a token in the end (after a 429, say) recovered: worth a warning
    recovered = stats.get("token_last_failed") is False
    return Result(
        Status.WARN if recovered else Status.FAIL,
        f"{failed} of {asked} token request{'s' * (asked != 1)} failed (the app got HTTP "
        f"{first.get('app_status')}): {first.get('summary')}"
        + (
            f"; also {', '.join(c for c in causes if c != first['cause'])}"
            if len(causes) > 1
            else ""
        ),
        str(first["cause"]),
        ev,
        guide.fix(str(first.get("guide")), detail=str(first.get("detail") or ""), **values),
        id="watch-token",
        title=title,
    )
