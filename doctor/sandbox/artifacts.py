"""The session artifacts the sandbox serves: timeline and metadata, in the vendor's formats.

session-formats.md §3 (timeline), §4 (metadata) and §8 (the sandbox checklist) are the spec:
key order, compact one-line timeline with no newline, ids, units, the offsets between the
clocks, and (behind `timeline_quirks`) the irregular turn shapes of §3.6. `timeline()` and
`metadata()` are pure (records in, dicts out); `write()` is the thin shell that puts the
files next to the recording.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from doctor.sandbox.store import ReplyRecord, Session, ToolCallRecord, UserTurnRecord

# Offsets of the service's clocks (session-formats.md §3.5, §5), seconds.
SESSION_UPDATED_AFTER_START = 0.005  # session.updated is ~5 ms after started_at_unix_ms
CONFIG_RECEIVED_AFTER_START = 0.022
METADATA_START_AFTER_START = 0.022
TIMELINE_PAST_ENDED = 2.5  # the timeline's end runs ~2.5 s past session.ended
METADATA_END_BEFORE_TIMELINE_END = 0.15
TTFA_ABOVE_CREATION = 0.0025  # TTFA is 1.5-3.5 ms above audible start - reply.started
RECORDING_LEAD = 0.2  # the recording starts ~0.15-0.25 s before started_at_unix_ms
RECORDING_TAIL = 0.3  # ... and is ~0.3 s longer than session_duration_seconds

PUBLIC_REASONS = {  # how each way of ending shows in `ended.public_reason`
    "session.end": "client_end",
    # (unconfirmed, session-formats.md §3.2: no real file shows an abrupt close) the
    # sandbox's own words, chosen so that no reader can take them for a client end
    "grace_expired": "client_disconnected",
    "session_expired": "max_duration_reached",
}


@dataclass
class Artifacts:
    """Where a finished session's files are, and when the REST API may list them."""

    folder: str
    recording: str | None
    timeline: str
    metadata: str
    ready_at: float  # the sandbox clock (`Sandbox.now()`) at which they appear


def ms(t: float | None) -> int | None:
    return None if t is None else round(t * 1000)


def float32_tail(seconds: float) -> float:
    """A duration with the binary tail the service's files show (`14.6192998046875`)."""
    return float(np.float32(seconds))


def iso_micro(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="microseconds")


def started_at(session: Session) -> float:
    """The timeline's `started_at_unix_ms`, in epoch seconds: just before session.updated."""
    return session.started_at - SESSION_UPDATED_AFTER_START


def timeline_end(session: Session) -> float:
    assert session.ended_at is not None
    return session.ended_at + TIMELINE_PAST_ENDED


# --- timeline ----------------------------------------------------------------------------


def _tool_call(call: ToolCallRecord) -> dict[str, Any]:
    dispatched = ms(call.dispatched_at)
    received = ms(call.result_at)
    return {
        "call_id": call.call_id,
        "name": call.name,
        "arguments": call.arguments,
        "result": call.result,
        "dispatched_at_ms": dispatched,
        "result_received_at_ms": received,
        "duration_ms": None if received is None or dispatched is None else received - dispatched,
        "is_error": bool(call.is_error),
        "timed_out": call.timed_out,
        "parallel_call_id": "item_" + call.call_id[-12:],
    }


def _turn(
    reply: ReplyRecord, user: UserTurnRecord | None, calls: list[ToolCallRecord]
) -> dict[str, Any]:
    interrupted = reply.status == "interrupted"
    spoken = reply.spoken_text if reply.spoken_text is not None else reply.text
    audible = reply.audible_start_at
    ended = reply.done_at if interrupted else (reply.audible_end_at or None)
    if ended is None and spoken:
        ended = reply.done_at
    has_user = user is not None and reply.trigger == "user_speech"
    turn: dict[str, Any] = {
        "turn_id": reply.reply_id,
        "item_id": reply.item_id,
        "status": "interrupted" if interrupted else "completed",
        "trigger": reply.trigger,
        "requested_instructions": None,
        "user_transcript": user.transcript if has_user and user else None,
        "user_speech_started_at_ms": ms(user.started_at) if has_user and user else None,
        "user_speech_ended_at_ms": ms(user.ended_at) if has_user and user else None,
        "user_confidence": 1.0 if has_user else None,
        "agent_text": spoken or None,
        "agent_reply_started_at_ms": ms(audible),
        "agent_reply_ended_at_ms": ms(ended),
        "interrupted_at_ms": ms(reply.done_at) if interrupted else None,
        "time_to_first_audio_ms": (
            None
            if audible is None
            else round((audible - reply.created_at + TTFA_ABOVE_CREATION) * 1000)
        ),
    }
    if calls:
        turn["tool_calls"] = [_tool_call(c) for c in calls]
    return turn


