"""An app's test-harness report (session-formats §7.3 (a)) as events, so one analysis serves all.

Two variants: a barge-in report (one session at the top level, with `ev{}` describing the
cut) and a session-end report (`results[]`, one session each). Every time is epoch ms on
the client's clock, so the events carry it as the receive time, as an app log would.

What the report keeps becomes the messages that produced it: each turn's user speech (its
start, `speechEndAt`, the final transcripts of `heard[]`), each reply (`startedAt`, a first
audio chunk at `firstAudioAt`, its end), the tool calls with the results the harness sent,
and the raw `session.ended`. What it does not keep is said, never guessed: audio content
(so no audible start: `firstAudioAt` includes the silent lead-in), the app's other sent
messages, close codes, and (barge-in variant) server errors. `HarnessSession.cannot_judge`
names those checks with the reason, for the analyzer to report as not judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from doctor.json_numbers import finite
from doctor.session.events import META_OPEN, AudioInfo, Event, make_event, meta

MAX_COUNTED_ERRORS = 100


@dataclass
class HarnessSession:
    """One session of a harness report: its events in time order, and what it lacks."""

    session_id: str | None
    events: list[Event]
    variant: str
    cannot_judge: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _is_session(obj: object) -> bool:
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("turns"), list)
        and isinstance(obj.get("replies"), list)
    )


def is_harness_report(doc: object) -> bool:
    """Either variant of §7.3 (a): `turns[]` with `replies[]` at the top, or `results[]`
    of such. A vendor timeline also has `turns`, but never `replies`."""
    if not isinstance(doc, dict):
        return False
    if _is_session(doc):
        return True
    results = doc.get("results")
    return (
        isinstance(results, list)
        and bool(results)
        and all(_is_session(r) for r in results if isinstance(r, dict))
        and any(_is_session(r) for r in results)
    )


def _ms(obj: dict[str, Any], key: str) -> float | None:
    v = finite(obj.get(key))
    return None if v is None else v / 1000.0


def _dicts(value: object) -> list[dict[str, Any]]:
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def _svc(kind: str, t: float | None, **fields: Any) -> Event:
    return make_event({"type": kind, **fields}, "service", t)


def _reply_id(i: int) -> str:
    return f"replies[{i}]"  # points into the report: it keeps no reply ids


def _index(value: object, n: int) -> int | None:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < n else None
    )


def _answers(turns: list[dict[str, Any]], replies: list[dict[str, Any]]) -> dict[int, int]:
    """Which reply answered each turn: the call's `answerReply`, else the reply with the
    turn's `firstAudioAt`, else the first reply started inside the turn after its speech."""
    out: dict[int, int] = {}
    taken: set[int] = set()
    for k, turn in enumerate(turns):
        found = None
        for call in _dicts(turn.get("calls")):
            found = _index(call.get("answerReply"), len(replies))
            if found is not None:
                break
        first = turn.get("firstAudioAt")
        if found is None and first is not None:
            found = next(
                (
                    i
                    for i, r in enumerate(replies)
                    if i not in taken and r.get("firstAudioAt") == first
                ),
                None,
            )
        if found is None:
            lo = _ms(turn, "speechEndAt") or _ms(turn, "startedAt")
            hi = _ms(turn, "idleAt")
            for i, r in enumerate(replies):
                t = _ms(r, "startedAt")
                if i in taken or t is None or lo is None or t < lo or (hi is not None and t > hi):
                    continue
                found = i
                break
        if found is not None:
            out[k] = found
            taken.add(found)
    return out


def _user_events(turn: dict[str, Any], start: float | None) -> list[Event]:
    out: list[Event] = []
    end = _ms(turn, "speechEndAt")
    if start is not None:
        out.append(_svc("input.speech.started", start))
    if end is not None:
        out.append(_svc("input.speech.stopped", end))
    heard = (
        [h for h in turn.get("heard", []) if isinstance(h, str)]
        if isinstance(turn.get("heard"), list)
        else []
    )
    if heard:
        out.append(_svc("transcript.user", end if end is not None else start, text=" ".join(heard)))
    return out


