"""Opening, ending and dropping real sessions for the `token` and `resume` checks.

The shell both checks share, so each session is handled the same way: minted tokens are
registered as secrets before anything can print them, every connection that got past the
upgrade goes into the report's `support` block (id, close, start, region, duration), and
every timeline is re-based on the check's own start so two connections read as one story.
Heavy imports (websockets, httpx) happen inside `doctor.net.agent_api` calls only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from doctor.context import REGIONS, Context, SessionRecord
from doctor.net.auth_outcome import NO_SESSION_ID, Failure, Outcome
from doctor.net.mint_outcome import GET, mint_outcome
from doctor.report.redact import mask

if TYPE_CHECKING:
    from doctor.net.agent_api import AgentConnection, TokenResult

# No greeting: nothing is spoken, so nothing but connection time is used.
MINIMAL_CONFIG: dict[str, Any] = {
    "system_prompt": "agent-doctor connectivity test: no greeting, no audio; it ends at once."
}
TOKEN_EXPIRES_S = 60
TOKEN_MAX_SESSION_S = 60
# `finish` runs in the `finally` of a check its timeout may have cancelled: it gets this
# long per connection for session.end and the close, then the socket is cut.
FINISH_S = 2.0

# The worst case of the client's waits (doctor/net/agent_api.py), in `--timeout` units and
# fixed seconds, so a check's budget covers a server that answers each step at the last
# moment (or not at all) and still ends with its own verdict rather than the runner's.
# A session: connect (open_timeout) 1, session.ready 1, session.end -> session.ended 1,
# then the server's close 1 (`end`), then `aclose`: the close handshake 1 + its wait 1.
SESSION_WAITS = 6
# Fixed waits a session can add: after a failed send (1 s each for the first message and
# session.end) and after a fatal session.error (at most 0.1 s past its step's deadline).
SESSION_FIXED_S = 2.1
# A mint: httpx applies the timeout to connect, write and read separately.
MINT_WAITS = 3
# A drop: the abort's wait for the reader, then (if that timed out) `aclose` 2.
DROP_WAITS = 3


def budget_s(timeout: float, *, sessions: int, mints: int = 0, drops: int = 0) -> float:
    """Worst-case seconds for `sessions` full sessions, `mints` mints and `drops` drops
    with every wait bounded by `timeout`, plus `finish` and a little scheduling slack."""
    waits = sessions * SESSION_WAITS + mints * MINT_WAITS + drops * DROP_WAITS
    fixed = sessions * (SESSION_FIXED_S + FINISH_S)
    return waits * timeout + fixed + 5.0


def fix_values(ctx: Context, endpoint: str = "ws") -> dict[str, str]:
    """What a guide entry names for this run: the host and port of the endpoint that
    failed (the token URL for a mint, the WebSocket otherwise) and the other region's
    host, so an EU or custom-URL user is never told about agents.assemblyai.com by default."""
    url = ctx.token_url if endpoint == "token" else ctx.ws_url
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    secure = parts.scheme in ("wss", "https")
    other_ws, _ = REGIONS[ctx.other_region()]
    return {
        "host": parts.hostname or url,
        "port": str(port or (443 if secure else 80)),
        "scheme": parts.scheme,  # the fix's words for the wire (TLS or not, curl's scheme)
        "other_host": urllib.parse.urlsplit(other_ws).hostname or other_ws,
        "region": ctx.region,
        "other_region": ctx.other_region(),
        "ws_url": ctx.ws_url,
        "endpoint_url": urllib.parse.urlunsplit(parts._replace(query="", fragment="")),
        "protocol": "HTTPS" if secure else "plain HTTP",
        "token_url": REGIONS[ctx.region][1] if ctx.urls_overridden else ctx.token_url,
    }


@dataclass(frozen=True)
class Auth:
    """How one connection authenticates; `value` never leaves this object."""

    kind: str  # "api_key" or "token"
    value: str = field(repr=False)
    label: str  # what the report calls it: "API key", "minted token #1", "your --token"
    header: str = "bearer"  # API key in `Authorization: Bearer ...` or raw
    minted_at: float | None = None  # monotonic, for tokens we minted
    window_s: float | None = None

    @property
    def masked(self) -> str:
        return mask(self.value)


@dataclass
class Attempt:
    """One connection: how it went, what it cost, and its events."""

    label: str
    auth: Auth
    started_at: datetime
    offset_s: float  # connection start, seconds after the check started
    conn: AgentConnection | None = None
    session_id: str | None = None
    time_to_ready_ms: float | None = None
    failure: Failure | None = None
    ended: bool | None = None  # session.ended came back after session.end
    ended_payload: dict[str, Any] | None = None
    dropped: bool = False
    closed_at: float | None = None  # monotonic
    opened_at: float = 0.0  # monotonic
    upgraded: bool = False
    recorded: bool = False
    notes: list[str] = field(default_factory=list)
    end_waited_s: float | None = None  # agent-doctor gave up waiting for session.ended

    def no_ended_text(self) -> str:
        """Why there is no session.ended: a wait of ours that ran out, or the close."""
        if self.end_waited_s is not None:
            return (
                f"within {self.end_waited_s:g} s (agent-doctor stopped waiting and closed the "
                "connection)"
            )
        return f"before the close ({self.close_code})"

    @property
    def ready(self) -> bool:
        return self.session_id is not None and self.failure is None

    @property
    def duration_s(self) -> float:
        end = self.closed_at if self.closed_at is not None else time.monotonic()
        return max(0.0, end - self.opened_at)

    @property
    def close_code(self) -> int | None:
        return self.conn.close_code if self.conn is not None else None

    @property
    def close_reason(self) -> str | None:
        if self.conn is None:
            return None
        if self.dropped:
            return "dropped by agent-doctor (no close frame) to test resume"
        return self.conn.close_reason or None

    def timeline(self) -> list[dict[str, Any]]:
        """The connection's events, `t_s` counted from the check's start."""
        if self.conn is None:
            return []
        out = []
        for event in self.conn.timeline_dicts():
            event["t_s"] = round(event["t_s"] + self.offset_s, 4)
            out.append(event)
        return out

    def evidence(self, with_events: bool = True) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "connection": self.label,
            "auth": self.auth.kind,
            "credential": self.auth.masked,
            "session_id": self.session_id,
            "started_t_s": round(self.offset_s, 4),
            "time_to_ready_ms": self.time_to_ready_ms,
            "session_ended_received": self.ended,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "duration_s": round(self.duration_s, 3),
        }
        if self.auth.kind == "api_key":
            ev["auth_header"] = "Bearer <key>" if self.auth.header == "bearer" else "<key>"
        if self.ended_payload is not None:
            ev["session_duration_seconds"] = self.ended_payload.get("session_duration_seconds")
        if self.failure is not None:
            ev["failure"] = {k: v for k, v in vars(self.failure).items() if v is not None}
        if self.notes:
            ev["notes"] = list(self.notes)
        if with_events:
            ev["events"] = self.timeline()
        return ev


class Sessions:
    """A check's sessions: `open`, then `end` or `drop`, then `finish` (in a `finally`)."""

    def __init__(self, ctx: Context, check_id: str) -> None:
        self.ctx = ctx
        self.check_id = check_id
        self.t0 = time.monotonic()
        self.attempts: list[Attempt] = []
        self.minted: list[dict[str, Any]] = []

    def now_s(self) -> float:
        return round(time.monotonic() - self.t0, 4)

    # --- tokens -------------------------------------------------------------------------
    async def mint(
        self,
        api_key: str,
        label: str,
        expires_s: int = TOKEN_EXPIRES_S,
        max_session_s: int = TOKEN_MAX_SESSION_S,
    ) -> tuple[TokenResult, Auth | None]:
        """GET /v1/token with the key in the header as given (raw); the token, if any, is
        a registered secret before this returns. Raises `AgentApiError` with no answer."""
        from doctor.net.agent_api import StepTimeout, mint_token

        stall = self.ctx.stalls.stalled(self.ctx.token_url)
        if stall is not None:
            raise StepTimeout(
                "token", f"not sent: {stall.text()}", timeout_s=0.0, not_tried=stall.text()
            )
        at = time.monotonic()
        try:
            result = await mint_token(
                self.ctx.token_url,
                api_key,
                expires_s,
                max_session_s,
                proxy=self.ctx.proxy,
                ca_bundle=self.ctx.ca_bundle,
                timeout=self.ctx.timeout,
                auth_header="raw",
            )
        except StepTimeout:
            self.ctx.stalls.record(
                self.ctx.token_url, "token request (GET /v1/token)", self.check_id, self.ctx.timeout
            )
            raise
        if result.token:
            self.ctx.add_secret("minted_token", result.token)
        self.minted.append(
            {
                "label": label,
                "t_s": round(at - self.t0, 4),
                "http_status": result.status,
                "elapsed_ms": result.elapsed_ms,
                "token": mask(result.token) if result.token else None,
                "expires_in_seconds": result.expires_in_seconds,
                "retry_after_s": result.retry_after_s,
            }
        )
        if not result.ok:
            return result, None
        assert result.token is not None
        auth = Auth("token", result.token, label, minted_at=at, window_s=float(expires_s))
        return result, auth

    @staticmethod
    def judge_mint(
        result: TokenResult, asked_expires_s: int = TOKEN_EXPIRES_S, get: str = GET
    ) -> Outcome | None:
        """What is wrong with a mint's answer; None for a usable token of the right shape."""
        outcome = mint_outcome(
            result.status,
            bool(result.token),
            result.expires_in_seconds,
            asked_expires_s,
            result.error,
            result.body,
            result.retry_after_s,
            get=get,
        )
        return None if outcome is None else dataclasses.replace(outcome, endpoint="token")

    # --- connections --------------------------------------------------------------------
    async def open(self, auth: Auth, resume_id: str | None = None) -> Attempt:
        """Connect and send `session.update` (or `session.resume resume_id`) as the first
        message; wait for `session.ready`. Never raises for a service answer: the
        `Attempt` holds the failure. The connection stays open while the session is."""
        from doctor.net.agent_api import AgentApiError, AgentConnection

        stall = self.ctx.stalls.stalled(self.ctx.ws_url)
        if stall is not None:
            return self._not_tried(auth, stall.text(), "connect" if resume_id is None else "resume")
        opener = AgentConnection.open(
            self.ctx.ws_url,
            api_key=auth.value if auth.kind == "api_key" else None,
            token=auth.value if auth.kind == "token" else None,
            proxy=self.ctx.proxy,
            ca_bundle=self.ctx.ca_bundle,
            timeout=self.ctx.timeout,
            auth_header=auth.header,
        )
        conn = opener.conn
        now = time.monotonic()
        attempt = Attempt(
            label=auth.label,
            auth=auth,
            started_at=datetime.now(timezone.utc),
            offset_s=(now - conn.now()) - self.t0,
            conn=conn,
            opened_at=now - conn.now(),
        )
        self.attempts.append(attempt)
        try:
            await opener
            attempt.upgraded = True
            if resume_id is None:
                await conn.start_session(MINIMAL_CONFIG)
            else:
                payload = await conn.resume(resume_id)
                if isinstance(payload.get("session_id"), str):
                    conn.session_id = payload["session_id"]
            attempt.session_id = conn.session_id
            ready_s = conn.ready_s or 0.0
            attempt.time_to_ready_ms = round(ready_s * 1000, 1)
            if attempt.session_id is None:
                # protocol.md §3.1: session_id is always present. The service thinks a
                # session started, so it is ended at once (not billed for the grace window).
                attempt.failure = Failure(
                    kind="no_session_id",
                    step="ready" if resume_id is None else "resume",
                    reason=NO_SESSION_ID,
                )
                await self.end(attempt)
        except AgentApiError as err:
            attempt.failure = Failure.of(err, _first_error(conn))
            attempt.session_id = conn.session_id
            if err.kind == "timeout" and err.step == "connect":
                self._stalled(err.timeout_s)
            await self._close(attempt)
        return attempt

    def _not_tried(self, auth: Auth, why: str, step: str) -> Attempt:
        """A connection not even opened: its peer stalled earlier in the run."""
        now = time.monotonic()
        attempt = Attempt(
            label=auth.label,
            auth=auth,
            started_at=datetime.now(timezone.utc),
            offset_s=now - self.t0,
            opened_at=now,
            closed_at=now,
            failure=Failure(kind="timeout", step=step, timeout_s=0.0, not_tried=why),
        )
        self.attempts.append(attempt)
        return attempt

    def _stalled(self, timeout_s: float | None) -> None:
        """Only silence at the transport (TCP, TLS, the upgrade) marks the peer as stalled
        for the rest of the run. A peer that got that far and was late with one event
        (`session.ready`, an answer to `session.resume`, `session.ended`: field-facts §12
        saw one `session.ended` miss 4 s) is answering: its later sessions are still tried,
        each with its own timeout."""
        self.ctx.stalls.record(
            self.ctx.ws_url,
            "WebSocket connection (TCP, TLS, upgrade)",
            self.check_id,
            timeout_s or self.ctx.timeout,
        )

    async def end(self, attempt: Attempt, timeout: float | None = None) -> None:
        """`session.end`, then wait for `session.ended` and the server's close (each wait
        `timeout`, by default the run's)."""
        from doctor.net.agent_api import AgentApiError

        conn = attempt.conn
        if conn is None or conn.closed:
            await self._close(attempt)
            return
        try:
            payload = await conn.end(timeout)
        except AgentApiError as err:
            # A late session.ended is the session's problem (no_session_ended), not the
            # peer's: it is not recorded as a stall (see `_stalled`).
            attempt.notes.append(f"session.end: {err}")
            if err.kind == "timeout":
                attempt.end_waited_s = err.timeout_s or timeout or self.ctx.timeout
            payload = None
        attempt.ended = payload is not None
        attempt.ended_payload = payload
        await self._close(attempt)

    async def drop(self, attempt: Attempt) -> float:
        """Abrupt TCP close: no `session.end`, no close frame. Returns when it happened."""
        assert attempt.conn is not None
        at = time.monotonic()
        attempt.dropped = True
        attempt.ended = False
        await attempt.conn.drop()
        await self._close(attempt)
        return at

    async def _close(self, attempt: Attempt) -> None:
        conn = attempt.conn
        if conn is None:
            return
        with contextlib.suppress(Exception):
            await conn.aclose()
        if attempt.closed_at is None:
            attempt.closed_at = time.monotonic()
        self._record(attempt)

    def _record(self, attempt: Attempt) -> None:
        """A support entry for every connection the server accepted (a refused upgrade
        opened nothing and costs nothing)."""
        if attempt.recorded or not attempt.upgraded:
            return
        attempt.recorded = True
        self.ctx.record_session(
            SessionRecord(
                check=self.check_id,
                region=self.ctx.region,
                session_id=attempt.session_id,
                started_at=attempt.started_at,
                duration_s=round(attempt.duration_s, 3),
                close_code=attempt.close_code,
                close_reason=attempt.close_reason,
                ended_cleanly=attempt.ended if attempt.session_id else None,
                auth=attempt.auth.kind,
            )
        )

    async def finish(self) -> None:
        """Close whatever is still open (a check timing out, an exception): end every
        session the server called ready, so a failure of ours is never billed for the
        grace window. The client notes the id on receipt of session.ready, so a check
        cancelled before `open` returned still ends it. Bounded: FINISH_S a connection."""
        for attempt in self.attempts:
            conn = attempt.conn
            if conn is None or attempt.recorded or not attempt.upgraded:
                continue
            if attempt.session_id is None:
                attempt.session_id = conn.session_id
            try:
                await asyncio.wait_for(self._wind_up(attempt), FINISH_S)
            except asyncio.TimeoutError:
                attempt.notes.append(f"not closed within {FINISH_S:g} s: connection cut")
                if conn.ws is not None:
                    conn.ws.transport.abort()
                if attempt.closed_at is None:
                    attempt.closed_at = time.monotonic()
                self._record(attempt)

    async def _wind_up(self, attempt: Attempt) -> None:
        conn = attempt.conn
        assert conn is not None  # finish() passes only attempts with a connection
        if (
            conn.session_id is not None
            and not attempt.dropped
            and not conn.closed
            and not conn.stalled
        ):
            with contextlib.suppress(Exception):
                await self.end(attempt, timeout=FINISH_S / 2)
        await self._close(attempt)

    @property
    def total_s(self) -> float:
        return round(sum(a.duration_s for a in self.attempts if a.upgraded), 3)


def _first_error(conn: AgentConnection) -> dict[str, Any] | None:
    for event in conn.received:
        if event.error_code is not None:
            return event.payload
    return None