def _unanswered(user: UserTurnRecord, number: int) -> dict[str, Any]:
    """§3.6: a user turn the server paired with no reply."""
    return {
        "turn_id": f"user_speech_{number}",
        "item_id": "",
        "status": "completed",
        "trigger": "user_speech",
        "requested_instructions": None,
        "user_transcript": user.transcript,
        "user_speech_started_at_ms": ms(user.started_at),
        "user_speech_ended_at_ms": None,
        "user_confidence": None,
        "agent_text": None,
        "agent_reply_started_at_ms": None,
        "agent_reply_ended_at_ms": None,
        "interrupted_at_ms": None,
        "time_to_first_audio_ms": None,
    }


def _quirk(turns: list[dict[str, Any]], users: dict[str, UserTurnRecord]) -> None:
    """§3.6, the live shape: the first answered user turn split into a `user_speech_1`
    entry and a reply labelled `greeting` with no audible start and no TTFA."""
    for index, turn in enumerate(turns):
        user = users.get(turn["turn_id"])
        if turn["trigger"] != "user_speech" or user is None or index == 0:
            continue
        head = _unanswered(user, 1)
        turn.update(
            trigger="greeting",
            user_transcript=None,
            user_speech_started_at_ms=None,
            user_speech_ended_at_ms=None,
            user_confidence=None,
            agent_reply_started_at_ms=None,
            time_to_first_audio_ms=None,
        )
        turns.insert(index, head)
        return


def _config_change(session: Session) -> dict[str, Any]:
    config = session.first_update or session.config
    inp = config.get("input") or {}
    out = config.get("output") or {}
    fmt_in = inp.get("format") or {}
    fmt_out = out.get("format") or {}
    td = inp.get("turn_detection")
    turn_detection = (
        None
        if not isinstance(td, dict)
        else {
            "type": td.get("type"),
            "vad_threshold": td.get("vad_threshold"),
            "interrupt_response": td.get("interrupt_response"),
            "min_silence": td.get("min_silence"),
            "max_silence": td.get("max_silence"),
            "interruption_delay": td.get("interruption_delay"),
        }
    )
    tools = []
    for tool in config.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        timeout = tool.get("timeout_seconds", 120)
        tools.append(
            {
                "type": tool.get("type", "function"),
                "name": tool.get("name"),
                "description": tool.get("description"),
                "parameters": tool.get("parameters"),
                "timeout_seconds": float(timeout) if isinstance(timeout, int | float) else timeout,
                "execution_mode": tool.get("execution_mode", "interactive"),
                "http": None,
                "response_instructions": None,
                "deployment_id": None,
                "session_update": None,
                "image_tag": None,
            }
        )
    update = {
        "system_prompt": config.get("system_prompt"),
        "greeting": config.get("greeting"),
        "input": {
            "type": "audio",
            "format": {
                "encoding": fmt_in.get("encoding", "audio/pcm"),
                "sample_rate": fmt_in.get("sample_rate", 24000),
            },
            "turn_detection": turn_detection,
            **{
                name: inp.get(name)
                for name in (
                    "keyterms",
                    "transcription_mode",
                    "continuous_partials",
                    "transcription_prompt",
                    "language_codes",
                    "voice_focus",
                    "voice_focus_threshold",
                )
            },
        },
        "output": {
            "type": "audio",
            "voice": out.get("voice"),
            "format": {
                "encoding": fmt_out.get("encoding", "audio/pcm"),
                "sample_rate": fmt_out.get("sample_rate", 24000),
            },
            "volume": out.get("volume", 100),
        },
        "tools": tools,
    }
    received = session.first_update_at or (started_at(session) + CONFIG_RECEIVED_AFTER_START)
    return {"received_at_ms": ms(received), "during_turn_id": None, "update": update}


