"""Judge one collected session: facts in, check results (cause codes, evidence, fixes) out.

Every threshold is here, with why. Results use the ids `session-*` (README, "Session
analysis"); each carries the session id in its evidence so a report of many sessions
stays readable.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from doctor import guide
from doctor.audio.format.inputs import CHUNK_MS_HIGH, CHUNK_MS_LOW
from doctor.json_numbers import finite
from doctor.result import Result, Status, passed, problem, skipped
from doctor.session.state import RESUME_CODES, Close, Reply, Segment
from doctor.session.words import join_deltas, repeats, words

EARLY_CUT_S = 2.0
"""An echo barges in as soon as the agent's voice comes back: within ~1-2 s of the start."""
SELF_INTERRUPT_MIN = 3
SELF_INTERRUPT_SHARE = 0.5
EAGER_CUT_S = 0.6
"""Turns cut by eager turn detection end within ~0.3-0.5 s with empty text (field #4b)."""
EAGER_GAP_S = 3.0
"""...and the reply was created within this long after the user's last words were committed."""
ECHO_LOOKBACK_S = 15.0
ECHO_REPEATS_MIN = 2
"""One user turn that reuses the agent's words can be an answer ("the red one"); echo repeats."""
SLOW_P90_S = 3.5
"""Commit to audible is 0.8-1.3 s of lead-in in the field (§8); 3.5 s at p90 is slow."""
SLOW_READY_S = 5.0
ESTIMATE_SLACK_S = 0.4
DEFAULT_TOOL_TIMEOUT_S = 120.0
GRACE_S = 30.0
BURST_AHEAD_S = 3.0
GAP_S = 5.0
CHUNK_MS_RANGE = (CHUNK_MS_LOW, CHUNK_MS_HIGH)  # validate-audio's bounds, so both agree
CLEAN_CLOSES = {1000, 1001, 1005}
SILENT_REPLIES_MIN = 2
SILENT_SHARE = 0.5


@dataclass
class Extras:
    """What the analysis knows besides the events: the recording's echo, the source."""

    shape: str = ""
    vendor_artifacts: bool = False
    region: str | None = None
    echo: dict[str, Any] | None = None  # evidence of the recording's echo measurement
    audio_result: Result | None = None  # the validate-audio core on the app's audio
    lacks_sent: bool = False
    lacks_end: bool = False  # the log would not show a sent session.end
    resumed_later: bool = False  # a later connection resumed this session (session.ready)
    notes: list[str] = field(default_factory=list)


def _ev(seg: Segment, **more: Any) -> dict[str, Any]:
    return {"session_id": seg.session_id, **more}


def _rel(seg: Segment, t: float | None) -> float | None:
    base = seg.first_t
    return None if t is None or base is None else round(t - base, 2)


def _into(r: Reply) -> float | None:
    """Seconds the reply had been audible when it was cut (from creation if sound unknown)."""
    start = r.audible_t if r.audible_t is not None else r.started_t
    if r.cut_t is None or start is None:
        return None
    return r.cut_t - start


def recent_agent_text(seg: Segment, r: Reply) -> str:
    """The agent's words around a cut: this reply's and those of the last few seconds."""
    texts = []
    for other in seg.replies:
        end = other.done_t or other.cut_t
        if other is r:  # only what was heard: deltas hold words never spoken (§6.2)
            texts.append(r.spoken)
        elif end is not None and r.cut_t is not None and 0 <= r.cut_t - end < ECHO_LOOKBACK_S:
            texts.append(other.spoken or join_deltas(other.deltas))
    return " ".join(texts)


def classify_cut(seg: Segment, r: Reply) -> str:
    """What interrupted a reply: echo, eager turn detection, noise, or the user."""
    nxt = r.next_user_text
    if nxt is not None and repeats(nxt, recent_agent_text(seg, r)):
        return "echo"
    into = _into(r)
    spoken_words = len((r.spoken or "").split())
    if r.audible_t is None and r.audible_known and nxt and r.answers is not None:
        return "eager turn detection"  # cut before it made a sound: nothing to echo
    if (
        into is not None
        and into <= EAGER_CUT_S
        and spoken_words <= 1
        and r.answers is not None
        and r.answers.stopped_t is not None
        and r.started_t is not None
        and r.started_t - r.answers.stopped_t <= EAGER_GAP_S
        and nxt
    ):
        return "eager turn detection"
    if nxt is not None and not nxt.strip():
        return "noise"
    if nxt is None:
        return "unknown (no user transcript followed)"
    return "user speech"


def interruption_rows(seg: Segment) -> list[dict[str, Any]]:
    rows = []
    for r in seg.replies:
        if not r.interrupted:
            continue
        into = _into(r)
        rows.append(
            {
                "reply_id": r.reply_id,
                "at_s": _rel(seg, r.cut_t),
                "into_reply_s": None if into is None else round(into, 2),
                "from": "audible start" if r.audible_t is not None else "reply creation",
                "cause": classify_cut(seg, r),
                "agent_said": (r.spoken or "")[:120],
                "user_said": (r.next_user_text or "")[:120],
            }
        )
    return rows


def _early(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        x
        for x in rows
        if x["into_reply_s"] is not None
        and x["into_reply_s"] <= EARLY_CUT_S
        and x["cause"] != "eager turn detection"
    ]


def _spoken_replies(seg: Segment) -> int:
    return sum(1 for r in seg.replies if r.audible_t is not None or r.spoken or r.first_chunk_t)


ECHO_TAIL_S = 1.0
"""A user turn that starts this long after a reply ended can still be that reply's echo."""


_NUMBER_WORDS = frozenset(
    (  # noqa: SIM905 (a sentence of words reads better than 33 quoted ones)
        "zero oh one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty "
        "seventy eighty ninety hundred thousand double triple"
    ).split()
)


def _number_like(word: str) -> bool:
    """A digit string or a spoken digit: what a read-back of a number is made of."""
    return any(ch.isdigit() for ch in word) or word in _NUMBER_WORDS


