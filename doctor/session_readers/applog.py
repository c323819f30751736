"""Apps' own event logs (session-formats §7.1, §7.2): one element or line to one event.

Accepts the event nested (`event`, `message`, `msg`, `data`) or inline (its `type` at the
top, the logger's fields beside it), a receive time as RFC 3339 / ISO 8601 text, an HTTP date or an
epoch in s, ms, µs or ns (a number or a numeric string), and an optional direction marker for what
the app sent.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from doctor.json_numbers import finite, is_bad_number
from doctor.session.events import (
    CLIENT_TYPES,
    KNOWN_TYPES,
    META_CLOSE,
    META_OPEN,
    AudioInfo,
    Event,
    epoch_scale,
    make_event,
    meta,
)

NESTED_KEYS = ("event", "message", "msg", "data", "payload")
TIME_KEYS = ("received_at", "at", "sent_at", "logged_at", "ts", "time", "t")
DIRECTION_KEYS = ("direction", "dir", "from", "source", "side")
OFFSET_KEY = "_offset_t"
"""Where doctor.session_readers.offsets puts a receive time derived from a Go `offset`."""
WRAPPER_KEYS = frozenset(TIME_KEYS + DIRECTION_KEYS + ("offset", "conn", "connection", OFFSET_KEY))
SENT = frozenset(
    {"sent", "send", "out", "outgoing", "outbound", "tx", "app", "client", "c2s", "up"}
)
RECEIVED = frozenset(
    {"received", "recv", "in", "incoming", "inbound", "rx", "service", "server", "s2c", "down"}
)
REDACTED = "<redacted>"
_FRACTION = re.compile(r"(\.\d{6})\d+")
_NUMBER = re.compile(r"\s*\d+(\.\d*)?\s*")


_SECOND_CACHE: dict[str, int] = {}
"""Epoch seconds of `YYYY-MM-DDTHH:MM:SS` prefixes: a log's ~100 entries a second share one."""


def _utc_fast(value: str) -> float | None:
    """`…THH:MM:SS[.fraction]Z` (what §7.1 loggers write) without a regex or a datetime per
    entry; the same value `datetime.fromisoformat(…).timestamp()` gives (fraction cut to µs).
    None for any other spelling, which the general path reads."""
    if len(value) < 20 or value[-1] != "Z" or value[10] != "T" or value[13:17:3] != "::":
        return None
    head = value[:19]
    base = _SECOND_CACHE.get(head)
    if base is None:
        try:
            dt = datetime.fromisoformat(head).replace(tzinfo=timezone.utc)
        except ValueError:
            return None
        if len(_SECOND_CACHE) > 4096:
            _SECOND_CACHE.clear()
        base = _SECOND_CACHE[head] = int(dt.timestamp())
    if len(value) == 20:
        return float(base)
    frac = value[20:-1]
    if value[19] != "." or not frac.isdigit() or not frac.isascii():
        return None
    return (base * 1_000_000 + int(frac[:6].ljust(6, "0"))) / 1_000_000


def parse_time(value: object) -> float | None:
    """Epoch seconds from ISO text or an epoch in s, ms, µs or ns (told apart by magnitude,
    a number or a numeric string such as "1800000000.010"); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        value = float(value)
    if isinstance(value, (int, float)):
        v = finite(value)
        if v is None:
            return None
        v = epoch_scale(v)
        return v if v > 1e8 else None
    if isinstance(value, str) and len(value) >= 10:
        fast = _utc_fast(value)
        if fast is not None:
            return fast
        text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00")
        dt: datetime | None
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            dt = _http_date(value)
        if dt is None:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    return None


def bad_times(obj: dict[str, Any]) -> list[str]:
    """The entry's time fields that hold a number that is not finite (read as no time)."""
    out = [k for k in (*TIME_KEYS, "timestamp") if is_bad_number(obj.get(k))]
    for key in NESTED_KEYS:
        inner = obj.get(key)
        if isinstance(inner, dict) and is_bad_number(inner.get("timestamp")):
            out.append(f"{key}.timestamp")
    return out


def _http_date(value: str) -> datetime | None:
    """An RFC 2822 / HTTP date (`Fri, 15 Jan 2027 08:00:00 GMT`), which some loggers write."""
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


def unread_times(obj: dict[str, Any]) -> list[str]:
    """The entry's receive-time fields that hold something this reader cannot read as a
    time (an HTTP date, a relative number), when no other field gave one: dropped, so noted."""
    out = []
    for key in TIME_KEYS:
        value = obj.get(key)
        if value is None or is_bad_number(value) or isinstance(value, (dict, list)):
            continue
        if parse_time(value) is not None or OFFSET_KEY in obj:
            return []
        out.append(f"{key} {str(value)[:40]!r}")
    return out