def _session(obj: dict[str, Any], variant: str, cut: dict[str, Any] | None) -> HarnessSession:
    turns, replies = _dicts(obj.get("turns")), _dicts(obj.get("replies"))
    answer_of = {r: k for k, r in _answers(turns, replies).items()}
    events: list[Event] = []
    cut_end = _ms(cut, "cutStreamEndAt") if cut else None
    for turn in turns:
        start = _ms(turn, "startedAt")
        if cut_end is not None and _ms(turn, "speechEndAt") == cut_end:
            start = _ms(cut, "cutStreamStartAt") if cut else start  # spoke over the reply
        events.extend(_user_events(turn, start))
    calls_of: dict[int, list[dict[str, Any]]] = {}
    for turn in turns:
        for call in _dicts(turn.get("calls")):
            i = _index(call.get("transitionReply"), len(replies))
            calls_of.setdefault(-1 if i is None else i, []).append(call)
    cut_first = _ms(cut, "answerFirstAudioAt") if cut else None
    for i, r in enumerate(replies):
        events.extend(
            _reply_events(i, r, turns, answer_of.get(i), calls_of.get(i, []), cut, cut_first)
        )
    for call in calls_of.get(-1, []):  # a call whose issuing reply the report does not name
        events.extend(_call_events(call, None))
    ended = obj.get("ended")
    if isinstance(ended, dict) and ended.get("type") in (None, "session.ended"):
        events.append(make_event({**ended, "type": "session.ended"}, "service", None))
    order = {id(e): n for n, e in enumerate(events)}
    events.sort(key=lambda e: (e.t if e.t is not None else float("inf"), order[id(e)]))
    first = next((e.t for e in events if e.t is not None), None)
    sid = obj.get("sessionId") if isinstance(obj.get("sessionId"), str) else None
    head: list[Event] = []
    cannot: dict[str, str] = {
        "session-protocol": "the report keeps no message the app sent besides tool results",
        "session-latency": "the report keeps when reply audio arrived, not when it became "
        "audible (replies open with silence), and its speech end is the harness's own",
    }
    counts = obj.get("events")
    if isinstance(counts, dict):
        n = sum(
            c
            for k, c in counts.items()
            if k in ("session.error", "error") and isinstance(c, int) and not isinstance(c, bool)
        )
        for _ in range(min(max(0, n), MAX_COUNTED_ERRORS)):
            head.append(
                _svc(
                    "session.error",
                    None,
                    code="unknown",
                    message="counted in the report's events{}; its code and message are not kept",
                )
            )
    else:
        cannot["session-errors"] = "the report keeps no server errors or close codes"
    url = _endpoint(obj.get("url"))
    if url:
        head.append(meta(META_OPEN, first, url=url))
    head.append(_svc("session.ready", first, session_id=sid))
    audio = obj.get("audio")
    sent = audio.get("chunksSent") if isinstance(audio, dict) else None
    counted = f" counts {sent} audio chunks sent but" if isinstance(sent, int) else ""
    cannot["session-audio"] = f"the report{counted} keeps neither the audio nor its timing"
    if not isinstance(ended, dict):
        cannot["session-billing"] = (
            "the report keeps neither session.ended nor the close, nor whether session.end was sent"
        )
    notes = _notes(obj)
    return HarnessSession(sid, head + events, variant, cannot, notes)


def _reply_events(
    i: int,
    r: dict[str, Any],
    turns: list[dict[str, Any]],
    turn_k: int | None,
    calls: list[dict[str, Any]],
    cut: dict[str, Any] | None,
    cut_first: float | None,
) -> list[Event]:
    rid = _reply_id(i)
    started, first, done = _ms(r, "startedAt"), _ms(r, "firstAudioAt"), _ms(r, "doneAt")
    turn = turns[turn_k] if turn_k is not None else None
    text = turn.get("agentReply") if turn is not None else None
    interrupted = bool(turn.get("interrupted")) if turn is not None else False
    cut_t = None
    if cut is not None and cut_first is not None and first == cut_first:
        interrupted = True
        cut_t = _ms(cut, "interruptedAt")
        if isinstance(cut.get("cutAgentText"), str):
            text = cut["cutAgentText"]
    known = isinstance(text, str)
    out = [
        _svc(
            "reply.started",
            started if started is not None else first,
            reply_id=rid,
            **({} if known else {"_text_unknown": True}),
        )
    ]
    for call in calls:
        out.extend(_call_events(call, started))
    if first is not None:
        size = r.get("audioBytes")
        info = AudioInfo(
            size if isinstance(size, int) and not isinstance(size, bool) else None, True
        )
        out.append(
            make_event({"type": "reply.audio", "reply_id": rid}, "service", first, audio=info)
        )
    end = cut_t if cut_t is not None else done
    if known:
        out.append(_svc("transcript.agent", end, reply_id=rid, text=text, interrupted=interrupted))
    status = "interrupted" if interrupted else "completed"
    out.append(_svc("reply.done", done if done is not None else end, reply_id=rid, status=status))
    return out


def _call_events(call: dict[str, Any], not_before: float | None) -> list[Event]:
    cid = call.get("callId")
    if not isinstance(cid, str):
        return []
    t = _ms(call, "callAt")
    if t is not None and not_before is not None:
        t = max(t, not_before)  # ms rounding must not move the call before its reply
    out = [
        _svc("tool.call", t, call_id=cid, name=call.get("name"), arguments=call.get("arguments"))
    ]
    sent = _ms(call, "sentAt")
    if sent is not None:
        out.append(
            make_event(
                {"type": "tool.result", "call_id": cid, "is_error": call.get("isError") is True},
                "app",
                sent,
            )
        )
    return out


def _endpoint(url: object) -> str | None:
    """The URL without what can carry a credential (a `?token=` query, `user:pass@`)."""
    if not isinstance(url, str) or not url:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return None
    return f"{parts.scheme}://{host}{port}{parts.path}" if host else None


def _notes(obj: dict[str, Any]) -> list[str]:
    notes = []
    assertions = obj.get("assertions")
    if isinstance(assertions, dict):
        failed = [str(k)[:40] for k, v in assertions.items() if v is False]
        if failed:
            notes.append("harness assertions false: " + ", ".join(failed[:10]))
    failures = obj.get("failures")
    if isinstance(failures, list) and failures:
        notes.append(f"harness reports {len(failures)} failure(s)")
    if obj.get("ok") is False:
        notes.append("harness marked the session not ok")
    return notes


def harness_sessions(doc: dict[str, Any]) -> list[HarnessSession]:
    """Every session of a harness report, in file order."""
    if _is_session(doc):
        cut = doc.get("ev") if isinstance(doc.get("ev"), dict) else None
        return [_session(doc, "barge-in", cut)]
    return [_session(r, "session-end", None) for r in _dicts(doc.get("results")) if _is_session(r)]
