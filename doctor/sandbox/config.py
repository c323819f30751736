"""Sandbox settings, the fault catalogue and the switches for behaviours the docs disagree on.

Kept free of heavy imports so that `agent-doctor sandbox --help` stays light.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# name -> (default parameter or None when the fault takes none, what the user sees)
FAULTS: dict[str, tuple[float | None, str]] = {
    "handshake-reject": (None, "HTTP 401 before the WebSocket upgrade (browsers see 1006)"),
    "handshake-forbidden": (None, "HTTP 403 before the WebSocket upgrade"),
    "unauthorized-after-upgrade": (None, "session.error UNAUTHORIZED then close 1008"),
    "forbidden-after-upgrade": (None, "session.error FORBIDDEN then close 1008"),
    "token-expired-frame": (None, "first frame is session.error `unauthorized`, then 1008"),
    "internal-error": (None, "session.error INTERNAL_ERROR then close 1011"),
    "at-capacity": (None, "session.error server_error (at capacity) then close 1008"),
    "agent-init-failed": (None, "session.error agent_init_failed before ready, close 1011"),
    "agent-timeout": (10.0, "no session.ready; agent_timeout after N seconds, close 1011"),
    "resume-rejected": (None, "every session.resume gets session_not_found, close 1008"),
    "no-session-ended": (None, "session.end closes the socket without session.ended"),
    "drop-after-ready": (1.0, "abrupt TCP close N seconds after session.ready"),
    "slow-ready": (3.0, "session.ready only after N seconds"),
    "token-rate-limited": (30.0, "GET /v1/token answers 429 with Retry-After: N seconds"),
    "token-server-error": (None, "GET /v1/token answers 500"),
    "resume-new-id": (
        None,
        "session.resume gets session.ready with a NEW id; the old id is gone",
    ),
    "close-without-frame": (
        None,
        "abrupt TCP close right after the upgrade (at the first message): no "
        "session.error, no close frame (clients see 1006)",
    ),
}

# Where protocol.md records two behaviours, the choice is a switch (first value = default).
AUTH_FAILURE_MODES = ("close", "http")  # bad key/token: UNAUTHORIZED+1008, or HTTP 401
EXPIRED_TOKEN_MODES = ("frame", "close", "http")  # `unauthorized` frame, UNAUTHORIZED+1008, 401
REPLY_DONE_STATUS = ("completed", "absent")  # normal reply.done: status "completed" or none
TOKEN_ERROR_BODIES = ("error", "detail")  # {"error": ...} (generic) or {"detail": ...} (REST)
RETRY_AFTER_FORMS = ("seconds", "date")  # Retry-After: delta-seconds or an HTTP-date

DEFAULT_VOICES = (
    "ivy", "james", "tyler", "winter", "bella", "david", "kyle", "helen", "martha", "river",
    "emma", "victor", "eleanor", "arjun", "dmitri", "pierre", "giulia", "luca", "lucia",
    "mateo", "diego",
)  # fmt: skip


class FaultError(ValueError):
    """A `--fault` value that is not in the catalogue or has a bad parameter."""


def parse_fault(text: str) -> tuple[str, float | None]:
    """`slow-ready=2.5` -> ("slow-ready", 2.5); a fault without `=N` gets its default."""
    name, sep, raw = text.strip().partition("=")
    name = name.strip()
    if name not in FAULTS:
        raise FaultError(f"unknown fault {name!r}; known faults: {', '.join(sorted(FAULTS))}")
    default, _ = FAULTS[name]
    if not sep:
        return name, default
    if default is None:
        raise FaultError(f"fault {name!r} takes no parameter")
    try:
        value = float(raw)
    except ValueError:
        raise FaultError(f"fault {name!r} needs a number of seconds, got {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise FaultError(f"fault {name!r} needs a finite number of seconds >= 0, got {raw!r}")
    return name, value


def check_faults(faults: dict[str, float | None]) -> dict[str, float | None]:
    """Fill defaults and reject unknown names, for faults given as a dict in code."""
    out: dict[str, float | None] = {}
    for name, value in faults.items():
        if name not in FAULTS:
            raise FaultError(f"unknown fault {name!r}; known faults: {', '.join(sorted(FAULTS))}")
        default, _ = FAULTS[name]
        out[name] = default if value is None else float(value)
    return out


@dataclass
class SandboxConfig:
    """Everything that shapes one sandbox; the defaults imitate the documented service."""

    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = True
    api_keys: list[str] = field(default_factory=list)  # empty: one is generated at start
    forbidden_keys: list[str] = field(default_factory=list)  # valid keys without entitlement
    grace_s: float = 30.0
    faults: dict[str, float | None] = field(default_factory=dict)
    events_path: str | None = None
    log_events: bool = False  # one line per event on stderr (the CLI turns it on)
    # TLS: names in the leaf certificate; `ssl_context` replaces the trustme one entirely.
    cert_hostnames: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
    ssl_context: Any = None
    workdir: str | None = None  # where the CA file goes (a temporary folder by default)
    # Limits of the real service.
    max_session_s: float = 10800.0
    agent_ready_limit_s: float = 10.0
    # Time, for tests: `clock` is what the service remembers time by (token redemption
    # windows, the grace window, session durations); a test passes one it can move forward
    # instead of sleeping. `duration_scale` shrinks every session cap in wall-clock time
    # (0.005 turns a token's 60 s cap into 0.3 s) while events still report the real cap.
    clock: Callable[[], float] = time.monotonic
    duration_scale: float = 1.0
    # Switches for documented contradictions.
    auth_failure: str = "close"
    expired_token: str = "frame"
    reply_done_status: str = "completed"
    token_error_body: str = "error"
    retry_after_form: str = "seconds"
    token_single_use: bool = True
    updated_after_first_update: bool = False  # also send session.updated after the first one
    ended_on_expiry: bool = True  # session.ended after session_expired (SKILL)
    strict_sample_rate: bool = True  # reject audio/pcm rates other than 24000 at update
    # Conversation.
    reply_s: float = 2.0  # length of a spoken reply
    reply_realtime: bool = True  # pace reply.audio at real time (False: as fast as possible)
    reply_chunk_ms: int = 50
    speech_threshold_dbfs: float = -45.0
    tool_call: str | None = None  # call this tool (if the session defines it) after each turn
    voices: tuple[str, ...] = DEFAULT_VOICES

    def __post_init__(self) -> None:
        self.faults = check_faults(self.faults)
        for name, value, allowed in (
            ("auth_failure", self.auth_failure, AUTH_FAILURE_MODES),
            ("expired_token", self.expired_token, EXPIRED_TOKEN_MODES),
            ("reply_done_status", self.reply_done_status, REPLY_DONE_STATUS),
            ("token_error_body", self.token_error_body, TOKEN_ERROR_BODIES),
            ("retry_after_form", self.retry_after_form, RETRY_AFTER_FORMS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        if self.grace_s < 0:
            raise ValueError("grace_s must be >= 0")
        if not self.max_session_s > 0:
            raise ValueError("max_session_s must be > 0")
        if not 0 < self.duration_scale <= 1:
            raise ValueError("duration_scale must be in (0, 1]")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0..65535")

    def fault(self, name: str) -> bool:
        return name in self.faults

    def fault_s(self, name: str) -> float:
        value = self.faults.get(name)
        return float(value) if value is not None else float(FAULTS[name][0] or 0.0)
