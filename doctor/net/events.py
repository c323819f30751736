"""Voice Agent API messages as data: parse what the server sends, summarise for timelines.

Pure (no sockets, no clock). Summaries never carry audio payloads or credentials, so a
timeline can go into a report as it is.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

# Connection-phase codes are UPPER_CASE, live codes snake_case (protocol.md §4.2).
FATAL_CODES = frozenset(
    {
        "UNAUTHORIZED", "unauthorized", "FORBIDDEN", "INTERNAL_ERROR", "server_error",
        "session_not_found", "session_forbidden", "session_expired", "agent_init_failed",
        "agent_timeout",
    }
)  # fmt: skip
AUTH_CODES = frozenset({"UNAUTHORIZED", "unauthorized", "FORBIDDEN"})


@dataclass(frozen=True)
class ServerEvent:
    type: str
    payload: dict[str, Any]

    @property
    def error_code(self) -> str | None:
        code = self.payload.get("code") if self.type in ("session.error", "error") else None
        return str(code) if code is not None else None


def parse_server_event(data: str | bytes) -> ServerEvent:
    """Any frame becomes an event; frames that are not JSON objects get a `(…)` type."""
    if isinstance(data, bytes):
        return ServerEvent("(binary)", {"size_bytes": len(data)})
    try:
        obj = json.loads(data)
    except ValueError:
        return ServerEvent("(invalid json)", {"size_bytes": len(data)})
    if not isinstance(obj, dict):
        return ServerEvent("(not an object)", {})
    return ServerEvent(str(obj.get("type", "(no type)")), obj)


def _b64_len(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None


_KEEP = (
    "session_id", "code", "message", "param", "reply_id", "item_id", "status", "call_id",
    "name", "interrupted", "session_duration_seconds", "audio_duration_seconds", "text",
)  # fmt: skip


def summarize(message: dict[str, Any]) -> dict[str, Any]:
    """Small, secret-free facts about a message for the timeline."""
    out: dict[str, Any] = {k: message[k] for k in _KEEP if k in message}
    if "text" in out and isinstance(out["text"], str):
        out["text"] = out["text"][:120]
    for field in ("audio", "data"):
        if field in message:
            size = _b64_len(message[field])
            out[f"{field}_bytes"] = size if size is not None else "undecodable"
    if message.get("type") == "session.update" and isinstance(message.get("session"), dict):
        out["fields"] = sorted(message["session"])
    if message.get("type") == "session.updated" and isinstance(message.get("config"), dict):
        out["fields"] = sorted(message["config"])
    return out


_FATAL_FOLDED = frozenset(c.lower() for c in FATAL_CODES)


def is_fatal(code: str | None) -> bool:
    """Case-insensitive: the docs and the live service spell the same codes differently."""
    return code is not None and code.lower() in _FATAL_FOLDED
