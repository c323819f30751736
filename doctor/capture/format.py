"""Capture format version 1: one JSON object per line, what crossed one relay.

Line 1 is a header (``"capture": "agent-doctor"``); every later line is one record: a frame
one side sent (``dir`` ``"app"`` = the app sent it to the service, ``"service"`` = the
service sent it to the app), or a connection event (``event`` ``"open"``/``"close"``).
Every record has ``t`` (monotonic seconds since the header's ``started_mono``), ``wall``
(epoch seconds, the relay's clock) and ``conn`` (the relay's number for one WebSocket, from
1). Credentials never appear: the header says how the app authenticated, never with what,
and ``resume_token`` values are replaced. Audio is kept, or summarised so that a long
capture stays small: the base64 string is dropped and ``audio`` (on the record) holds its
byte count and validity.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from doctor.json_numbers import finite
from doctor.report.redact import credential_value, header_pair, scrub_query, secret_name

FORMAT_NAME = "agent-doctor"
FORMAT_VERSION = 1
AUDIO_FIELDS = {"input.audio": "audio", "reply.audio": "data"}
"""The base64 field of each audio message (in and out differ: a classic bug source)."""
REDACTED = "<redacted>"
MAX_TEXT_CHARS = 4096
"""A non-JSON text frame is kept up to this many characters (with its full length)."""

Direction = Literal["app", "service"]
AudioMode = Literal["keep", "summary"]


class CaptureFormatError(ValueError):
    """A line that is not a record of this format (the reader reports it and goes on)."""


@dataclass(frozen=True)
class Header:
    """First line: which format, when the capture started, what the relay forwarded to."""

    started_wall: float
    started_mono: float
    audio: AudioMode
    upstream: str
    tool_version: str = ""
    version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "capture": FORMAT_NAME,
            "version": self.version,
            "started_wall": self.started_wall,
            "started_mono": self.started_mono,
            "audio": self.audio,
            "upstream": self.upstream,
            "tool_version": self.tool_version,
        }


@dataclass(frozen=True)
class Frame:
    """One WebSocket message as it crossed the relay.

    Exactly one of ``msg`` (a JSON object), ``text`` (a text frame that is not a JSON
    object, cut to MAX_TEXT_CHARS; ``length`` is its full length) or ``binary`` (a binary
    frame's byte count; its bytes are never kept) is set. ``audio`` summarises the audio
    field of an audio message when the capture summarises audio.
    """

    t: float
    wall: float
    conn: int
    dir: Direction
    msg: dict[str, Any] | None = None
    text: str | None = None
    length: int | None = None
    binary: int | None = None
    audio: dict[str, Any] | None = None


@dataclass(frozen=True)
class ConnEvent:
    """A connection opening or closing, as the relay saw it.

    open: ``path`` (without the query string), ``auth`` (``"header"``, ``"query"`` or
    ``"none"``), ``upstream_status`` when the service refused the upgrade. close: ``by``
    (``"app"``, ``"service"`` or ``"relay"``), ``code`` and ``reason`` of the close frame,
    ``None`` code for a drop without a close frame (what a browser reports as 1006).
    """

    t: float
    wall: float
    conn: int
    event: Literal["open", "close"]
    details: dict[str, Any] = field(default_factory=dict)


Record = Frame | ConnEvent


def audio_summary(b64: object) -> dict[str, Any]:
    """What a summary keeps of one base64 audio field: its size and whether it decodes."""
    if not isinstance(b64, str):
        return {"valid_base64": False, "chars": None, "bytes": None}
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return {"valid_base64": False, "chars": len(b64), "bytes": None}
    return {"valid_base64": True, "chars": len(b64), "bytes": len(raw)}


def redact(msg: dict[str, Any]) -> dict[str, Any]:
    """A copy of a message with credential-like values replaced, at any depth (a tool's
    `http.headers` inside the `tools` list of a session.update carries its own keys)."""
    out = {key: _redacted(key, value) for key, value in msg.items()}
    name = msg.get("name", msg.get("key"))  # a header as {"name": "Authorization", "value"}
    if isinstance(name, str) and secret_name(name) and out.get("value"):
        out["value"] = REDACTED
    return out


def _redacted(key: str, value: Any) -> Any:
    if value and secret_name(key):
        return REDACTED  # whole, whatever its shape: {"credentials": {...}} too
    if isinstance(value, dict):
        return redact(value)
    if header_pair(value):
        return [value[0], REDACTED]
    if isinstance(value, list):
        return [_redacted(key, v) for v in value]
    if isinstance(value, str):
        return REDACTED if credential_value(value) else scrub_query(value)
    return value


def frame_from_message(
    t: float, wall: float, conn: int, direction: Direction, data: str | bytes, audio: AudioMode
) -> Frame:
    """Turn one WebSocket message into a Frame: parsed, redacted, audio kept or summarised."""
    if isinstance(data, bytes):
        return Frame(t, wall, conn, direction, binary=len(data))
    try:
        parsed = json.loads(data)
    except (json.JSONDecodeError, RecursionError):
        parsed = None
    if not isinstance(parsed, dict):
        return Frame(t, wall, conn, direction, text=data[:MAX_TEXT_CHARS], length=len(data))
    msg = redact(parsed)
    summary = None
    audio_field = AUDIO_FIELDS.get(str(msg.get("type")))
    if audio == "summary" and audio_field and audio_field in msg:
        summary = audio_summary(msg.pop(audio_field))
        summary["field"] = audio_field
    return Frame(t, wall, conn, direction, msg=msg, audio=summary)


def encode(record: Header | Record) -> str:
    """One line of the capture (no newline), compact JSON with raw UTF-8."""
    if isinstance(record, Header):
        obj = record.to_json()
    elif isinstance(record, Frame):
        obj = {"t": record.t, "wall": record.wall, "conn": record.conn, "dir": record.dir}
        for key in ("msg", "text", "length", "binary", "audio"):
            value = getattr(record, key)
            if value is not None:
                obj[key] = value
    else:
        obj = {"t": record.t, "wall": record.wall, "conn": record.conn, "event": record.event}
        obj.update(record.details)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def is_header(obj: object) -> bool:
    """Whether a parsed first line is this format's header (how a reader detects it)."""
    return isinstance(obj, dict) and obj.get("capture") == FORMAT_NAME


def decode_header(obj: dict[str, Any]) -> Header:
    """The header from its parsed line; a newer version is refused with a clear error."""
    version = obj.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CaptureFormatError(
            f"capture version {version!r} is newer than this agent-doctor reads"
            f" ({FORMAT_VERSION}); upgrade agent-doctor"
        )
    audio = obj.get("audio")
    return Header(
        started_wall=_number(obj, "started_wall"),
        started_mono=_number(obj, "started_mono"),
        audio="summary" if audio == "summary" else "keep",
        upstream=str(obj.get("upstream", "")),
        tool_version=str(obj.get("tool_version", "")),
        version=version,
    )


def decode(obj: object) -> Record:
    """One record from its parsed line, or CaptureFormatError saying what is wrong."""
    if not isinstance(obj, dict):
        raise CaptureFormatError("a capture line must be a JSON object")
    t, wall = _number(obj, "t"), _number(obj, "wall")
    conn = obj.get("conn")
    if not isinstance(conn, int):
        raise CaptureFormatError("a capture record needs an integer 'conn'")
    event = obj.get("event")
    if event in ("open", "close"):
        details = {k: v for k, v in obj.items() if k not in ("t", "wall", "conn", "event")}
        return ConnEvent(t, wall, conn, event, details)
    direction = obj.get("dir")
    if direction not in ("app", "service"):
        raise CaptureFormatError("a capture record needs 'dir' (app or service) or 'event'")
    msg = obj.get("msg")
    return Frame(
        t,
        wall,
        conn,
        direction,
        msg=msg if isinstance(msg, dict) else None,
        text=obj.get("text") if isinstance(obj.get("text"), str) else None,
        length=obj.get("length") if isinstance(obj.get("length"), int) else None,
        binary=obj.get("binary") if isinstance(obj.get("binary"), int) else None,
        audio=obj.get("audio") if isinstance(obj.get("audio"), dict) else None,
    )


def _number(obj: dict[str, Any], key: str) -> float:
    value = finite(obj.get(key))
    if value is None:  # absent, not a number, too big for a float, infinite or NaN
        raise CaptureFormatError(f"a capture line needs a finite number '{key}'")
    return value