def transcript_repeats(seg: Segment, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every user transcript that repeats what the agent was saying when the user's speech
    began (that reply, or within ECHO_TAIL_S of its end), plus the cuts judged echo.

    Numbers the user introduced (said in a turn that was no repeat, before the agent ever
    said them: an order or phone number) are the user's own: when the agent reads them back
    and the user confirms ("Yes, 4 5 7 2 9"), they are no sign of the agent's voice coming
    back, so they are left out of the comparison. Only numbers: ordinary words the user
    said once ("anything", "today", "help") would hide a real echo of "Is there anything
    else I can help you with today?"."""
    out: list[dict[str, Any]] = []
    introduced: set[str] = set()
    for u in seg.users:
        if not u.text or u.started_t is None:
            continue
        heard = []
        said_before: set[str] = set()
        for r in seg.replies:
            start = r.audible_t if r.audible_t is not None else r.started_t
            end = r.cut_t if r.cut_t is not None else r.done_t
            if start is None or start > u.started_t:
                continue
            said_before.update(words(r.spoken or join_deltas(r.deltas)))
            if end is None or u.started_t - end <= ECHO_TAIL_S:
                heard.append(r.spoken or join_deltas(r.deltas))
        agent = " ".join(heard)
        own = " ".join(w for w in words(u.text) if w not in introduced)
        if not (heard and repeats(own, agent)):
            introduced.update(w for w in words(u.text) if w not in said_before and _number_like(w))
            continue
        out.append(
            {"at_s": _rel(seg, u.started_t), "agent_said": agent[-120:], "user_said": u.text[:120]}
        )
    seen = {x["user_said"] for x in out}
    for x in rows:
        if x["cause"] == "echo" and x["user_said"] not in seen:
            out.append({k: x[k] for k in ("at_s", "agent_said", "user_said")})
    return out


def echo_result(seg: Segment, ex: Extras, rows: list[dict[str, Any]]) -> Result:
    signals: list[str] = []
    evidence = _ev(seg)
    if ex.echo is not None:
        evidence["audio"] = ex.echo
        if ex.echo.get("verdict") == "echo":
            signals.append("audio")
    repeats_seen = transcript_repeats(seg, rows)
    if len(repeats_seen) >= ECHO_REPEATS_MIN:
        signals.append("transcript")
        evidence["transcript_repeats"] = repeats_seen[:10]
    early = _early(rows)
    n = _spoken_replies(seg)
    if len(early) >= SELF_INTERRUPT_MIN and len(early) >= SELF_INTERRUPT_SHARE * max(1, n):
        signals.append("interruptions")
        evidence["early_cuts"] = len(early)
        evidence["replies"] = n
    evidence["signals"] = signals
    if not signals:
        heard = "the recording's user channel holds no agent audio" if ex.echo else "no sign"
        return passed(f"No echo: {heard}, no transcript repeats, no run of early cuts", evidence)
    parts = []
    if "audio" in signals and ex.echo:
        parts.append(
            f"the agent's voice is in the user channel (delay {ex.echo.get('delay_ms')} ms, "
            f"ERL {ex.echo.get('erl_db')} dB)"
        )
    if "transcript" in signals:
        parts.append(f"{len(repeats_seen)} user transcript(s) repeat the agent's words")
    if "interruptions" in signals:
        parts.append(f"{len(early)} of {n} replies cut within {EARLY_CUT_S:.0f} s")
    status = Status.FAIL if len(signals) >= 2 else Status.WARN
    head = "Echo loop" if len(signals) >= 2 else "Sign of an echo loop"
    return problem(
        status,
        "echo_loop",
        f"{head}: " + "; ".join(parts),
        evidence,
        guide.fix("session_echo", detail="; ".join(parts)),
    )


def interruptions_result(seg: Segment, rows: list[dict[str, Any]]) -> Result:
    n = _spoken_replies(seg)
    minutes = _minutes(seg)
    evidence = _ev(
        seg,
        interrupted=len(rows),
        replies=n,
        per_minute=None if not minutes else round(len(rows) / minutes, 2),
        interruptions=rows[:200],
    )
    early = _early(rows)
    causes = sorted({x["cause"] for x in early})
    if len(early) >= SELF_INTERRUPT_MIN and len(early) >= SELF_INTERRUPT_SHARE * max(1, n):
        times = ", ".join(f"{x['into_reply_s']} s" for x in early[:8])
        return problem(
            Status.WARN,
            "self_interruptions",
            f"{len(early)} of {n} replies were cut within {EARLY_CUT_S:.0f} s of starting "
            f"({times}); causes: {', '.join(causes)}",
            evidence,
            guide.fix("self_interruptions", detail=f"cut after {times}"),
        )
    if not rows:
        return passed(f"No reply was interrupted ({n} replies)", evidence)
    return passed(
        f"{len(rows)} of {n} replies interrupted, by "
        + ", ".join(sorted({x["cause"] for x in rows})),
        evidence,
    )


def eager_result(seg: Segment, rows: list[dict[str, Any]]) -> Result | None:
    eager = [x for x in rows if x["cause"] == "eager turn detection"]
    if not eager:
        return None
    raw = seg.config.get("input")
    inp: dict[str, Any] = raw if isinstance(raw, dict) else {}
    td = inp.get("turn_detection")
    named = {k: inp[k] for k in ("transcription_mode", "voice_focus") if k in inp}
    evidence = _ev(seg, cuts=eager[:50], turn_detection=td, **named)
    detail = f"{len(eager)} cut(s); input.turn_detection {td}" + "".join(
        f"; input.{k} {v!r}" for k, v in named.items()
    )
    return problem(
        Status.WARN,
        "eager_turn_detection",
        f"{len(eager)} repl{'y was' if len(eager) == 1 else 'ies were'} started in a pause of "
        f"the user's speech and cut within {EAGER_CUT_S} s as the user went on (not echo)",
        evidence,
        guide.fix("eager_turn_detection", detail=detail),
    )


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank `q` quantile (0-1) of a non-empty list: the smallest value with at
    least a share q of the values at or below it (the same rank for an odd or even count;
    rounding q * (n - 1) gave the lower middle of 2 values and the upper middle of 4)."""
    s = sorted(values)
    i = min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))
    return s[i]


def _sounded(r: Reply) -> bool:
    return (
        r.audible_t is not None or r.estimated_audible_t is not None or r.first_chunk_t is not None
    )


def _tool_answer(later: list[Reply], u: Any) -> Reply | None:
    """The first reply after a tool call that makes a sound, unless a reply to another
    user turn comes first."""
    for x in later:
        if x.answers is not None and x.answers is not u:
            return None
        if _sounded(x):
            return x
    return None


def _tool_wait(seg: Segment, r: Reply) -> float | None:
    """From the first call to the last result of the reply's tool calls (the app's time);
    None when a result was sent on an untimed line: the wait is then unknown."""
    calls = [seg.tools[c] for c in r.tool_calls if c in seg.tools]
    if any(c.answered and c.result_t is None for c in calls):
        return None
    starts = [c.t for c in calls if c.t is not None]
    ends = [c.result_t for c in calls if c.result_t is not None]
    return max(0.0, max(ends) - min(starts)) if starts and ends else 0.0


def latency_result(seg: Segment) -> Result:
    turns = []
    estimated = []
    chunk_only: list[float] = []
    kept_silent = 0  # chunk-only replies whose audio was kept: silent, not redacted
    tool_turns: list[dict[str, Any]] = []
    for i, r in enumerate(seg.replies):
        u = r.answers
        if u is None or u.stopped_t is None:
            continue
        wait = 0.0
        if r.tool_calls and not _sounded(r):
            # answered through a tool: the first reply that sounds after it (tool_result),
            # less the app's own tool time, which is not the service's latency
            nxt = _tool_answer(seg.replies[i + 1 :], u)
            if nxt is None:
                continue
            tool_wait = _tool_wait(seg, r)
            if tool_wait is None:
                continue  # the app's tool time is unknown: no latency claim for this turn
            wait = tool_wait
            heard = nxt.audible_t or nxt.estimated_audible_t or nxt.first_chunk_t
            tool_turns.append(
                {
                    "reply_id": nxt.reply_id,
                    "to_audio_s": None if heard is None else round(heard - u.stopped_t, 2),
                    "tool_wait_s": round(wait, 2),
                }
            )
            r = nxt
        if r.audible_t is not None:
            turns.append((r.audible_t - u.stopped_t - wait, r))
        elif r.estimated_audible_t is not None:
            estimated.append((r.estimated_audible_t - u.stopped_t - wait, r))
        elif r.first_chunk_t is not None:
            chunk_only.append(r.first_chunk_t - u.stopped_t - wait)
            kept_silent += r.audible_known
    how = "first audible agent audio"
    if not turns and estimated:
        # transcript.agent (the audible end) minus the last word's end_ms: 0.15-0.4 s late
        turns, how = estimated, "estimated audible start (word timings; up to ~0.4 s late)"
    ready = None
    origin = seg.update_t if seg.update_t is not None else seg.opened_t
    if seg.ready_t is not None and origin is not None:
        ready = round(seg.ready_t - origin, 3)
    evidence = _ev(seg, time_to_ready_s=ready, measured_to=how)
    if tool_turns:
        evidence["tool_turns"] = tool_turns[:50]  # their latency excludes the tool's wait
    if not turns:
        p50 = percentile(chunk_only, 0.5) if chunk_only else None
        evidence["first_chunk_latency_p50_s"] = None if p50 is None else round(p50, 2)
        if ready is not None and ready > SLOW_READY_S:
            return problem(
                Status.WARN,
                "slow_replies",
                f"session.ready took {ready:.1f} s",
                evidence,
                guide.fix("slow_replies", detail=f"session.ready after {ready:.1f} s"),
            )
        why = (
            _no_audible_start(len(chunk_only), kept_silent)
            if chunk_only
            else "no answered user turn"
        )
        return skipped("no_audible_start", f"Reply latency not measured: {why}", evidence)
    # a reply heard before the user's turn ended overlapped it (a barge-in): no wait at all,
    # and not a negative latency
    measured = [(v, r) for v, r in turns if v >= 0]
    overlap = len(turns) - len(measured)
    est = how.startswith("estimated")
    evidence.update(turns=len(turns), overlapping=overlap)
    p90: float | None = None
    if not measured:
        evidence.update(p50_s=None, p90_s=None, worst_s=None, per_turn_s=[])
        line = (
            "every reply overlapped the user's speech (barge-in): "
            f"{len(turns)} turn{'' if len(turns) == 1 else 's'}, no wait to measure"
        )
    else:
        values = [v for v, _ in measured]
        worst_v, worst_r = max(measured, key=lambda x: x[0])
        p50, p90 = percentile(values, 0.5), percentile(values, 0.9)
        evidence.update(
            p50_s=round(p50, 2),
            p90_s=round(p90, 2),
            worst_s=round(worst_v, 2),
            worst_at_s=_rel(seg, worst_r.audible_t or worst_r.estimated_audible_t),
            worst_reply=worst_r.reply_id,
            per_turn_s=[round(v, 2) for v in values[:300]],
        )
        line = (
            f"speech end to first audible reply{' (estimated)' if est else ''}: p50 "
            f"{p50:.2f} s, p90 {p90:.2f} s, worst {worst_v:.2f} s over {len(measured)} turns"
        )
        if overlap:
            line += f"; {overlap} more overlapped the user's speech (barge-in)"
    if ready is not None:
        line += f"; session.ready in {ready:.2f} s"
    slow = SLOW_P90_S + (ESTIMATE_SLACK_S if est else 0.0)
    if (p90 is not None and p90 > slow) or (ready is not None and ready > SLOW_READY_S):
        return problem(
            Status.WARN,
            "slow_replies",
            "Slow: " + line,
            evidence,
            guide.fix("slow_replies", detail=line),
        )
    return passed(line[0].upper() + line[1:], evidence)


def _no_audible_start(replies: int, kept_silent: int) -> str:
    """Why replies that sent audio have no audible start: what the log holds, not a guess."""
    if kept_silent == replies:
        return (
            "the reply audio kept in the log is silent, so it holds no audible start to time "
            "(the log may keep only each reply's silent lead-in)"
        )
    if kept_silent:
        return (
            f"the reply audio of {kept_silent} of {replies} replies is kept but silent, the "
            "rest is redacted or summarised (their first chunk is silent lead-in, so it is "
            "not the latency)"
        )
    return (
        "the log has no audible start (reply.audio redacted or summarised; the first "
        "chunk is silent lead-in, so it is not the latency)"
    )


def tools_result(seg: Segment, ex: Extras) -> Result | None:
    if not seg.tools:
        return None
    timeouts = _tool_timeouts(seg)
    stored = bool(seg.config.get("agent_id"))
    unjudged: list[dict[str, Any]] = []  # a stored agent's tool, unanswered: maybe an HTTP one
    missing: list[dict[str, Any]] = []
    late: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    http: list[dict[str, Any]] = []
    for c in seg.tools.values():
        if c.t is None:
            continue
        row = {"call_id": c.call_id, "name": c.name, "at_s": _rel(seg, c.t)}
        limit = timeouts.get(c.name, DEFAULT_TOOL_TIMEOUT_S)
        if timeouts.get(f"http:{c.name}"):
            http.append(row)
            continue
        if not c.answered:
            if ex.lacks_sent:
                continue
            if not owes_result(timeouts, c.name, stored):
                unjudged.append(row)
                continue
            (dropped if c.interrupted_after else missing).append(row)
        elif c.result_t is None:
            continue  # answered on an untimed line: in time or late is unknown
        elif c.timed_out or c.result_t - c.t > limit:
            late.append({**row, "after_s": round(c.result_t - c.t, 2), "timeout_s": limit})
    evidence = _ev(
        seg,
        calls=len(seg.tools),
        missing=missing[:50],
        late=late[:50],
        dropped=dropped[:50],
        stored_agent_unanswered=unjudged[:50],
    )
    worst = [
        (
            dropped,
            "tool_result_dropped",
            "{n} tool result(s) never sent after the reply was "
            "interrupted ({name}): the agent then waits in silence until the tool timeout",
        ),
        (missing, "tool_result_missing", "{n} tool.call(s) got no tool.result ({name})"),
        (
            late,
            "tool_result_late",
            "{n} tool result(s) came after the tool timeout ({name}: {after} s > {limit} s)",
        ),
    ]
    for rows, cause, text in worst:
        if rows:
            first = rows[0]
            summary = text.format(
                n=len(rows),
                name=first["name"],
                after=first.get("after_s"),
                limit=first.get("timeout_s"),
            )
            detail = f"{cause.rsplit('_', 1)[1]}: {first['call_id']}"
            return problem(
                Status.WARN, cause, summary, evidence, guide.fix("tool_results", detail=detail)
            )
    if ex.lacks_sent:
        return skipped(
            "log_incomplete",
            f"{len(seg.tools)} tool call(s); the log has no sent messages, so results are unknown",
            evidence,
        )
    if unjudged:
        names = ", ".join(sorted({r["name"] for r in unjudged}))
        return passed(
            f"{len(seg.tools)} tool call(s); {len(unjudged)} to the stored agent's {names} got "
            "no tool.result, which is right for HTTP tools (the service runs them itself); "
            "a client tool must be answered",
            evidence,
        )
    untimed = sum(1 for c in seg.tools.values() if c.answered and c.result_t is None)
    if untimed:
        evidence["untimed_results"] = untimed
        return passed(
            f"{len(seg.tools)} tool call(s), each answered ({untimed} result(s) on lines "
            "without a time: whether in time is not known)",
            evidence,
        )
    return passed(f"{len(seg.tools)} tool call(s), each answered in time", evidence)


def _tool_timeouts(seg: Segment) -> dict[str, float]:
    return tool_timeouts(seg.config.get("tools"))


def tool_timeouts(tools: object) -> dict[str, float]:
    """A session.update's `tools`: every declared tool by name with its `timeout_seconds`
    (the default when it has none), and `http:<name>` for the tools the service calls
    itself (their result is not the app's)."""
    out: dict[str, float] = {}
    if isinstance(tools, list):
        for tool in tools:
            if not isinstance(tool, dict):
                continue
            name = str(tool.get("name", ""))
            t = finite(tool.get("timeout_seconds"))
            out[name] = t if t is not None and t > 0 else DEFAULT_TOOL_TIMEOUT_S
            if tool.get("http"):
                out[f"http:{name}"] = 1.0
    return out


def owes_result(timeouts: dict[str, float], name: str, stored_agent: bool) -> bool:
    """Whether the app must answer a `tool.call` for `name` (`timeouts` from
    `tool_timeouts`). Not for an HTTP tool, which the service calls itself; nor, in a
    stored agent's session, for a tool the session never declared: the agent's HTTP tools
    still reach the app as an informational `tool.call` (field-facts §9), and only the
    stored agent knows which of its tools those are."""
    if f"http:{name}" in timeouts:
        return False
    return not stored_agent or name in timeouts


ERROR_GUIDE = {
    "invalid_audio": "malformed_audio",
    "unauthorized": "token_auth",
    "forbidden": "account_access",
    "session_not_found": "resume_refused",
    "session_forbidden": "resume_refused",
    "session_expired": "token_lifetime",
    "server_error": "service_side",
    "internal_error": "service_side",
    "agent_init_failed": "service_side",
    "agent_timeout": "service_side",
}


def _error_fix(gid: str, first: Any) -> Any:
    """The guide's fix; `validate-audio` is offered only when audio caused the error."""
    from dataclasses import replace

    fx = guide.fix(gid, code=first.code, detail=f"{first.code}: {first.message}")
    cause = first.cause if isinstance(first.cause, dict) else {}
    if first.code != "invalid_audio" and cause.get("type") != "input.audio":
        fx = replace(fx, commands=[c for c in fx.commands if "validate-audio" not in c])
    return fx


def _dropped_then_resumed(seg: Segment, ex: Extras) -> bool:
    """A drop (no close frame) the app recovered from: a later connection resumed the
    session. README: a drop followed by a resume is not a hang-up."""
    last = seg.closes[-1] if seg.closes else None
    return (
        ex.resumed_later
        and last is not None
        and last.code in (None, 1006)
        and seg.sent_end_t is None
        and seg.ended_event is None
    )


def errors_result(seg: Segment, ex: Extras | None = None) -> Result:
    errs = [e for e in seg.errors if not (seg.resume_of and e.code in RESUME_CODES)]
    closes = [
        {"at_s": _rel(seg, c.t), "code": c.code, "reason": c.reason, "by": c.by} for c in seg.closes
    ]
    evidence = _ev(
        seg,
        errors=[
            {
                "at_s": _rel(seg, e.t),
                "code": e.code,
                "message": e.message,
                "param": e.param,
                "caused_by": e.cause,
                "guide": ERROR_GUIDE.get(e.code, "session_errors"),
            }
            for e in errs[:100]
        ],
        closes=closes,
    )
    if errs:
        first = errs[0]
        codes = sorted({e.code for e in errs})
        gid = ERROR_GUIDE.get(first.code, "session_errors")
        where = f" (param {first.param})" if first.param else ""
        return problem(
            Status.FAIL,
            "session_error",
            f"{len(errs)} session.error: {', '.join(codes)}; first: {first.code} "
            f'"{first.message}"{where}',
            evidence,
            _error_fix(gid, first),
        )
    bad = protocol_close(seg)
    if bad is not None:
        c, what = bad
        return problem(
            Status.WARN,
            "protocol_close",
            f"The service closed the connection with {what}",
            evidence,
            guide.fix("protocol_close", detail=f"close {c.code} {c.reason or ''}".strip()),
        )
    if ex is not None and _dropped_then_resumed(seg, ex):
        return passed(
            "No session.error; the connection dropped (no close frame) and a later "
            "connection resumed the session",
            evidence,
        )
    abrupt = [c for c in seg.closes if c.code is None or c.code == 1006 or c.code >= 1011]
    if abrupt and not seg.sent_end and seg.ended_event is None:
        c = abrupt[0]
        what = "without a close frame (1006)" if c.code in (None, 1006) else f"with {c.code}"
        return problem(
            Status.WARN,
            "abrupt_close",
            f"The connection closed {what}",
            evidence,
            guide.fix("abrupt_close", detail=f"close {code_text(c.code)} {c.reason or ''}".strip()),
        )
    if closes:
        c0 = seg.closes[-1]
        shown = f"{code_text(c0.code)} {c0.reason or ''}".strip()
        return passed(f"No session.error; closed {shown}", evidence)
    return passed("No session.error", evidence)


SERVER_CLOSE_CODES = frozenset({1008, 1011, 1012, 1013, 1014})
"""Close codes a server sends (policy, internal error, restart, try again, bad gateway)."""
REFUSAL_CODES = RESUME_CODES | {
    "unauthorized",
    "forbidden",
    "agent_init_failed",
    "agent_timeout",
    "server_error",
}
"""session.error codes that refuse a connection before any session starts (protocol.md:
auth, resume, the agent failing to start, capacity at the handshake)."""

PROTOCOL_CLOSE_CODES = {
    1002: "1002 (protocol error)",
    1003: "1003 (data it cannot accept)",
    1007: "1007 (invalid data, e.g. text that is not UTF-8)",
    1009: "1009 (message too big)",
}
"""Close codes a peer sends when the other broke the WebSocket protocol: from the service,
the app's fault (a frame over its size limit, bad UTF-8, a binary frame it does not take)."""
STOP_REASON = "agent-doctor watch stopped"
"""The reason of the 1001 the relay sends every open session when watch stops (Ctrl-C)."""


def code_text(code: int | None) -> str:
    """A close code as the user reads it: a close without a code is one without a frame."""
    return "no close frame" if code is None else str(code)


def protocol_close(seg: Segment) -> tuple[Close, str] | None:
    """The service's last close when it is a protocol close (the app's fault), with what it
    says: the code's meaning and, for 1009, the sizes from the reason."""
    c = seg.closes[-1] if seg.closes else None
    if c is None or c.by in ("app", "relay") or c.code not in PROTOCOL_CLOSE_CODES:
        return None
    return c, protocol_close_text(c.code, c.reason)


def protocol_close_text(code: int, reason: str | None) -> str:
    """The code's meaning and, for 1009, the sizes websockets names in the reason."""
    what = PROTOCOL_CLOSE_CODES.get(code, str(code))
    size = re.search(r"(\d+) bytes exceeds limit of (\d+) bytes", reason or "")
    if size:
        return what + f": a message of {int(size[1])} bytes, over the limit of {int(size[2])}"
    return what + (f": {reason}" if reason else "")


def relay_closed(seg: Segment) -> str | None:
    """Why agent-doctor watch's relay (not the app) closed the connection with a code, or
    None (a relay close without one is a drop it could not attribute: judged as a drop)."""
    c = seg.closes[-1] if seg.closes else None
    if c is None or c.by != "relay" or c.code is None:
        return None
    if c.code == 1001 and c.reason == STOP_REASON:
        return "agent-doctor watch was stopped while the session was open"
    said = f" {c.reason}" if c.reason else ""
    return f"agent-doctor watch's relay closed the connection ({c.code}{said})"


ERROR_BEFORE_CLOSE_S = 5.0


def service_closed(seg: Segment) -> str | None:
    """Why the close was the service's doing (a server close code, or a session.error just
    before it), or None: then a missing session.end is not the app's to fix."""
    if not seg.closes:
        return None
    c = seg.closes[-1]
    if c.code in SERVER_CLOSE_CODES or (c.by == "service" and c.code not in (None, 1000, 1006)):
        return f"the service closed the connection ({c.code}{' ' + c.reason if c.reason else ''})"
    last = seg.errors[-1] if seg.errors else None
    if last is not None and (
        c.t is None or last.t is None or 0 <= c.t - last.t <= ERROR_BEFORE_CLOSE_S
    ):
        return f"the connection closed ({code_text(c.code)}) after session.error {last.code}"
    return None


def _after_user_left(seg: Segment) -> tuple[float | None, bool]:
    """Seconds from the user's last activity (speech, the app's last audio) to the end the
    log knows, and whether that end is the vendor's billed end (else the close)."""
    marks = [seg.audio.last_t] + [u.stopped_t or u.started_t for u in seg.users]
    left = max((t for t in marks if t is not None), default=None)
    vendor = seg.ended_meta_t is not None
    end = seg.ended_meta_t if vendor else seg.closes[-1].t if seg.closes else None
    if left is None or end is None or end < left:
        return None, vendor
    return round(end - left, 1), vendor


def _billed(seg: Segment, ev: dict[str, Any]) -> str:
    """The billing sentence: the seconds measured, else the grace the service may bill."""
    secs, vendor = _after_user_left(seg)
    if secs is None:
        return f"up to {GRACE_S:.0f} s after the user left may be billed"
    if vendor:
        ev["billed_after_user_left_s"] = secs
        return f"{secs:.0f} s were billed after the user's last activity"
    ev["user_left_to_close_s"] = secs
    return (
        f"{secs:.1f} s from the user's last activity to the close, plus up to "
        f"{GRACE_S:.0f} s of grace may be billed"
    )


def billing_result(seg: Segment, ex: Extras) -> Result | None:
    if seg.ready_t is None and seg.session_id is None:
        return None  # never became a session (refused resume or credential)
    ev = _ev(seg, grace_s_may_be_billed=GRACE_S)
    if seg.sent_end:
        return passed("The app sent session.end", _ev(seg))
    meta = seg.ended_meta
    if meta is not None and meta.get("public_reason") is not None:
        ev.update(close_reason=meta.get("reason"), public_reason=meta.get("public_reason"))
        if meta.get("public_reason") == "client_end":
            return passed("Ended by the client (public reason client_end)", ev)
        return problem(
            Status.WARN,
            "no_session_end",
            f"Closed without session.end (public reason {meta.get('public_reason')}): "
            + _billed(seg, ev),
            ev,
            guide.fix("billing", detail=f"public reason {meta.get('public_reason')}"),
        )
    if _dropped_then_resumed(seg, ex):
        return passed(
            "Not a hang-up: the connection dropped and a later connection resumed the "
            "session (its end is judged there)",
            _ev(seg, resumed_later=True),
        )
    by_relay = relay_closed(seg) if seg.ended_event is None else None
    if by_relay is not None:
        return passed(f"Not the app's close: {by_relay}", _ev(seg))
    by_service = service_closed(seg) if seg.ended_event is None else None
    if by_service is not None:
        return passed(f"Not the app's close: {by_service}", _ev(seg))
    if ex.lacks_sent or ex.lacks_end:
        if seg.ended_event is not None:
            return passed(
                "session.ended arrived (the log does not show what the app sent; that suggests "
                "the app sent session.end)",
                _ev(seg),
            )
        if not seg.ended:
            return skipped("log_incomplete", "The log ends before the session did", _ev(seg))
        return problem(
            Status.WARN,
            "no_session_end",
            "No session.ended before the close: the app probably closed without session.end; "
            + _billed(seg, ev),
            ev,
            guide.fix("billing", detail="no session.ended in the log"),
        )
    if not seg.ended:
        return skipped("log_incomplete", "The log ends before the session did", _ev(seg))
    if seg.ended_event is not None and any(e.code == "session_expired" for e in seg.errors):
        return passed("Ended by the service (session_expired)", _ev(seg))
    codes = [c.code for c in seg.closes]
    ev["closes"] = codes
    return problem(
        Status.WARN,
        "no_session_end",
        f"The app closed the connection ({code_text(codes[0]) if codes else 'no close logged'}) "
        "without "
        "sending session.end: " + _billed(seg, ev),
        ev,
        guide.fix("billing", detail=f"close {code_text(codes[0]) if codes else 'not logged'}"),
    )


def protocol_result(seg: Segment) -> Result | None:
    if seg.unknown_service_types and not (
        seg.unknown_types
        or seg.old_fields
        or seg.unknown_fields
        or seg.binary_frames
        or seg.text_frames
    ):
        return passed(
            "The service sent types this agent-doctor does not know: "
            + ", ".join(sorted(seg.unknown_service_types)[:5])
            + " (a newer API? update agent-doctor)",
            _ev(seg, unknown_service_types=seg.unknown_service_types),
        )
    if not (
        seg.unknown_types
        or seg.old_fields
        or seg.unknown_fields
        or seg.binary_frames
        or seg.text_frames
    ):
        return None
    evidence = _ev(
        seg,
        unknown_types=seg.unknown_types,
        old_fields=seg.old_fields,
        unknown_fields=dict(list(seg.unknown_fields.items())[:50]),
        binary_frames=seg.binary_frames,
        text_frames=seg.text_frames,
    )
    parts = []
    if seg.unknown_types:
        parts.append("unknown message types " + ", ".join(sorted(seg.unknown_types)[:5]))
    if seg.old_fields:
        parts.append(
            "old fields " + "; ".join(f"{k} (now {v})" for k, v in list(seg.old_fields.items())[:3])
        )
    if seg.unknown_fields:
        parts.append("unknown fields " + ", ".join(sorted(seg.unknown_fields)[:5]))
    if seg.binary_frames:
        parts.append(f"{seg.binary_frames} binary frame(s) (the API reads JSON text frames)")
    if seg.text_frames:
        parts.append(f"{seg.text_frames} text frame(s) that are not JSON objects")
    return problem(
        Status.WARN,
        "unknown_message",
        "The app sends what the service does not know: " + "; ".join(parts),
        evidence,
        guide.fix("outdated_client", detail="; ".join(parts)),
    )


def _app_audio_problem(content: Result, evidence: dict[str, Any]) -> Result:
    """The validate-audio core's own finding on the app's audio, as a session result."""
    assert content.cause is not None and content.fix is not None
    return problem(
        content.status, content.cause, "The app's audio: " + content.summary, evidence, content.fix
    )


def audio_result(seg: Segment, ex: Extras) -> Result | None:
    a = seg.audio
    if a.chunks == 0:
        return None
    audio_s = a.bytes / 48000
    span = (a.last_t - a.first_t) if a.first_t is not None and a.last_t is not None else None
    sizes = sorted(a.sizes)
    chunk_ms = sizes[len(sizes) // 2] / 48 if sizes else None
    evidence = _ev(
        seg,
        chunks=a.chunks,
        audio_s=round(audio_s, 2),
        wall_s=None if span is None else round(span, 2),
        realtime_ratio=None if not span else round(audio_s / span, 2),
        median_chunk_ms=None if chunk_ms is None else round(chunk_ms, 1),
        max_ahead_s=round(a.max_ahead_s, 2),
        max_gap_s=round(a.max_gap_s, 2),
        before_ready=a.before_ready,
        invalid_base64=a.invalid,
    )
    if ex.audio_result is not None:
        evidence["content"] = ex.audio_result.evidence
    declared = _declared_input(seg)
    if declared:
        evidence["declared"] = declared
    if a.invalid:
        return problem(
            Status.FAIL,
            "base64_invalid",
            f"{a.invalid} of {a.chunks} input.audio messages are not valid base64",
            evidence,
            guide.fix("audio_base64", detail=f"{a.invalid} messages"),
        )
    mismatch = _mismatch(declared, ex.audio_result)
    if mismatch:
        return problem(
            Status.FAIL,
            "format_mismatch",
            mismatch,
            evidence,
            guide.fix("sample_rate", detail=mismatch),
        )
    content = ex.audio_result
    if content is not None and content.status is Status.FAIL:
        return _app_audio_problem(content, evidence)
    if a.before_ready:  # before a content warning: the ordering bug is the app's to fix first
        also = (
            f"; also, the app's audio: {content.summary}"
            if content is not None and content.status is Status.WARN
            else ""
        )
        return problem(
            Status.WARN,
            "audio_before_ready",
            f"{a.before_ready} input.audio message(s) sent before session.ready{also}",
            evidence,
            guide.fix("audio_before_ready"),
        )
    if content is not None and content.status is Status.WARN:
        return _app_audio_problem(content, evidence)
    if a.bytes == 0:
        return passed(f"{a.chunks} input.audio messages; the log redacts their audio", evidence)
    if a.max_ahead_s > BURST_AHEAD_S:
        return problem(
            Status.WARN,
            "audio_pacing",
            f"Audio sent faster than real time: up to {a.max_ahead_s:.1f} s ahead of the clock",
            evidence,
            guide.fix("audio_chunking", detail=f"{a.max_ahead_s:.1f} s ahead"),
        )
    if a.max_gap_s > GAP_S:
        return problem(
            Status.WARN,
            "audio_pacing",
            f"The app stopped sending audio for {a.max_gap_s:.1f} s mid-session (the service "
            "hears nothing then, not even the user starting to speak)",
            evidence,
            guide.fix("audio_chunking", detail=f"a {a.max_gap_s:.1f} s gap"),
        )
    if chunk_ms is not None and not CHUNK_MS_RANGE[0] <= chunk_ms <= CHUNK_MS_RANGE[1]:
        return problem(
            Status.WARN,
            "audio_pacing",
            f"Chunks of {chunk_ms:.0f} ms (about 50 ms each is what the service expects)",
            evidence,
            guide.fix("audio_chunking", detail=f"median chunk {chunk_ms:.0f} ms"),
        )
    line = f"{a.chunks} chunks, {audio_s:.1f} s of audio"
    if span:
        line += f" over {span:.1f} s (x{audio_s / span:.2f} real time)"
    if chunk_ms is not None:
        line += f", ~{chunk_ms:.0f} ms each"
    return passed(line, evidence)


def _declared_input(seg: Segment) -> dict[str, Any] | None:
    inp = seg.config.get("input")
    if isinstance(inp, dict) and isinstance(inp.get("format"), dict):
        return dict(inp["format"])
    return None


def _mismatch(declared: dict[str, Any] | None, content: Result | None) -> str | None:
    if not declared or content is None:
        return None
    enc = str(declared.get("encoding") or "audio/pcm")
    detected = content.evidence.get("detected", {}) if isinstance(content.evidence, dict) else {}
    found = detected.get("encoding") if isinstance(detected, dict) else None
    if enc in ("audio/pcmu", "audio/pcma") and found == "s16le":
        return f"session.update declares {enc} but the app sends 16-bit PCM"
    if enc == "audio/pcm" and found in ("mulaw", "alaw"):
        return f"session.update declares audio/pcm but the app sends G.711 {found}"
    rate = declared.get("sample_rate")
    if enc == "audio/pcm" and isinstance(rate, int) and rate != 24000:
        return f"session.update declares {rate} Hz; audio/pcm is read at 24000 Hz only"
    return None


def resume_result(seg: Segment, fresh_after: bool, retried: int) -> Result | None:
    if seg.resume_of is None:
        return None
    answer = seg.resume_answer or "no answer in the log"
    evidence = _ev(
        seg, resumed=seg.resume_of, answer=answer, fresh_session_after=fresh_after, retries=retried
    )
    evidence["session_id"] = seg.session_id or seg.resume_of
    if answer == "ready":
        return passed(f"session.resume of {seg.resume_of} answered with session.ready", evidence)
    if answer in RESUME_CODES or answer != "no answer in the log":
        if not fresh_after:
            how = f"retried the resume {retried} more time(s)" if retried else "gave up"
            return problem(
                Status.FAIL,
                "resume_not_handled",
                f"session.resume answered {answer}; the app {how} instead of starting a fresh "
                "session",
                evidence,
                guide.fix("resume_refused", code=answer, detail=how),
            )
        return problem(
            Status.WARN,
            "resume_rejected",
            f"session.resume answered {answer}; the app then started a fresh session (right)",
            evidence,
            guide.fix("resume_refused", code=answer),
        )
    return skipped(
        "log_incomplete", "session.resume sent; the log ends before the answer", evidence
    )


def log_result(seg: Segment, ex: Extras) -> Result:
    if seg.ready_t is None and not seg.session_id and ex.shape.startswith("capture"):
        # agent-doctor's own capture records every frame: no session.ready means there
        # was no session (a refused key or resume, an unreachable service), not a gap
        return passed(
            f"No session was started on this connection (no session.ready): nothing more "
            f"for the log to hold ({ex.shape})",
            _ev(seg, shape=ex.shape, lacks=[]),
        )
    lacks = []
    # refused before any session (auth or resume refusals only): no id to log; any other
    # error (invalid_audio mid-session) leaves a session whose id the log should hold
    never_ready = (
        seg.ready_t is None
        and bool(seg.errors)
        and all(e.code.lower() in REFUSAL_CODES for e in seg.errors)
    )
    if not seg.session_id and not never_ready:
        lacks.append("session id (session.ready.session_id)")
    if not ex.vendor_artifacts:
        if not seg.closes and seg.ended_meta is None:
            lacks.append("close code and reason")
        if not seg.has_recv_time:
            lacks.append("the time each message was received (start time)")
        if not ex.region and not seg.endpoint:
            lacks.append("region / endpoint")
    evidence = _ev(seg, shape=ex.shape, lacks=lacks, sent_messages_logged=not ex.lacks_sent)
    if ex.lacks_sent and not ex.vendor_artifacts:
        evidence["note"] = (
            "without the app's sent messages, session.end, tool results and the app's audio "
            "cannot be checked"
        )
    if not lacks:
        return passed(f"The log has what support asks for ({ex.shape})", evidence)
    return problem(
        Status.WARN,
        "log_incomplete",
        "The log lacks: " + "; ".join(lacks),
        evidence,
        guide.fix("session_logging", detail="missing " + ", ".join(lacks)),
    )


def silent_replies_result(seg: Segment) -> Result | None:
    """Replies that completed without a word or a sound (field #7: an LLM the account may
    not call fails this way, with no error)."""
    silent = [
        r
        for r in seg.replies
        if r.status == "completed"
        and not r.tool_calls
        and not r.text_unknown
        and not (r.spoken or "").strip()
        and not r.deltas
        and r.audible_t is None
        and r.estimated_audible_t is None
    ]
    answers = [r for r in seg.replies[1:] if not r.tool_calls] or seg.replies
    # a few silent replies among spoken ones are premature turn ends (§3.6), not a failure
    if len(silent) < SILENT_REPLIES_MIN or len(silent) < SILENT_SHARE * len(answers):
        return None
    evidence = _ev(
        seg,
        silent=len(silent),
        replies=len(seg.replies),
        reply_ids=[r.reply_id for r in silent[:20]],
    )
    return problem(
        Status.WARN,
        "silent_replies",
        f"{len(silent)} of {len(seg.replies)} replies completed with no text and no audible "
        "audio, and no session.error",
        evidence,
        guide.fix("silent_replies", detail=f"{len(silent)} silent replies"),
    )


def ignored_messages_result(seg: Segment) -> Result | None:
    if not seg.conversation_messages:
        return None
    return problem(
        Status.WARN,
        "ignored_message",
        f"The app sent {seg.conversation_messages} conversation.message(s): the live service "
        "accepts them but the model never sees their content",
        _ev(seg, conversation_messages=seg.conversation_messages),
        guide.fix("conversation_message"),
    )


def _minutes(seg: Segment) -> float | None:
    if seg.first_t is None or seg.last_t is None or seg.last_t <= seg.first_t:
        return None
    return (seg.last_t - seg.first_t) / 60.0


def judge(seg: Segment, ex: Extras, fresh_after: bool = False, retried: int = 0) -> list[Result]:
    """Every result for one session, in the report's order."""
    rows = interruption_rows(seg)
    out: list[Result | None] = [
        echo_result(seg, ex, rows),
        interruptions_result(seg, rows),
        eager_result(seg, rows),
        latency_result(seg),
        tools_result(seg, ex),
        errors_result(seg, ex),
        resume_result(seg, fresh_after, retried),
        billing_result(seg, ex),
        audio_result(seg, ex),
        protocol_result(seg),
        log_result(seg, ex),
        silent_replies_result(seg),
        ignored_messages_result(seg),
    ]
    ids = {
        0: "session-echo",
        1: "session-interruptions",
        2: "session-turn-detection",
        3: "session-latency",
        4: "session-tools",
        5: "session-errors",
        6: "session-resume",
        7: "session-billing",
        8: "session-audio",
        9: "session-protocol",
        10: "session-log",
        11: "session-replies",
        12: "session-context",
    }
    return [r.with_meta(ids[i], TITLES[ids[i]], 0) for i, r in enumerate(out) if r is not None]


TITLES = {
    "session-echo": "Echo loop",
    "session-interruptions": "Interruptions",
    "session-turn-detection": "Turns cut by turn detection",
    "session-latency": "Reply latency",
    "session-tools": "Tool calls",
    "session-errors": "Errors and closes",
    "session-resume": "Resume",
    "session-billing": "session.end and billing",
    "session-audio": "The app's audio",
    "session-protocol": "Outdated or wrong client",
    "session-log": "What the log lacks",
    "session-replies": "Silent replies",
    "session-context": "Context the model never sees",
}
