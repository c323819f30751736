"""What a failed connection or resume means: contract cause codes for `token` and
`resume` (pure: error facts in, an `Outcome` out; no sockets, no clock). The token
endpoint's answers are judged in `mint_outcome.py`.

The service reports one credential problem several ways (protocol.md §2.2, §4): an HTTP
401 before the upgrade, `UNAUTHORIZED` then close 1008 after it, a lowercase
`unauthorized` first frame for an expired token, or, in browsers, a bare 1006. These
functions fold them into the few causes a user can act on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from doctor.credentials import Finding
from doctor.result import Status

GRACE_WINDOW_S = 30.0  # protocol.md §3.6
TOKEN_PARAMS = ("expires_in_seconds", "max_session_duration_seconds")
AUTH_REFUSALS = frozenset({"unauthorized", "token_expired", "forbidden"})
BROWSER_1006 = "a browser sees close 1006 with no reason"
NO_SESSION_ID = "session.ready without session_id"
SHAPE_HINTS = frozenset({"looks_like_token", "looks_like_key"})  # doctor/credentials.py


@dataclass(frozen=True)
class Outcome:
    """One problem: its contract cause, how bad, a one-line summary and the guide entry."""

    cause: str
    status: Status
    summary: str
    guide: str
    detail: str = ""
    endpoint: str = "ws"  # whose host the fix names: "ws" or "token" (the token URL's)


@dataclass(frozen=True)
class Failure:
    """The facts of a failed step, taken from an `AgentApiError` and the frames seen."""

    kind: str  # http_status, proxy_status, connect, session_error, closed, timeout,
    # no_session_id (a session.ready without a string `session_id`, protocol.md §3.1)
    step: str
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    close_code: int | None = None
    close_reason: str | None = None
    close_frame: bool | None = None
    reason: str | None = None
    timeout_s: float | None = None
    body: str | None = None
    not_tried: str | None = None  # why no wait was started (a peer that stalled earlier)

    @classmethod
    def of(cls, err: Any, first_error: dict[str, Any] | None = None) -> Failure:
        """From an `AgentApiError`; `first_error` is a `session.error` payload received on
        the connection before it failed (a close during `send` hides it otherwise)."""
        code = getattr(err, "error_code", None)
        message = getattr(err, "error_message", None)
        if code is None and first_error is not None:
            code = first_error.get("code")
            message = first_error.get("message")
        return cls(
            kind=str(getattr(err, "kind", "error")),
            step=str(getattr(err, "step", "")),
            http_status=getattr(err, "http_status", None),
            error_code=None if code is None else str(code),
            error_message=None if message is None else str(message),
            close_code=getattr(err, "close_code", None),
            close_reason=getattr(err, "close_reason", None),
            close_frame=getattr(err, "close_frame", None),
            reason=getattr(err, "reason", None),
            timeout_s=getattr(err, "timeout_s", None),
            body=getattr(err, "body", None),
            not_tried=getattr(err, "not_tried", None),
        )

    def close_text(self) -> str:
        if self.close_frame is False:
            return "no close frame (1006)"
        if self.close_code is None:
            return "the socket closed"
        return f"close {self.close_code}" + (f" {self.close_reason}" if self.close_reason else "")

    def error_text(self) -> str:
        msg = f" ({self.error_message})" if self.error_message else ""
        return f"session.error {self.error_code}{msg}"


# --- opening a session --------------------------------------------------------------------


def session_outcome(f: Failure, auth: str, *, token_age_s: float | None = None,
                    token_window_s: float | None = None,
                    key_minted: bool = False) -> Outcome:  # fmt: skip
    """A connection that did not reach `session.ready`. `auth` is `api_key` or `token`;
    the age and window of a token we minted let us call a late refusal an expiry.
    `key_minted`: this API key just minted a token (HTTP 200), so the service accepts it
    and a refusal of it at the WebSocket is not "a wrong key"."""
    outcome = _session_outcome(f, auth, token_age_s, token_window_s)
    if not (key_minted and auth == "api_key"):
        return outcome
    return _weigh_mint(f, outcome)


MINTED = "the same API key just minted a token (HTTP 200), so the service accepts the key"


def _weigh_mint(f: Failure, outcome: Outcome) -> Outcome:
    """A key refusal after the key minted a token: an abrupt cut is not blamed on the key;
    an explicit refusal stays one, pointing at what differs (the WebSocket URL)."""
    if outcome.cause == "unauthorized" and f.close_frame is False and f.error_code is None:
        return Outcome(
            "no_session_ready",
            Status.FAIL,
            "the connection was cut right after the upgrade with no frame at all (no "
            f"session.error, no close frame: 1006); {MINTED}: a proxy or the service cut "
            "the connection",
            "service_side",
            f"1006 with no frames right after connect; {MINTED}",
        )
    if outcome.cause == "unauthorized":
        return dataclasses.replace(
            outcome,
            summary=f"{outcome.summary}, although {MINTED}: check that --ws-url is the "
            "token endpoint's region and carries no stale token parameter",
            detail=f"{outcome.detail}; {MINTED}",
        )
    return outcome


def _session_outcome(f: Failure, auth: str, token_age_s: float | None,
                     token_window_s: float | None) -> Outcome:  # fmt: skip
    who = "API key" if auth == "api_key" else "token"
    code = f.error_code
    late = token_age_s is not None and token_window_s is not None and token_age_s > token_window_s
    said = (f.error_message or "").lower()
    expired_words = "expir" in said or "redemption window" in said
    if f.kind == "no_session_id":
        return Outcome(
            "no_session_ready",
            Status.FAIL,
            f"session.ready without session_id for the {who}: the session cannot be "
            "logged, resumed or found by support (agent-doctor sent session.end at once)",
            "service_side",
            NO_SESSION_ID,
        )
    if f.not_tried is not None:
        return Outcome(
            "timeout",
            Status.FAIL,
            f"the {who} session was not tried: {f.not_tried}",
            "firewall",
            f.not_tried,
        )
    if f.kind == "timeout":
        step = {"connect": "the WebSocket connection", "ready": "session.ready",
                "send": "the first message"}.get(f.step, f.step)  # fmt: skip
        return Outcome(
            "timeout",
            Status.FAIL,
            f"no {step} within {f.timeout_s or 0:g} s",
            "firewall" if f.step == "connect" else "service_side",
            f"waiting for {step} ({who})",
        )
    if f.kind == "http_status":
        status = f.http_status
        if status == 401:
            # the body of a 401 may say why ("Token expired"): an expiry has its own fix
            body_expired = auth == "token" and "expir" in (f.body or "").lower()
            said_body = f": the body says {_quoted(f.body)}" if body_expired else ""
            return Outcome(
                "token_expired" if late or body_expired else "unauthorized",
                Status.FAIL,
                f"the WebSocket upgrade was refused with HTTP 401 for the {who}{said_body} "
                f"({BROWSER_1006})",
                "token_auth",
                f"HTTP 401 before the upgrade ({who})",
            )
        if status == 403:
            return Outcome(
                "forbidden",
                Status.FAIL,
                f"the WebSocket upgrade was refused with HTTP 403 for the {who}: valid "
                "credential, but not allowed to use the Voice Agent API",
                "account_access",
                f"HTTP 403 on the WebSocket upgrade ({who})",
            )
        if status == 429:
            return Outcome(
                "rate_limited",
                Status.FAIL,
                "the WebSocket upgrade was refused with HTTP 429 (rate limited)",
                "service_side",
                "HTTP 429 on the WebSocket upgrade",
            )
        return Outcome(
            "server_error",
            Status.FAIL,
            f"the WebSocket upgrade was refused with HTTP {status}",
            "service_side",
            f"HTTP {status} on the upgrade",
        )
    if f.kind in ("connect", "proxy_status"):
        why = f.reason or f"proxy HTTP {f.http_status}"
        return Outcome(
            "timeout" if why == "timeout" else "no_session_ready",
            Status.FAIL,
            f"the WebSocket connection failed ({why}) although the reachability check passed",
            "firewall",
            f"connect: {why}",
        )
    if code is not None:
        return _by_error_code(f, code, who, late, expired_words)
    # Closed without any session.error frame.
    if f.close_frame is False:
        return Outcome(
            "unauthorized",
            Status.FAIL,
            "the connection was cut right after the upgrade with no frame at all (no "
            f"session.error, no close frame: 1006): most likely the {who} was refused "
            f"({BROWSER_1006} for a refused credential); if the {who} is right, a proxy or "
            "the service cut the connection",
            "token_auth",
            "1006 with no frames right after connect",
        )
    if f.close_code == 1008 and (f.close_reason or "").upper() == "UNAUTHORIZED":
        return Outcome(
            "token_expired" if late or expired_words else "unauthorized",
            Status.FAIL,
            f"the service closed the connection with 1008 UNAUTHORIZED for the {who} "
            f"({BROWSER_1006})",
            "token_auth",
            "close 1008 UNAUTHORIZED",
        )
    if f.close_code == 1008 and (f.close_reason or "").upper() == "FORBIDDEN":
        return Outcome(
            "forbidden", Status.FAIL, f"closed with 1008 FORBIDDEN for the {who}",
            "account_access", f"close 1008 FORBIDDEN ({who})",
        )  # fmt: skip
    return Outcome(
        "no_session_ready",
        Status.FAIL,
        f"no session.ready: {f.close_text()} before it, with no session.error",
        "service_side",
        f.close_text(),
    )


def _quoted(body: str | None) -> str:
    text = " ".join((body or "").split())
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def _by_error_code(f: Failure, code: str, who: str, late: bool, expired_words: bool) -> Outcome:
    """Codes compared case-insensitively: the docs write UNAUTHORIZED, the live service
    sends `unauthorized` (field-facts §4)."""
    close = f.close_text()
    upper = code.upper()
    if upper == "UNAUTHORIZED" and (late or expired_words):
        return Outcome(
            "token_expired",
            Status.FAIL,
            f"the {who} was refused as expired: {f.error_text()}, then {close}; tokens must "
            "be used within their expires_in_seconds window",
            "token_auth",
            f"{f.error_text()}, {close}",
        )
    if upper == "UNAUTHORIZED":
        # protocol.md: a refused handshake (browsers see 1006); field-facts §2: the upgrade
        # succeeds and the error frame comes first (browsers see open, the frame, 1008)
        seen = BROWSER_1006 if code.isupper() else "a browser sees the socket open, then this"
        return Outcome(
            "unauthorized",
            Status.FAIL,
            f"the service refused the {who}: {f.error_text()}, then {close} ({seen})",
            "token_auth",
            f"{f.error_text()}, {close}",
        )
    if upper == "FORBIDDEN":
        return Outcome(
            "forbidden",
            Status.FAIL,
            f"the {who} is valid but not allowed here: {f.error_text()}, then {close}",
            "account_access",
            f"{f.error_text()}, {close}",
        )
    if upper in ("SERVER_ERROR", "INTERNAL_ERROR"):
        return Outcome(
            "server_error",
            Status.FAIL,
            f"the service could not start a session: {f.error_text()}, then {close}",
            "service_side",
            f"{f.error_text()}, {close}",
        )
    return Outcome(
        "no_session_ready",
        Status.FAIL,
        f"no session.ready: {f.error_text()}, then {close}",
        "service_side",
        f"{f.error_text()}, {close}",
    )


def reuse_refused(f: Failure) -> bool | None:
    """Whether a second use of a token was refused (True), or the attempt says nothing
    either way (None: a timeout, a server error)."""
    outcome = session_outcome(f, "token")
    if outcome.cause in AUTH_REFUSALS:
        return True
    return None


# --- offline findings, merged with what the service said --------------------------------


def findings_outcome(
    what: str,
    findings: Iterable[Finding],
    online: Outcome | None,
    went_online: bool,
    worked: str = "",
) -> Outcome | None:
    """The verdict on one credential's offline findings given what its online use gave.

    - could not go online (empty, unsendable): fail;
    - refused online: fail (a token in the key variable explains a 401 better than 401);
    - worked once cleaned: fail for a mistake the app would send as is, warn for a paste
      slip (spaces); a shape hint alone says nothing once the service accepted the value.
    """
    found = list(findings)
    if went_online and online is None:
        # A shape hint may explain a refusal; it never contradicts a service that
        # accepted the value (a key of unusual shape that works passes).
        found = [f for f in found if f.code not in SHAPE_HINTS]
    if not found:
        return None
    first = found[0]
    extra = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
    detail = "; ".join(f.message for f in found)
    if not went_online:
        return Outcome(
            "malformed_credentials",
            Status.FAIL,
            f"{first.message}{extra}; not sent to the service",
            "token_auth",
            detail,
        )
    if online is not None and online.cause in AUTH_REFUSALS:
        return Outcome(
            "malformed_credentials",
            Status.FAIL,
            f"{first.message}{extra}; the service refused the {what} ({online.cause})",
            "token_auth",
            detail,
        )
    if online is not None:
        return None  # another problem (server, network) says more; findings go to evidence
    severe = any(f.severity == "fail" for f in found)
    tail = f"; with that undone it works ({worked})" if severe and worked else ""
    return Outcome(
        "malformed_credentials",
        Status.FAIL if severe else Status.WARN,
        f"{first.message}{extra}{tail}",
        "token_auth",
        detail,
    )


# --- resume -------------------------------------------------------------------------------


def resume_outcome(f: Failure, delay_s: float, grace_s: float = GRACE_WINDOW_S) -> Outcome:
    """A `session.resume` that did not give `session.ready` back."""
    when = f"{delay_s:.1f} s after the drop"
    inside = delay_s < grace_s
    window = (
        f"inside the {grace_s:g} s grace window"
        if inside
        else f"beyond the {grace_s:g} s grace window (expected: use a shorter --resume-delay)"
    )
    code = (f.error_code or "").lower() or None
    close = f.close_text()
    if code == "session_not_found":
        # field-facts §6: every live resume was refused like this; the fix is the app's
        return Outcome(
            "resume_rejected",
            Status.WARN,
            f"the service refused session.resume {when} ({window}): {f.error_text()}, then "
            f"{close}; the app must start a fresh session when this happens",
            "resume_refused",
            f"session_not_found {when}",
        )
    if code == "session_forbidden":
        return Outcome(
            "resume_forbidden",
            Status.FAIL,
            f"session_forbidden {when}: the service says the session belongs to another "
            f"account or key; then {close}",
            "resume_forbidden",
            f"session_forbidden {when}",
        )
    if code == "session_expired":
        return Outcome(
            "resume_expired",
            Status.FAIL,
            f"session_expired {when}: the session's time limit ran out; then {close}",
            "resume_expired",
            f"session_expired {when}",
        )
    if f.not_tried is not None:
        return Outcome(
            "timeout", Status.FAIL, f"session.resume was not tried: {f.not_tried}", "firewall",
            f.not_tried,
        )  # fmt: skip
    if f.kind == "timeout":
        return Outcome(
            "timeout",
            Status.FAIL,
            f"no answer to session.resume within {f.timeout_s or 0:g} s ({when})"
            if f.step == "resume"
            else f"no {f.step} within {f.timeout_s or 0:g} s on the second connection",
            "service_side",
            f"timeout at {f.step} ({when})",
        )
    if f.kind == "no_session_id":
        got = NO_SESSION_ID
    elif code is not None:
        got = f"{f.error_text()}, then {close}"
    elif f.kind == "http_status":
        got = f"HTTP {f.http_status} refusing the second connection"
    elif f.kind in ("connect", "proxy_status"):
        got = f"the second connection failed ({f.reason or f.http_status})"
    else:
        got = f"{close} and no event"
    return Outcome(
        "no_ready_after_resume",
        Status.FAIL,
        f"no session.ready after session.resume ({when}): {got}",
        "resume_no_ready",
        f"{got} ({when})",
    )


def after_resume_outcome(
    first_id: str | None,
    resumed_id: str | None,
    ended: bool,
    close_code: int | None,
    close_reason: str | None,
    delay_s: float,
    no_ended: str | None = None,
) -> Outcome | None:
    """A resume that got `session.ready`: was it the same session, and did it end cleanly.
    `no_ended`: why no session.ended came (`Attempt.no_ended_text`: our wait ran out)."""
    if resumed_id != first_id:
        return Outcome(
            "session_id_changed",
            Status.WARN,
            f"session.resume {delay_s:.1f} s after the drop gave session.ready with another "
            f"id ({resumed_id} instead of {first_id}): the conversation context may be lost",
            "resume_new_id",
            f"resume returned {resumed_id} for {first_id}",
        )
    if not ended:
        return Outcome(
            "no_session_ended",
            Status.WARN,
            f"resume worked ({delay_s:.1f} s after the drop), but session.end got no "
            f"session.ended {no_ended or f'before the close ({close_code})'}: the service "
            "may bill the "
            f"{GRACE_WINDOW_S:g} s grace window",
            "billing",
            f"{resumed_id}: close {close_code} {close_reason or ''}".strip(),
        )
    return None
