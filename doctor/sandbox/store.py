"""Tokens and sessions of the sandbox, with time passed in (`now`, seconds, monotonic).

No clock, no sockets: the server shell asks this store what the service would decide
(is this token usable, may this id be resumed by this key, when does this session end).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

TOKEN_EXPIRES_RANGE = (1, 600)
TOKEN_SESSION_RANGE = (60, 10800)
DEFAULT_TOKEN_SESSION_S = 10800
KEEP_FINISHED = 500  # ended sessions kept for history; the oldest go first


@dataclass
class TokenGrant:
    token: str
    owner_key: str
    minted_at: float
    expires_in_s: int
    max_session_s: int
    redeemed: int = 0

    @property
    def deadline(self) -> float:
        return self.minted_at + self.expires_in_s


@dataclass(frozen=True)
class TokenRequestError:
    """A refused token request: the documented 400 text, and the field's 422 item."""

    status: int
    message: str
    param: str | None = None
    item: dict[str, Any] | None = None  # one FastAPI validation entry (field-facts §1)


def _item(kind: str, name: str, msg: str, raw: str | None, **ctx: int) -> dict[str, Any]:
    """A FastAPI/pydantic validation entry, as the live token endpoint lists them."""
    entry: dict[str, Any] = {"type": kind, "loc": ["query", name], "msg": msg, "input": raw}
    if ctx:
        entry["ctx"] = ctx
    return entry


def parse_token_query(query: dict[str, list[str]]) -> tuple[int, int] | list[TokenRequestError]:
    """Validate `expires_in_seconds` (required, 1-600) and `max_session_duration_seconds`
    (60-10800): the two values, or every problem found (FastAPI reports them all)."""
    problems: list[TokenRequestError] = []

    def integer(name: str, lo: int, hi: int, required: bool) -> int | None:
        values = query.get(name)
        if not values:
            if required:
                problems.append(
                    TokenRequestError(
                        400,
                        f"{name} is required",
                        name,
                        _item("missing", name, "Field required", None),
                    )
                )
            return None
        raw = values[-1].strip()
        try:
            value = int(raw)
        except ValueError:
            problems.append(
                TokenRequestError(
                    400,
                    f"{name} must be an integer, got {raw!r}",
                    name,
                    _item(
                        "int_parsing",
                        name,
                        "Input should be a valid integer, unable to parse string as an integer",
                        values[-1],
                    ),
                )
            )
            return None
        if value < lo or value > hi:
            bound = (
                _item("greater_than_equal", name,
                      f"Input should be greater than or equal to {lo}", values[-1], ge=lo)
                if value < lo
                else _item("less_than_equal", name,
                           f"Input should be less than or equal to {hi}", values[-1], le=hi)
            )  # fmt: skip
            problems.append(
                TokenRequestError(400, f"{name} must be between {lo} and {hi}", name, bound)
            )
            return None
        return value

    expires = integer("expires_in_seconds", *TOKEN_EXPIRES_RANGE, required=True)
    cap = integer("max_session_duration_seconds", *TOKEN_SESSION_RANGE, required=False)
    if problems:
        return problems
    assert expires is not None
    return expires, DEFAULT_TOKEN_SESSION_S if cap is None else cap


@dataclass
class ReplyRecord:
    """One agent reply, timed on the wall clock (epoch seconds, as event timestamps are)."""

    reply_id: str
    item_id: str
    trigger: str  # greeting, user_speech, tool_result, reply_create (timeline triggers)
    text: str
    created_at: float  # reply.started went out
    audible_start_at: float | None = None  # the first chunk of voice (after the lead-in)
    audible_end_at: float | None = None  # the last chunk sent, whole or cut
    done_at: float | None = None
    status: str | None = None  # completed, interrupted
    spoken_text: str | None = None  # what transcript.agent said was spoken
    call_ids: list[str] = field(default_factory=list)  # tool calls this reply carried


@dataclass
class UserTurnRecord:
    """One user utterance as the server heard it (wall clock, epoch seconds)."""

    item_id: str
    started_at: float | None  # input.speech.started went out
    ended_at: float | None = None  # input.speech.stopped (the end-of-turn commit)
    transcript: str | None = None
    reply_id: str | None = None  # the reply that answered it, if any


@dataclass
class ToolCallRecord:
    call_id: str
    name: str
    arguments: dict[str, Any]
    reply_id: str
    dispatched_at: float
    result: str | None = None
    result_at: float | None = None
    is_error: bool | None = None
    timed_out: bool = False


