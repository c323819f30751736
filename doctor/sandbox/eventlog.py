"""The sandbox's record of every event both ways: in memory, on stderr, and as JSON lines.

Secrets (API keys, tokens) are masked before an event is stored anywhere.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timezone
from typing import IO, Any

from doctor.report.redact import credential_value, mask, scrub_query, secret_name

Listener = Callable[[dict[str, Any]], None]


def utc_stamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventLog:
    """Append-only; `events` is safe to read from another thread while the server runs."""

    def __init__(self, path: str | None = None, stderr: IO[str] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.listeners: list[Listener] = []
        self._t0 = time.monotonic()
        self._stderr = stderr
        self._file: IO[str] | None = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
        self._lock = threading.Lock()

    def record(
        self,
        direction: str,
        type_: str,
        *,
        conn: int | None = None,
        session_id: str | None = None,
        auth: str | None = None,
        **detail: Any,
    ) -> dict[str, Any]:
        """direction: `in` (client to sandbox), `out` (sandbox to client) or `server` (its own)."""
        event: dict[str, Any] = {
            "time": utc_stamp(),
            "t_s": round(time.monotonic() - self._t0, 4),
            "direction": direction,
            "type": type_,
            "conn": conn,
            "session_id": session_id,
            "auth": auth,
        }
        event.update(masked_secrets(detail))
        with self._lock:
            self.events.append(event)
            if self._file is not None:
                self._file.write(json.dumps(event, default=str) + "\n")
                self._file.flush()
            if self._stderr is not None:
                try:
                    self._stderr.write(self.line(event) + "\n")
                    self._stderr.flush()
                except (ValueError, OSError):  # closed or broken stderr: keep serving
                    self._stderr = None
        for listener in list(self.listeners):
            listener(event)
        return event

    @staticmethod
    def line(event: dict[str, Any]) -> str:
        arrow = {"in": "<-", "out": "->"}.get(event["direction"], "--")
        extra = " ".join(
            f"{k}={v}"
            for k, v in event.items()
            if k not in ("time", "t_s", "direction", "type", "conn") and v is not None
        )
        conn = f"#{event['conn']}" if event.get("conn") is not None else "-"
        return f"{event['time']} {conn} {arrow} {event['type']} {extra}".rstrip()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


SCHEME_FIELDS = frozenset({"authorization"})
"""Event fields that name how a client authenticated ("bearer", "raw"), never the value."""


def _scheme_word(name: object, value: str) -> bool:
    """`authorization: "bearer"` (how a client authenticated); a header's value is no word."""
    return str(name).lower() in SCHEME_FIELDS and value.isalpha() and len(value) <= 10


def _secret_field(name: object, value: object) -> bool:
    return (
        isinstance(value, str)
        and secret_name(str(name))
        and not _scheme_word(name, value)
        and not value.startswith("****")  # masked already (mask_query, a minted token)
    )


def _masked_text(value: str, in_headers: bool) -> str:
    """A string under any name: a URL's query credentials masked; inside `headers`, a
    `Bearer ...` value masked whole (outside them, "Token accepted." is a transcript)."""
    return mask(value) if in_headers and credential_value(value) else scrub_query(value)


def masked_secrets(value: Any, in_headers: bool = False) -> Any:
    """`value` with every field named like a credential (resume_token, api_key, token...)
    masked, at any depth, and credentials in other strings (a tool's `Bearer` header under
    any name, `?api_key=` in a URL): a sandbox log is pasted into tickets, so even its test
    tokens never leave in clear."""
    if isinstance(value, dict):
        return {
            k: mask(v)
            if _secret_field(k, v)
            else masked_secrets(v, in_headers or str(k).lower() == "headers")
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [masked_secrets(v, in_headers) for v in value]
    if isinstance(value, str):
        return _masked_text(value, in_headers)
    return value


def masked(secret: str | None) -> str | None:
    return None if secret is None else mask(secret)


def _secret_query(name: str) -> bool:
    """`token`, `api_key`, a pre-signed link's `X-Amz-Signature`: the doctor's own list."""
    return secret_name(name) or scrub_query(f"?{name}=x") != f"?{name}=x"


def mask_query(path: str) -> str:
    """A request path with its credentials (`?token=`, a link's signature) masked."""
    parts = urllib.parse.urlsplit(path)
    if not parts.query:
        return path
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    shown = [(k, masked(v) or "" if _secret_query(k) else v) for k, v in query]
    return parts.path + "?" + urllib.parse.urlencode(shown, safe="*")
