"""The normalised event every reader produces and the analysis consumes.

One shape for every source (vendor timeline, an app's JSON array or JSON lines, the
capture format, a live relay): the message as it crossed the socket, who sent it, the
server's own clock when the message carries one, and the clock of whoever logged it.
Readers that know more than the wire (the timeline's audible start, a recording's onsets)
add `meta.*` events instead of bending the protocol's types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from doctor.audio.format.messages import AUDIO_TYPE
from doctor.audio.format.messages import CLIENT_TYPES as _CLIENT
from doctor.audio.format.messages import SERVER_TYPES as _SERVER
from doctor.json_numbers import finite

Direction = Literal["app", "service", "meta"]

# One list of message types for the whole tool (validate-audio keeps it).
CLIENT_TYPES = frozenset(_CLIENT | {AUDIO_TYPE})
SERVICE_TYPES = frozenset(_SERVER - {"error"})  # `error` is read as session.error
CLIENT_FIELDS: dict[str, frozenset[str]] = {
    "session.update": frozenset({"type", "session", "event_id"}),
    "session.resume": frozenset({"type", "session_id", "resume_token", "event_id"}),
    "session.end": frozenset({"type", "event_id"}),
    "input.audio": frozenset({"type", "audio", "event_id"}),
    "tool.result": frozenset({"type", "call_id", "result", "is_error", "event_id"}),
    "reply.create": frozenset({"type", "instructions", "event_id"}),
    "conversation.message": frozenset({"type", "role", "content", "event_id"}),
    "reply.cancel": frozenset({"type", "reply_id", "event_id"}),
}
# Fields older API versions or other vendors' clients use, and what replaced them.
OLD_FIELDS: dict[tuple[str, str], str] = {
    ("session.update", "config"): "`session` (config under `config` is silently ignored)",
    ("tool.result", "output"): "`result` (a string)",
    ("input.audio", "data"): "`audio` (`data` is the field of reply.audio)",
    ("input.audio", "audio_base_64"): "`audio`",
}
# Fields of older versions (and OpenAI-Realtime-style clients) inside session.update.session.
OLD_SESSION_FIELDS: dict[str, str] = {
    "input_audio_format": "`input.format` ({encoding, sample_rate})",
    "output_audio_format": "`output.format`",
    "input_audio_transcription": "nothing (transcription is always on)",
    "turn_detection": "`input.turn_detection`",
    "voice": "`output.voice`",
    "instructions": "`system_prompt`",
    "modalities": "nothing (input and output are audio)",
}
KNOWN_TYPES = CLIENT_TYPES | SERVICE_TYPES

# meta.* events: facts the wire does not carry, added by readers.
META_OPEN = "meta.open"  # a connection opened {path?, auth?}
META_CLOSE = "meta.close"  # a connection closed {code, reason, by}
META_AUDIBLE = "meta.agent_audible"  # first audible sample of a reply {reply_id?}
META_ENDED = "meta.ended"  # the vendor's end record {reason, public_reason, duration_seconds}
META_CONFIG = "meta.config"  # the session config known from elsewhere {config}


@dataclass(slots=True)
class AudioInfo:
    """An audio message's payload: decoded PCM when the log kept it, else only its size."""

    size: int | None
    valid_base64: bool
    pcm: bytes | None = None


@dataclass(slots=True)
class Event:
    """One message or fact, in log order.

    `t` is the time the analysis orders and measures by (epoch seconds): the server's
    `timestamp` when the message has one, else the logger's receive/send time. `server_t`
    and `recv_t` keep both clocks; either may be None. `conn` separates connections when
    the log knows them (capture format); `line` points back into the source for messages.
    """

    type: str
    direction: Direction
    t: float | None
    payload: dict[str, Any] = field(default_factory=dict)
    server_t: float | None = None
    recv_t: float | None = None
    conn: int | None = None
    audio: AudioInfo | None = None
    line: int | None = None


def epoch_scale(value: float) -> float:
    """Epoch seconds from an epoch in s, ms, µs or ns, told apart by magnitude: today is
    ~1.8e9 s, 1.8e12 ms, 1.8e15 µs, 1.8e18 ns, so each unit owns three decades (a value
    below 1e11 stays as it is: seconds, or a clock relative to the app's start)."""
    if value >= 1e17:
        return value / 1e9
    if value >= 1e14:
        return value / 1e6
    if value >= 1e11:
        return value / 1e3
    return value


def server_time(payload: dict[str, Any]) -> float | None:
    """The message's own `timestamp` as epoch seconds (s, ms, µs or ns: epoch_scale)."""
    value = finite(payload.get("timestamp"))
    if value is None:
        return None
    return epoch_scale(value)


def _type_of(payload: dict[str, Any]) -> str:
    """The message type; "" when there is none (a JSON null is no type, not "None")."""
    kind = payload.get("type")
    return "" if kind is None else str(kind)


def make_event(
    payload: dict[str, Any],
    direction: Direction,
    recv_t: float | None = None,
    *,
    conn: int | None = None,
    audio: AudioInfo | None = None,
    line: int | None = None,
) -> Event:
    """An event from a wire message; the clock of measurement is the server's when present."""
    st = server_time(payload) if direction == "service" else None
    return Event(
        type=_type_of(payload),
        direction=direction,
        t=st if st is not None else recv_t,
        payload=payload,
        server_t=st,
        recv_t=recv_t,
        conn=conn,
        audio=audio,
        line=line,
    )


def meta(kind: str, t: float | None, conn: int | None = None, **payload: Any) -> Event:
    return Event(type=kind, direction="meta", t=t, payload=payload, conn=conn, recv_t=t)