@dataclass
class ClientMessage:
    """What the client sent, as the server saw it (audio as sizes, never as bytes)."""

    at: float
    type: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Session:
    id: str
    owner_key: str
    created_at: float
    cap_deadline: float  # monotonic time at which the duration cap ends the session
    config: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    attached: int | None = None  # connection id holding the session, None while detached
    detached_at: float | None = None
    ended: bool = False
    audio_s: float = 0.0
    audio_received: bool = False
    # What a timeline of the session needs (wall clock, epoch seconds).
    started_at: float = 0.0
    ended_at: float | None = None
    end_reason: str | None = None  # session.end, session_expired, grace_expired, error
    replies: list[ReplyRecord] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    client_messages: list[ClientMessage] = field(default_factory=list)
    config_changes: list[tuple[float, list[str]]] = field(default_factory=list)
    user_turns: list[UserTurnRecord] = field(default_factory=list)
    first_update: dict[str, Any] | None = None  # the first session.update's config
    first_update_at: float | None = None
    recorder: Any = None  # recorder.Recorder while the session records
    artifacts: Any = None  # artifacts.Artifacts once written

    def reply(self, reply_id: str) -> ReplyRecord | None:
        return next((r for r in reversed(self.replies) if r.reply_id == reply_id), None)

    def tool_call(self, call_id: str) -> ToolCallRecord | None:
        return next((c for c in self.tool_calls if c.call_id == call_id), None)


def new_session_id() -> str:
    return "sess_" + secrets.token_hex(16)


class Store:
    """What the service remembers between connections."""

    def __init__(self, grace_s: float, single_use_tokens: bool = True) -> None:
        self.grace_s = grace_s
        self.single_use_tokens = single_use_tokens
        self.tokens: dict[str, TokenGrant] = {}
        self.sessions: dict[str, Session] = {}  # alive or within their grace window
        self.finished: dict[str, Session] = {}  # ended: gone for resume, kept for history

    # --- tokens -------------------------------------------------------------------------
    def mint(self, owner_key: str, expires_in_s: int, max_session_s: int, now: float) -> TokenGrant:
        grant = TokenGrant(secrets.token_urlsafe(32), owner_key, now, expires_in_s, max_session_s)
        self.tokens[grant.token] = grant
        return grant

    def redeem(self, token: str, now: float) -> TokenGrant | str:
        """The grant, or why it is refused: `unknown`, `expired` or `used`."""
        grant = self.tokens.get(token)
        if grant is None:
            return "unknown"
        if grant.redeemed and self.single_use_tokens:
            return "used"
        if now > grant.deadline:
            return "expired"
        grant.redeemed += 1
        return grant

    # --- sessions -----------------------------------------------------------------------
    def create(
        self, owner_key: str, now: float, cap_s: float, conn: int, session_id: str | None = None
    ) -> Session:
        session = Session(
            session_id or new_session_id(), owner_key, now, now + cap_s, attached=conn
        )
        self.sessions[session.id] = session
        return session

    def detach(self, session_id: str, now: float) -> None:
        """The socket went away without session.end: the grace window starts."""
        session = self.sessions.get(session_id)
        if session is not None and not session.ended:
            session.attached = None
            session.detached_at = now

    def end(self, session_id: str) -> None:
        """session.end, the duration cap or a fatal error: the id dies at once."""
        session = self.sessions.pop(session_id, None)
        if session is not None:
            session.ended = True
            session.attached = None
            self.finished[session.id] = session
            while len(self.finished) > KEEP_FINISHED:  # a long-running sandbox stays bounded
                del self.finished[next(iter(self.finished))]

    def resume(self, session_id: str, owner_key: str, now: float, conn: int) -> Session | str:
        """The session, re-attached to `conn`, or `session_not_found` / `session_forbidden`."""
        self.expire(now)
        session = self.sessions.get(session_id)
        if session is None:
            return "session_not_found"
        if session.owner_key != owner_key:
            return "session_forbidden"
        session.attached = conn
        session.detached_at = None
        return session

    def reissue(self, session_id: str) -> Session:
        """The same session under a new id; the old id is gone (a later resume of it is
        `session_not_found`)."""
        session = self.sessions.pop(session_id)
        session.id = new_session_id()
        self.sessions[session.id] = session
        return session

    def expire(self, now: float) -> list[str]:
        """Forget detached sessions whose grace window is over; returns their ids."""
        gone = [
            s.id
            for s in self.sessions.values()
            if s.attached is None
            and s.detached_at is not None
            and (now > s.detached_at + self.grace_s or now >= s.cap_deadline)
        ]
        for sid in gone:
            self.sessions[sid].end_reason = "grace_expired"
            self.end(sid)
        return gone
