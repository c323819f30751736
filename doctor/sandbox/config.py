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
    "at-capacity-after": (
        1.0,
        "the first N sessions start; every later session.update gets session.error "
        "server_error (at capacity) then close 1008",
    ),
    "agent-init-failed": (None, "session.error agent_init_failed before ready, close 1011"),
    "agent-timeout": (10.0, "no session.ready; agent_timeout after N seconds, close 1011"),
    "resume-rejected": (None, "every session.resume gets session_not_found, close 1008"),
    "resume-silent": (None, "session.resume is never answered; the socket stays open"),
    "no-session-ended": (None, "session.end closes the socket without session.ended"),
    "slow-first-ended": (
        5.0,
        "the sandbox's first session.end gets session.ended only after N seconds (later "
        "ones at once), as the field saw once",
    ),
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
COUNT_FAULTS = frozenset({"at-capacity-after"})  # N counts sessions, not seconds

# Where protocol.md records two behaviours, the choice is a switch (first value = default).
REPLY_DONE_STATUS = ("completed", "absent")  # normal reply.done: status "completed" or none
# documented token errors: {"error": ...} or {"detail": ...} (the field's: always "detail")
TOKEN_ERROR_BODIES = ("error", "detail")
RETRY_AFTER_FORMS = ("seconds", "date")  # Retry-After: delta-seconds or an HTTP-date
# session-formats.md §3.2: `ended.reason` of a session the client ended (both occur live)
TIMELINE_REASONS = ("user_initiated", "participant_disconnected")

# The sandbox follows the live service as third parties measured it (field-facts.md) by
# default; `behaviour="documented"` follows protocol.md instead. Each switch below can also
# be set on its own; left unset (None) it takes the value of the chosen behaviour.
BEHAVIOURS = ("field", "documented")


@dataclass(frozen=True)
class Switch:
    """One place where the field and the docs disagree: the choices and each side's pick."""

    choices: tuple[str, ...]
    field: str
    documented: str
    help: str


SWITCHES: dict[str, Switch] = {
    "token_policy": Switch(
        ("field", "documented"),
        "field",
        "documented",
        "temporary tokens: reusable within their window and max_session_duration_seconds "
        "not enforced (field), or single use with the cap ending the session (documented)",
    ),
    "token_errors": Switch(
        ("field", "documented"),
        "field",
        "documented",
        "GET /v1/token errors: bad key 404 {detail: Invalid API key}, missing key or bad "
        "parameter 422 with a validation list (field), or 401 / 400 (documented)",
    ),
    "auth_failure": Switch(
        ("field", "close", "http"),
        "field",
        "close",
        "refused key or token on the WebSocket: upgrade, session.error unauthorized "
        "'Authentication failed', close 1008 (field); UNAUTHORIZED + 1008 (close); or HTTP 401",
    ),
    "expired_token": Switch(
        ("field", "frame", "close", "http"),
        "field",
        "frame",
        "expired token: as any refused credential (field); an `unauthorized` first frame "
        "naming the expiry, then 1008 (frame); UNAUTHORIZED + 1008 (close); or HTTP 401",
    ),
    "event_shapes": Switch(
        ("field", "documented"),
        "field",
        "documented",
        "server events: float epoch timestamp on every event, session.updated before "
        "session.ready, ready with config/expires_at/resume_token, audio_duration_seconds "
        "null (field); or ISO timestamps on errors and session.ended only (documented)",
    ),
    "errors": Switch(
        ("field", "documented"),
        "field",
        "documented",
        "session.error: the field's codes, messages and key order, first-update config "
        "errors close 1008, conversation.message accepted (field); or protocol.md's "
        "(documented)",
    ),
    "voice_list": Switch(
        ("field", "documented"),
        "field",
        "documented",
        "voices: the 18 the live service accepts (field), or protocol.md's mid-2026 list "
        "with `ivy` (documented)",
    ),
    "resume": Switch(
        ("field", "documented"),
        "field",
        "documented",
        "session.resume: refused with session_not_found then 1008, as every live attempt "
        "was (field); or resumable within the grace window (documented, see --grace)",
    ),
    "reply_audio": Switch(
        ("field", "documented"),
        "field",
        "documented",
        "reply.audio: 10 ms chunks (37.5 ms for G.711) after a silent lead-in, with "
        "transcript.agent.delta words in one burst (field); or 50 ms chunks, no lead-in, "
        "no deltas (documented)",
    ),
}

