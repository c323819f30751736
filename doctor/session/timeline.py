"""The vendor's timeline.json as events (session-formats §3), so one analysis serves all.

Each turn becomes the messages that produced it, on the server clock: user speech start and
end (the end is the commit), the user transcript, the reply's creation (audible start minus
`time_to_first_audio_ms`, which counts from creation), a `meta.agent_audible` at the audible
start, tool calls with their results, and the reply's end. Irregular shapes (§3.6) stay
what they are: a `user_speech_1` turn is a user turn without a reply; a null audible start
is unknown, never zero.
"""

from __future__ import annotations

from typing import Any

from doctor.json_numbers import finite
from doctor.session.events import META_AUDIBLE, META_CONFIG, META_ENDED, Event, make_event, meta


def _ms(turn: dict[str, Any], key: str) -> float | None:
    v = finite(turn.get(key))
    return None if v is None else v / 1000.0


def _svc(kind: str, t: float | None, **fields: Any) -> Event:
    ev = make_event({"type": kind, **fields}, "service", None)
    ev.t = ev.server_t = t
    return ev


def _app(kind: str, t: float | None, **fields: Any) -> Event:
    return make_event({"type": kind, **fields}, "app", t)


def _turn_events(turn: dict[str, Any]) -> list[Event]:
    out: list[Event] = []
    us, ue = _ms(turn, "user_speech_started_at_ms"), _ms(turn, "user_speech_ended_at_ms")
    if us is not None:
        out.append(_svc("input.speech.started", us))
    if ue is not None:
        out.append(_svc("input.speech.stopped", ue))
    text = turn.get("user_transcript")
    if isinstance(text, str):
        out.append(_svc("transcript.user", ue if ue is not None else us, text=text))
    rid = turn.get("turn_id")
    if not isinstance(rid, str) or not rid.startswith("resp_"):
        return out
    audible = _ms(turn, "agent_reply_started_at_ms")
    ended = _ms(turn, "agent_reply_ended_at_ms")
    ttfa = _ms(turn, "time_to_first_audio_ms")
    created = audible - ttfa if audible is not None and ttfa is not None else None
    if created is None:
        created = ue if ue is not None else (audible or ended)
    raw_calls = turn.get("tool_calls")
    calls: list[Any] = raw_calls if isinstance(raw_calls, list) else []
    first_call = min(
        (c for c in (_ms(c, "dispatched_at_ms") for c in calls if isinstance(c, dict)) if c),
        default=None,
    )
    if created is not None and first_call is not None:
        created = min(created, first_call)
    if created is not None and us is not None and created <= us:
        created = us + 0.001  # the turn pairs them: keep the reply after its user's start
    out.append(
        _svc(
            "reply.started", created, reply_id=rid, item_id=turn.get("item_id"), _audible_known=True
        )  # a null agent_reply_started_at_ms means no sound
    )
    if audible is not None:
        out.append(meta(META_AUDIBLE, audible, reply_id=rid, source="timeline"))
    for c in calls:
        if not isinstance(c, dict):
            continue
        cid = c.get("call_id")
        out.append(
            _svc(
                "tool.call",
                _ms(c, "dispatched_at_ms"),
                call_id=cid,
                name=c.get("name"),
                arguments=c.get("arguments"),
            )
        )
        if c.get("result") is not None or _ms(c, "result_received_at_ms") is not None:
            out.append(
                _app(
                    "tool.result",
                    _ms(c, "result_received_at_ms"),
                    call_id=cid,
                    result=c.get("result"),
                    is_error=c.get("is_error"),
                )
            )
            if c.get("timed_out") is True:
                out[-1].payload["_timed_out"] = True
    interrupted = turn.get("status") == "interrupted"
    cut = _ms(turn, "interrupted_at_ms") if interrupted else None
    end = cut if cut is not None else ended
    if end is None:  # a reply that never spoke (§3.6): it ends where it began
        end = created
    agent_text = turn.get("agent_text")
    out.append(
        _svc(
            "transcript.agent",
            end,
            reply_id=rid,
            text=agent_text if isinstance(agent_text, str) else "",
            interrupted=interrupted,
        )
    )
    out.append(
        _svc("reply.done", end, reply_id=rid, status="interrupted" if interrupted else "completed")
    )
    return out


def timeline_events(doc: dict[str, Any]) -> list[Event]:
    """Every event the timeline implies, in server-time order (stable for equal times)."""
    start = _ms(doc, "started_at_unix_ms")
    sid = doc.get("session_id") if isinstance(doc.get("session_id"), str) else None
    events: list[Event] = []
    changes = doc.get("config_changes")
    for change in changes if isinstance(changes, list) else []:
        if isinstance(change, dict) and isinstance(change.get("update"), dict):
            # the first at the start; a later session.update (tools, turn detection changed
            # mid-session) when the service received it
            at = _ms(change, "received_at_ms") if events else None
            events.append(
                meta(META_CONFIG, at if at is not None else start, config=change["update"])
            )
    events.append(_svc("session.ready", None if start is None else start + 0.024, session_id=sid))
    raw_turns = doc.get("turns")
    turns: list[Any] = raw_turns if isinstance(raw_turns, list) else []
    for turn in turns:
        if isinstance(turn, dict):
            events.extend(_turn_events(turn))
    ended = doc.get("ended")
    if isinstance(ended, dict):
        dur = finite(ended.get("duration_seconds"))
        t_end = start + dur if start is not None and dur is not None else None
        events.append(
            meta(
                META_ENDED,
                t_end,
                reason=ended.get("reason"),
                public_reason=ended.get("public_reason"),
                duration_seconds=dur,
            )
        )
    order = {id(e): i for i, e in enumerate(events)}
    events.sort(key=lambda e: (e.t if e.t is not None else float("inf"), order[id(e)]))
    return events


RECORDING_LEAD_S = 0.2
"""The recording seems to start ~0.15-0.25 s before `started_at_unix_ms` (§5, derived)."""


def agent_spans(doc: dict[str, Any]) -> list[tuple[float, float]]:
    """Where the agent was audible, in seconds into the recording (roughly: for choosing
    what to decode, never for measuring)."""
    start = _ms(doc, "started_at_unix_ms")
    raw = doc.get("turns")
    out = []
    for turn in raw if isinstance(raw, list) and start is not None else []:
        if not isinstance(turn, dict):
            continue
        a, e = _ms(turn, "agent_reply_started_at_ms"), _ms(turn, "agent_reply_ended_at_ms")
        if a is not None and e is not None and e > a and start is not None:
            out.append((a - start + RECORDING_LEAD_S, e - start + RECORDING_LEAD_S))
    return out
