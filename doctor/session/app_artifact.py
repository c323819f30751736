"""An app's own session artifact (session-formats §7.3 (b)) as events.

Its `events[]` are the app's view of the turns on its own session clock (`t_ms`, origin not
stated): agent and user turn starts and ends with their texts, tool calls and results. They
become the messages that produced them; the times are placed from `started_at`, which is
only roughly the clock's origin. It keeps no audio, no server errors, no close code and no
vendor session id (its `session_id` is the app's), so those checks are named not judged.
An agent turn ending with empty text is common in a normal session (silent turns around
tool calls, very early cuts), so an empty text is not read as a silent reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from doctor.json_numbers import finite
from doctor.session.events import Event, make_event

TYPES = frozenset(
    {
        "agent_turn_start",
        "agent_turn_end",
        "user_turn_start",
        "user_turn_end",
        "tool_call",
        "tool_result",
        "form_update",
        "barge_in",
        "confirm_request",
        "confirm_result",
    }
)

INPUT_FIELDS = ("transcription_mode", "voice_focus")
"""Kept in the artifact's `turn_detection{}`, set by the user at `input.*` (§3.4)."""


@dataclass
class ArtifactSession:
    app_session_id: str | None
    events: list[Event]
    cannot_judge: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def is_app_artifact(doc: object) -> bool:
    """A top-level `events[]` of `{t_ms, type}` entries, mostly of the types above."""
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        return False
    typed = [e for e in doc["events"][:50] if isinstance(e, dict) and "t_ms" in e]
    known = sum(1 for e in typed if isinstance(e.get("type"), str) and e["type"] in TYPES)
    return known > 0 and known >= 0.8 * len(typed)  # a newer version may add a type


def _parse_iso(value: object) -> float | None:
    from datetime import datetime, timezone

    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


def _svc(kind: str, t: float, **fields: Any) -> Event:
    return make_event({"type": kind, **fields}, "service", t)


def artifact_session(doc: dict[str, Any]) -> ArtifactSession:
    """The events of one app session artifact, in `t_ms` order."""
    origin = _parse_iso(doc.get("started_at"))
    base = origin if origin is not None else 0.0
    listed = doc.get("events")
    timed = [
        (t_ms, e)
        for e in (listed if isinstance(listed, list) else [])
        if isinstance(e, dict) and (t_ms := finite(e.get("t_ms"))) is not None
    ]
    timed.sort(key=lambda x: x[0])  # stable: equal times keep the file's order
    events: list[Event] = []
    n = 0
    open_reply: str | None = None
    for t_ms, e in timed:
        t = base + t_ms / 1000.0
        kind = e.get("type") if isinstance(e.get("type"), str) else None
        if kind == "agent_turn_start":
            n += 1
            open_reply = f"agent_turn[{n}]"
            events.append(_svc("reply.started", t, reply_id=open_reply))
        elif kind == "agent_turn_end" and open_reply is not None:
            raw_text = e.get("text")
            text = raw_text if isinstance(raw_text, str) else ""
            cut = e.get("interrupted") is True
            if text.strip():
                events.append(
                    _svc("transcript.agent", t, reply_id=open_reply, text=text, interrupted=cut)
                )
            else:  # empty: a silent tool turn or an early cut, not a failed reply
                _mark_unknown(events, open_reply)
            status = "interrupted" if cut else "completed"
            events.append(_svc("reply.done", t, reply_id=open_reply, status=status))
            open_reply = None
        elif kind == "user_turn_start":
            events.append(_svc("input.speech.started", t))
        elif kind == "user_turn_end":
            events.append(_svc("input.speech.stopped", t))
            said = e.get("text")
            events.append(_svc("transcript.user", t, text=said if isinstance(said, str) else ""))
        elif kind == "tool_call" and isinstance(e.get("call_id"), str):
            events.append(
                _svc(
                    "tool.call",
                    t,
                    call_id=e["call_id"],
                    name=e.get("tool"),
                    arguments=e.get("args"),
                )
            )
        elif kind == "tool_result" and isinstance(e.get("call_id"), str):
            events.append(
                make_event(
                    {
                        "type": "tool.result",
                        "call_id": e["call_id"],
                        "is_error": e.get("ok") is False,
                    },
                    "app",
                    t,
                )
            )
    raw_td = doc.get("turn_detection")
    td: dict[str, Any] = raw_td if isinstance(raw_td, dict) else {}
    config = {k: v for k, v in td.items() if k not in ("label", "reason", *INPUT_FIELDS)}
    inputs = {k: td[k] for k in INPUT_FIELDS if k in td}
    if config or inputs:  # the settings the app ran with: the evidence of a turn-detection
        cfg = {"input": {**inputs, "turn_detection": config} if config else inputs}
        first = events[0].t if events else base
        events.insert(0, make_event({"type": "session.updated", "config": cfg}, "service", first))
    sid = doc.get("session_id") if isinstance(doc.get("session_id"), str) else None
    notes = []
    if sid:
        notes.append(f"the app's own session id {sid[:60]}; the vendor's session id is not in it")
    reason = td.get("reason")
    if isinstance(reason, str):
        notes.append(f"the app's own close reason: {reason[:60]}")
    cannot = {
        "session-latency": "the turn events mark when a reply started, not its first audible audio",
        "session-audio": "the artifact keeps no audio",
        "session-errors": "the artifact keeps no server errors or close codes",
        "session-billing": "the artifact keeps no session.end, session.ended or close",
        "session-protocol": "the artifact keeps no message the app sent besides tool results",
        "session-replies": "the artifact keeps no reply audio, so a silent reply cannot be told",
    }
    return ArtifactSession(sid, events, cannot, notes)


def _mark_unknown(events: list[Event], reply_id: str) -> None:
    for ev in reversed(events):
        if ev.type == "reply.started" and ev.payload.get("reply_id") == reply_id:
            ev.payload["_text_unknown"] = True
            return