# field-facts §10: the voices the live service lists in its invalid-voice error.
FIELD_VOICES = (
    "alba", "anna", "charles", "estelle", "eve", "george", "giovanni", "iris", "jane", "jean",
    "juergen", "lola", "mary", "michael", "paul", "rafael", "reid", "vera",
)  # fmt: skip
DOCUMENTED_VOICES = (
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
    unit = "a whole number of sessions" if name in COUNT_FAULTS else "a number of seconds"
    try:
        value = float(raw)
    except ValueError:
        raise FaultError(f"fault {name!r} needs {unit}, got {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise FaultError(f"fault {name!r} needs {unit} >= 0 (finite), got {raw!r}")
    if name in COUNT_FAULTS and not value.is_integer():
        raise FaultError(f"fault {name!r} needs {unit}, got {raw!r}")
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
    """Everything that shapes one sandbox; the defaults imitate the live service as the
    field saw it (`behaviour="documented"` for protocol.md's version)."""

    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = True
    api_keys: list[str] = field(default_factory=list)  # empty: one is generated at start
    forbidden_keys: list[str] = field(default_factory=list)  # valid keys without entitlement
    agent_ids: list[str] = field(default_factory=list)  # stored agents a session may name
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
    # Field or documented behaviour, and the switches it sets (None: follow `behaviour`).
    behaviour: str = "field"
    token_policy: str | None = None
    token_errors: str | None = None
    auth_failure: str | None = None
    expired_token: str | None = None
    event_shapes: str | None = None
    errors: str | None = None
    voice_list: str | None = None
    resume: str | None = None
    reply_audio: str | None = None
    # Finer switches of the documented behaviour.
    reply_done_status: str = "completed"
    token_error_body: str = "error"
    retry_after_form: str = "seconds"
    updated_after_first_update: bool = False  # documented shapes: session.updated after ready
    ended_on_expiry: bool = True  # session.ended after session_expired (SKILL)
    strict_sample_rate: bool = True  # reject audio/pcm rates other than 24000 at update
    # Conversation.
    reply_s: float = 2.0  # length of a spoken reply
    reply_realtime: bool = True  # pace reply.audio at real time (False: as fast as possible)
    # field-facts §7: 10 ms PCM chunks at real time after 0.2-2 s of silence (protocol.md
    # names no size); None: 10 ms and 0.25 s (field), or 50 ms and none (documented)
    reply_chunk_ms: float | None = None
    reply_lead_in_s: float | None = None  # silence before a reply's voice
    speech_threshold_dbfs: float = -45.0
    tool_call: str | None = None  # call this tool (if the session defines it) after each turn
    # field-facts §8: live, a barge-in is decided 1.1-2.2 s after the user starts talking
    # over the agent; 0 cuts the reply at the first speech frame
    barge_in_delay_s: float = 0.0
    voices: tuple[str, ...] | None = None  # None: the list `voice_list` names
    # Session artifacts and the Sessions REST API (session-formats.md §2-§5, §8).
    record: bool = True  # record each session and write its artifacts when it ends
    artifacts_dir: str | None = None  # None: a temporary folder removed at stop
    artifacts_delay_s: float = 7.0  # field-facts §13: artifacts listed ~7 s after the end
    artifact_url_ttl_s: float = 3600.0  # field-facts §13: pre-signed URLs valid 1 h
    timeline_reason: str = "user_initiated"  # or "participant_disconnected" (§3.2)
    timeline_quirks: bool = False  # §3.6: `user_speech_1` + a reply labelled `greeting`

    def __post_init__(self) -> None:
        self.faults = check_faults(self.faults)
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(
                f"behaviour must be one of {', '.join(BEHAVIOURS)}, not {self.behaviour!r}"
            )
        for name, switch in SWITCHES.items():
            value = getattr(self, name)
            if value is None:
                setattr(self, name, getattr(switch, self.behaviour))
            elif value not in switch.choices:
                raise ValueError(
                    f"{name} must be one of {', '.join(switch.choices)}, not {value!r}"
                )
        for name, value, allowed in (
            ("reply_done_status", self.reply_done_status, REPLY_DONE_STATUS),
            ("token_error_body", self.token_error_body, TOKEN_ERROR_BODIES),
            ("retry_after_form", self.retry_after_form, RETRY_AFTER_FORMS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        if self.voices is None:
            self.voices = FIELD_VOICES if self.voice_list == "field" else DOCUMENTED_VOICES
        if self.reply_chunk_ms is None:
            self.reply_chunk_ms = 10.0 if self.reply_audio == "field" else 50.0
        if self.reply_lead_in_s is None:
            self.reply_lead_in_s = 0.25 if self.reply_audio == "field" else 0.0
        if not 1 <= self.reply_chunk_ms <= 1000:
            raise ValueError("reply_chunk_ms must be 1..1000")
        if not 0 <= self.reply_lead_in_s <= 10:
            raise ValueError("reply_lead_in_s must be 0..10")
        if self.timeline_reason not in TIMELINE_REASONS:
            raise ValueError(
                f"timeline_reason must be one of {', '.join(TIMELINE_REASONS)}, "
                f"not {self.timeline_reason!r}"
            )
        if not 0 <= self.barge_in_delay_s <= 10:
            raise ValueError("barge_in_delay_s must be 0..10")
        if not self.artifacts_delay_s >= 0 or not self.artifact_url_ttl_s >= 0:
            raise ValueError("artifacts_delay_s and artifact_url_ttl_s must be >= 0")
        if self.grace_s < 0:
            raise ValueError("grace_s must be >= 0")
        if not self.max_session_s > 0:
            raise ValueError("max_session_s must be > 0")
        if not 0 < self.duration_scale <= 1:
            raise ValueError("duration_scale must be in (0, 1]")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0..65535")

    def mode(self, name: str) -> str:
        """The resolved value of switch `name` (a key of SWITCHES)."""
        value = getattr(self, name)
        assert isinstance(value, str), name  # __post_init__ resolves every switch
        return value

    @property
    def field_shapes(self) -> bool:
        return self.event_shapes == "field"

    @property
    def field_errors(self) -> bool:
        return self.errors == "field"

    @property
    def single_use_tokens(self) -> bool:
        return self.token_policy == "documented"

    @property
    def token_cap_enforced(self) -> bool:
        return self.token_policy == "documented"

    @property
    def lead_in_s(self) -> float:
        return float(self.reply_lead_in_s or 0.0)

    @property
    def voice_names(self) -> tuple[str, ...]:
        assert self.voices is not None  # __post_init__ fills it
        return self.voices

    def fault(self, name: str) -> bool:
        return name in self.faults

    def fault_s(self, name: str) -> float:
        value = self.faults.get(name)
        return float(value) if value is not None else float(FAULTS[name][0] or 0.0)
