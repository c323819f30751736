"""Validate `input.audio` JSON messages as the service would, one message or a JSON-lines capture.

Pure: takes the text of a message (and its line number), returns its problems and the
decoded audio. The service answers a malformed message with `invalid_format` and bad audio
with `invalid_audio`; both keep the socket open, so one bad message does not stop a
capture, and we report every line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doctor.audio.format.base64text import Base64Issues, base64_share, decode_all

AUDIO_TYPE = "input.audio"
CLIENT_TYPES = {
    "session.update",
    "session.resume",
    "tool.result",
    "reply.create",
    "session.end",
    "conversation.message",
    "reply.cancel",
}
SERVER_TYPES = {
    "session.ready",
    "session.updated",
    "session.error",
    "session.ended",
    "input.speech.started",
    "input.speech.stopped",
    "transcript.user.delta",
    "transcript.user",
    "reply.started",
    "reply.audio",
    "transcript.agent",
    "reply.done",
    "tool.call",
    "transcript.agent.delta",
    "error",
}
TIME_KEYS = ("t", "ts", "time", "timestamp", "sent_at", "at")
WRAP_KEYS = ("message", "msg", "payload", "frame", "data")
LOOKALIKE_TYPES = {
    "input_audio_buffer.append": "the OpenAI Realtime name",
    "audio": "a bare `audio` type",
    "input_audio": "underscore instead of dot",
    "input.audio.append": "an extra suffix",
}


@dataclass
class Problem:
    code: str
    message: str
    service_error: str | None  # invalid_format / invalid_audio / None (a warning only)


@dataclass
class Checked:
    """One line of a capture (or the one message) after validation."""

    line: int
    kind: str  # audio, client, server, invalid
    problems: list[Problem] = field(default_factory=list)
    audio: bytes | None = None  # decoded, when the service would accept it
    decoded_bytes: int = 0
    timestamp_s: float | None = None
    b64: Base64Issues | None = None


def _timestamp(obj: dict[str, Any]) -> float | None:
    for key in TIME_KEYS:
        v = obj.get(key)
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)) and math.isfinite(v):
            return float(v) / 1000.0 if v > 1e11 else float(v)
        if isinstance(v, str):
            try:
                return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def _unwrap(obj: dict[str, Any]) -> tuple[Any, float | None]:
    """A capture line may wrap the message: {"t": 1.2, "message": {...}} or a JSON string."""
    ts = _timestamp(obj)
    if "type" in obj:
        return obj, ts
    for key in WRAP_KEYS:
        inner = obj.get(key)
        if isinstance(inner, str) and inner.lstrip().startswith("{"):
            try:
                inner = json.loads(inner)
            except ValueError:
                continue
        if isinstance(inner, dict) and "type" in inner:
            return inner, ts if ts is not None else _timestamp(inner)
    return obj, ts


def base64_problems(iss: Base64Issues, field_name: str = "audio") -> list[Problem]:
    out: list[Problem] = []
    if iss.data_url:
        out.append(
            Problem(
                "base64_data_url",
                f"`{field_name}` starts with a data URL prefix {iss.data_url!r}",
                "invalid_audio",
            )
        )
    if iss.urlsafe_chars:
        out.append(
            Problem(
                "base64_urlsafe",
                f"{iss.urlsafe_chars} URL-safe base64 characters ('-', '_')",
                "invalid_audio",
            )
        )
    if iss.spaces or iss.line_breaks:
        out.append(
            Problem(
                "base64_whitespace",
                f"{iss.line_breaks} line breaks and {iss.spaces} spaces inside the base64",
                "invalid_audio" if iss.spaces else None,
            )
        )
    if iss.invalid_chars:
        out.append(
            Problem(
                "base64_invalid",
                f"{iss.invalid_chars} characters outside the base64 "
                f"alphabet (first {iss.first_invalid_char} at offset "
                f"{iss.first_invalid_offset})",
                "invalid_audio",
            )
        )
    if iss.inner_padding:
        out.append(
            Problem(
                "base64_invalid",
                f"padding '=' in the middle ({iss.inner_padding} "
                "times): separately encoded chunks were glued together",
                "invalid_audio",
            )
        )
    if iss.missing_padding or iss.bad_length:
        what = "a dangling final character" if iss.bad_length else "missing '=' padding"
        out.append(Problem("base64_invalid", f"the base64 ends with {what}", "invalid_audio"))
    return out


def check_message(text: str | bytes, line: int = 1, *, capture: bool = False) -> Checked:
    """Validate one message. In a capture, other client and server events are not errors."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        msg = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        return Checked(
            line, "invalid", [Problem("json_invalid", f"not valid JSON: {msg}", "invalid_format")]
        )
    if not isinstance(obj, dict):
        return Checked(
            line,
            "invalid",
            [
                Problem(
                    "json_invalid", f"a JSON {type(obj).__name__}, not an object", "invalid_format"
                )
            ],
        )
    msg_obj, ts = _unwrap(obj) if capture else (obj, _timestamp(obj))
    if not isinstance(msg_obj, dict):  # pragma: no cover - _unwrap returns dicts
        msg_obj = obj
    if "type" not in msg_obj:
        hint = ' (it has `audio`: add "type": "input.audio")' if "audio" in msg_obj else ""
        return Checked(
            line,
            "invalid",
            [Problem("message_missing_type", f"no `type` field{hint}", "invalid_format")],
            timestamp_s=ts,
        )
    mtype = msg_obj["type"]
    if mtype != AUDIO_TYPE:
        if capture and isinstance(mtype, str) and mtype in CLIENT_TYPES:
            return Checked(line, "client", timestamp_s=ts)
        if capture and isinstance(mtype, str) and mtype in SERVER_TYPES:
            return Checked(line, "server", timestamp_s=ts)
        why = LOOKALIKE_TYPES.get(mtype, "") if isinstance(mtype, str) else ""
        shown = json.dumps(mtype)[:60]
        return Checked(
            line,
            "invalid",
            [
                Problem(
                    "message_wrong_type",
                    f'`type` is {shown}{f" ({why})" if why else ""}, expected "input.audio"',
                    "invalid_format",
                )
            ],
            timestamp_s=ts,
        )
    if "audio" not in msg_obj:
        hint = (
            " (found `data`: that is the name in server `reply.audio` events)"
            if "data" in msg_obj
            else ""
        )
        return Checked(
            line,
            "audio",
            [Problem("message_missing_audio", f"no `audio` field{hint}", "invalid_format")],
            timestamp_s=ts,
        )
    audio = msg_obj["audio"]
    if not isinstance(audio, str):
        kind = type(audio).__name__
        if isinstance(audio, (list, dict)):
            shown = (
                "an array of numbers (raw bytes)"
                if isinstance(audio, list)
                else "an object (a serialised Buffer?)"
            )
            return Checked(
                line,
                "audio",
                [
                    Problem(
                        "not_base64",
                        f"`audio` is {shown}, not a base64 string: raw binary where base64 "
                        "was expected",
                        "invalid_audio",
                    )
                ],
                timestamp_s=ts,
            )
        return Checked(
            line,
            "audio",
            [
                Problem(
                    "message_missing_audio",
                    f"`audio` is a {kind}, not a base64 string",
                    "invalid_format",
                )
            ],
            timestamp_s=ts,
        )
    raw = audio.encode("utf-8", "surrogatepass")
    body = raw.split(b",", 1)[-1] if raw[:5].lower() == b"data:" else raw
    if body and base64_share(body) < 0.9:
        return Checked(
            line,
            "audio",
            [
                Problem(
                    "not_base64",
                    "`audio` is not base64 text (raw binary or other text in a string)",
                    "invalid_audio",
                )
            ],
            timestamp_s=ts,
        )
    data, iss = decode_all(raw)
    problems = base64_problems(iss)
    if not data and not problems:
        problems.append(Problem("empty", "`audio` is empty", "invalid_audio"))
    elif len(data) % 2:
        problems.append(
            Problem(
                "odd_byte_length",
                f"{len(data)} bytes decoded: not a whole number of 16-bit samples",
                "invalid_audio",
            )
        )
    rejected = any(p.service_error for p in problems)
    return Checked(line, "audio", problems, None if rejected else data, len(data), ts, iss)