def timeline(
    session: Session, reason: str = "user_initiated", quirks: bool = False
) -> dict[str, Any]:
    """The timeline of a finished session, as the service writes it (§3).

    `reason`: `ended.reason` for a session the client ended (`user_initiated`, or the
    field's `participant_disconnected`); other endings say `participant_disconnected`.
    """
    users = {u.reply_id: u for u in session.user_turns if u.reply_id is not None}
    entries: list[tuple[float, dict[str, Any]]] = []
    for reply in session.replies:
        calls = [c for c in session.tool_calls if c.reply_id == reply.reply_id]
        entries.append((reply.created_at, _turn(reply, users.get(reply.reply_id), calls)))
    unanswered = [u for u in session.user_turns if u.reply_id is None and u.transcript]
    for number, user in enumerate(unanswered, start=1):
        entries.append((user.started_at or user.ended_at or 0.0, _unanswered(user, number)))
    entries.sort(key=lambda e: e[0])
    turns = [t for _, t in entries]
    if quirks:
        _quirk(turns, {rid: u for rid, u in users.items()})
    start = started_at(session)
    client_end = session.end_reason == "session.end"
    return {
        "session_id": session.id,
        "started_at_unix_ms": ms(start),
        "turns": turns,
        "config_changes": [_config_change(session)],
        "ended": {
            "reason": reason if client_end else "participant_disconnected",
            "public_reason": PUBLIC_REASONS.get(session.end_reason or "", "error"),
            "duration_seconds": float32_tail(timeline_end(session) - start),
        },
    }


def timeline_bytes(data: dict[str, Any]) -> bytes:
    """§3.1: one compact line, raw UTF-8, no trailing newline."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- metadata ----------------------------------------------------------------------------


def recording_name(session_id: str) -> str:
    return f"{session_id}/recording/audio.ogg"


def metadata(session: Session) -> dict[str, Any]:
    """§4: key order and constants of the service's metadata."""
    start = started_at(session)
    end = timeline_end(session) - METADATA_END_BEFORE_TIMELINE_END
    duration = end - start
    return {
        "session_id": session.id,
        "started_at": iso_micro(start + METADATA_START_AFTER_START),
        "ended_at": iso_micro(end),
        "format": "ogg/opus",
        "channels": 2,
        "channel_layout": "stereo (left=user, right=agent)",
        "sample_rate": 24000,
        "file": recording_name(session.id),
        "uploaded_chunks": max(1, min(9, math.ceil(duration / 20))),
        "dropped_chunks": 0,
    }


def metadata_bytes(data: dict[str, Any]) -> bytes:
    """§4: 2-space indented JSON, no trailing newline."""
    return json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")


# --- shell -------------------------------------------------------------------------------


def write(
    session: Session,
    root: str,
    ready_at: float,
    reason: str = "user_initiated",
    quirks: bool = False,
) -> Artifacts:
    """Close the recording and write timeline and metadata under `root/<session_id>/`."""
    assert session.ended_at is not None
    folder = os.path.join(root, session.id)
    os.makedirs(folder, exist_ok=True)
    recording = None
    if session.recorder is not None:
        session.recorder.close(session.ended_at + RECORDING_TAIL - RECORDING_LEAD)
        recording = session.recorder.path
        session.recorder = None
    paths = {
        "timeline": os.path.join(folder, "timeline.json"),
        "metadata": os.path.join(folder, "metadata.json"),
    }
    for name, data in (
        ("timeline", timeline_bytes(timeline(session, reason, quirks))),
        ("metadata", metadata_bytes(metadata(session))),
    ):
        tmp = paths[name] + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, paths[name])
    return Artifacts(folder, recording, paths["timeline"], paths["metadata"], ready_at)


def recording_path(root: str, session_id: str) -> str:
    return os.path.join(root, recording_name(session_id))
