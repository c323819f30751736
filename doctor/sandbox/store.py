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
    status: int
    message: str
    param: str | None = None


def parse_token_query(query: dict[str, list[str]]) -> tuple[int, int] | TokenRequestError:
    """Validate `expires_in_seconds` (required, 1-600) and `max_session_duration_seconds`."""

    def integer(name: str) -> int | TokenRequestError | None:
        values = query.get(name)
        if not values:
            return None
        raw = values[-1].strip()
        try:
            return int(raw)
        except ValueError:
            return TokenRequestError(400, f"{name} must be an integer, got {raw!r}", name)

    expires = integer("expires_in_seconds")
    if isinstance(expires, TokenRequestError):
        return expires
    if expires is None:
        return TokenRequestError(400, "expires_in_seconds is required", "expires_in_seconds")
    lo, hi = TOKEN_EXPIRES_RANGE
    if not lo <= expires <= hi:
        return TokenRequestError(
            400, f"expires_in_seconds must be between {lo} and {hi}", "expires_in_seconds"
        )
    cap = integer("max_session_duration_seconds")
    if isinstance(cap, TokenRequestError):
        return cap
    if cap is None:
        cap = DEFAULT_TOKEN_SESSION_S
    lo, hi = TOKEN_SESSION_RANGE
    if not lo <= cap <= hi:
        return TokenRequestError(
            400,
            f"max_session_duration_seconds must be between {lo} and {hi}",
            "max_session_duration_seconds",
        )
    return expires, cap


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


def new_session_id() -> str:
    return "sess_" + secrets.token_hex(16)


class Store:
    """What the service remembers between connections."""

    def __init__(self, grace_s: float, single_use_tokens: bool = True) -> None:
        self.grace_s = grace_s
        self.single_use_tokens = single_use_tokens
        self.tokens: dict[str, TokenGrant] = {}
        self.sessions: dict[str, Session] = {}

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
    def create(self, owner_key: str, now: float, cap_s: float, conn: int) -> Session:
        session = Session(new_session_id(), owner_key, now, now + cap_s, attached=conn)
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
            self.end(sid)
        return gone