def split(obj: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(the service message, the logger's wrapper fields) of one log entry."""
    for key in NESTED_KEYS:
        inner = obj.get(key)
        if isinstance(inner, dict) and isinstance(inner.get("type"), str):
            return inner, obj
    if isinstance(obj.get("type"), str):
        msg = {k: v for k, v in obj.items() if k not in WRAPPER_KEYS}
        return msg, obj
    return None, obj


def _marker(value: str) -> str | None:
    """ "app", "service" or None (not a direction) for one direction marker's text."""
    v = value.strip().lower()
    if v in SENT or v.startswith(("sent", "send", "out", "client")):
        return "app"
    if v in RECEIVED or v.startswith(("recv", "receiv", "in", "server")):
        return "service"
    return None


_MARKERS: dict[str, str | None] = {}
"""`_marker` of the texts seen: a log spells its markers a few ways, on every entry."""


def direction_of(wrapper: dict[str, Any], msg_type: str) -> str:
    for key in DIRECTION_KEYS:
        value = wrapper.get(key)
        if isinstance(value, str):
            side = _MARKERS.get(value, "")
            if side == "":
                side = _marker(value)
                if len(value) <= 40 and len(_MARKERS) < 1024:
                    _MARKERS[value] = side
            if side is not None:
                return side
    return "app" if msg_type in CLIENT_TYPES else "service"


def recv_time(wrapper: dict[str, Any]) -> float | None:
    """The logger's receive time; else the one derived from its `offset` (offsets.py)."""
    for key in TIME_KEYS:
        if key in wrapper:
            t = parse_time(wrapper[key])
            if t is not None:
                return t
    t = wrapper.get(OFFSET_KEY)
    return float(t) if isinstance(t, float) else None


CLOSE_TYPES = frozenset(
    {
        "close",
        "closed",
        "websocket.close",
        "ws.close",
        "disconnect",
        "disconnected",
        "connection.closed",
        "socket.close",
    }
)
OPEN_TYPES = frozenset(
    {
        "open",
        "opened",
        "connect",
        "connected",
        "websocket.open",
        "ws.open",
        "connection.opened",
        "socket.open",
    }
)
URL_KEYS = ("url", "ws_url", "endpoint", "host")


def connection_event(obj: dict[str, Any], line: int) -> Event | None:
    """An app's own line about its socket: `{"type": "close", "code", "reason"}` or
    `{"type": "open", "url"}` (or `close_code`/`close_reason`, `region` keys)."""
    raw = obj.get("type") or obj.get("event")
    kind = raw.lower() if isinstance(raw, str) else ""  # a nested event is not a kind
    if kind not in CLOSE_TYPES and kind not in OPEN_TYPES and "close_code" not in obj:
        return None  # most lines: no time parsed twice
    t = recv_time(obj)
    if kind in CLOSE_TYPES or "close_code" in obj:
        code = obj.get("close_code", obj.get("code"))
        reason = obj.get("close_reason", obj.get("reason"))
        return meta(
            META_CLOSE,
            t,
            code=code if isinstance(code, int) else None,
            reason=reason if isinstance(reason, str) else None,
            by=obj.get("by"),
        )
    if kind in OPEN_TYPES:
        url = next((obj[k] for k in URL_KEYS if isinstance(obj.get(k), str)), None)
        if url is not None:  # a token in the query string stays out of the report
            url = url.split("?", 1)[0]
        region = obj.get("region") if isinstance(obj.get("region"), str) else None
        return meta(META_OPEN, t, url=url, region=region)
    return None


def to_event(obj: object, line: int) -> Event | None:
    """The event of one log entry, or None when it is not a service/app message."""
    if not isinstance(obj, dict):
        return None
    conn = connection_event(obj, line)
    if conn is not None:
        return conn
    msg, wrapper = split(obj)
    if msg is None:
        return None
    kind = msg["type"]
    direction = direction_of(wrapper, kind)
    audio = None
    field = "audio" if kind == "input.audio" else "data" if kind == "reply.audio" else None
    if field is not None and msg.get(field) == REDACTED:
        audio = AudioInfo(None, True)
    ev = make_event(
        msg, "app" if direction == "app" else "service", recv_time(wrapper), audio=audio, line=line
    )
    return ev


_PROTOCOL_LIKE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


def is_session_type(kind: str) -> bool:
    return kind in KNOWN_TYPES or kind in ("error", "session.created", META_OPEN, META_CLOSE)


def looks_like_protocol(kind: str) -> bool:
    """A dotted lower-case type (`sesion.end`, `input_audio_buffer.append`): a message of
    this protocol that the service does not know (a typo, an older or another API)."""
    return _PROTOCOL_LIKE.fullmatch(kind) is not None


def marked_sent(obj: object) -> bool:
    """The entry carries a direction marker that says the app sent it."""
    if not isinstance(obj, dict):
        return False
    return any(
        isinstance(obj.get(k), str) and direction_of({k: obj[k]}, "") == "app"
        for k in DIRECTION_KEYS
    )
