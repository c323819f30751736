"""An async client for the Voice Agent API (real service or sandbox), built for diagnosis.

Every step has a timeout, every event both ways goes into a timeline with monotonic times,
and every way a connection can fail surfaces as a typed `AgentApiError` that says at
which step it happened and what was seen (HTTP status, `session.error` code, close code).
Secrets never enter the timeline or the error messages.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import json
import socket
import ssl
import time
import urllib.parse
from collections.abc import Awaitable, Generator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from doctor.net.events import ServerEvent, is_fatal, parse_server_event, summarize
from doctor.net.retry_after import http_date, retry_after_s
from doctor.report.redact import mask

T = TypeVar("T")

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

ProxySetting = str | bool | None  # None: environment variables; False: no proxy; str: this URL


# --- errors -------------------------------------------------------------------------------


class AgentApiError(Exception):
    """Base of every failure; `kind` and `step` let a check classify without parsing text."""

    kind = "error"

    def __init__(self, step: str, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.step = step
        self.http_status: int | None = facts.get("http_status")
        self.body: str | None = facts.get("body")
        self.error_code: str | None = facts.get("error_code")
        self.error_message: str | None = facts.get("error_message")
        self.close_code: int | None = facts.get("close_code")
        self.close_reason: str | None = facts.get("close_reason")
        self.close_frame: bool | None = facts.get("close_frame")
        self.reason: str | None = facts.get("reason")  # connect failures: dns, refused, tls...
        self.timeout_s: float | None = facts.get("timeout_s")
        self.cause: BaseException | None = facts.get("cause")
        # the cause as text, with the credentials masked (an invalid URL quotes its ?token=)
        self.cause_text: str | None = facts.get("cause_text")
        # a wait not even started: the peer stalled earlier in the run (doctor.net.stalls)
        self.not_tried: str | None = facts.get("not_tried")

    def facts(self) -> dict[str, Any]:
        """Evidence for a report (no secrets: messages come from the server or the OS)."""
        out: dict[str, Any] = {"kind": self.kind, "step": self.step}
        for name in (
            "http_status",
            "error_code",
            "error_message",
            "close_code",
            "close_reason",
            "close_frame",
            "reason",
            "timeout_s",
            "not_tried",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.cause is not None:
            text = self.cause_text if self.cause_text is not None else str(self.cause)
            out["exception"] = f"{type(self.cause).__name__}: {text}"[:300]
        return out


class HandshakeRejected(AgentApiError):
    """The server answered the upgrade with an HTTP status (401, 403, 404...)."""

    kind = "http_status"


class ProxyRejected(AgentApiError):
    """The proxy answered CONNECT with an error status (403, 407...)."""

    kind = "proxy_status"


class ConnectFailed(AgentApiError):
    """No HTTP answer: DNS, TCP, proxy or TLS failed (`reason` says which)."""

    kind = "connect"


class SessionError(AgentApiError):
    """A `session.error` frame where a success event was expected."""

    kind = "session_error"


class ClosedByServer(AgentApiError):
    """The socket closed before the expected event, without a `session.error` frame."""

    kind = "closed"


class StepTimeout(AgentApiError):
    """Nothing (or not the expected event) within the step's timeout."""

    kind = "timeout"


def connect_failure_reason(exc: BaseException) -> str:
    """`dns`, `refused`, `reset`, `no_route`, `timeout`, `tls_untrusted`, `tls_hostname`,
    `tls_expired`, `tls`, `proxy_unreachable`, `invalid_http`, `invalid_url` or `other`."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        if code == 10:
            return "tls_expired"
        if code in (62, 64) or "mismatch" in str(exc).lower():
            return "tls_hostname"
        return "tls_untrusted"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "no_route"
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return "refused"  # python-socks: "Could not connect to proxy" carries the errno
    from websockets.exceptions import InvalidMessage, InvalidURI

    if isinstance(exc, InvalidMessage):
        return "invalid_http"
    if isinstance(exc, InvalidURI):
        return "invalid_url"
    return "other"


def scrub(text: str, *secrets: str | None) -> str:
    """`text` with every given secret (and its URL-encoded form) masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            for form in {
                secret,
                urllib.parse.quote(secret, safe=""),
                urllib.parse.quote_plus(secret),
            }:
                text = text.replace(form, mask(secret))
    return text


def proxy_shown(proxy: ProxySetting) -> str:
    """The proxy as a message may show it: scheme, host and port, never credentials."""
    if not isinstance(proxy, str):
        return "no proxy" if proxy is False else "the proxy from the environment"
    try:
        parts = urllib.parse.urlsplit(proxy)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the proxy setting"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}" if parts.scheme else "the proxy setting"


def _proxy_password(proxy: ProxySetting) -> str | None:
    if not isinstance(proxy, str):
        return None
    try:
        parts = urllib.parse.urlsplit(proxy)
        return urllib.parse.unquote(parts.password) if parts.password else None
    except ValueError:
        return None


def proxy_unsupported(
    step: str, proxy: ProxySetting, exc: BaseException, why: str
) -> ConnectFailed:
    """A proxy this client cannot use (a SOCKS package missing, an unknown scheme): one
    clear message instead of the library's ImportError or ValueError."""
    text = scrub(f"{proxy_shown(proxy)} cannot be used: {why}", _proxy_password(proxy))
    return ConnectFailed(
        step,
        f"proxy not supported: {text}",
        reason="proxy_unsupported",
        cause=exc,
        cause_text=text,
    )


SOCKS_MISSING = (
    "SOCKS proxies need the optional packages socksio and python-socks "
    "(pip install 'httpx[socks]' python-socks), or use an HTTP proxy"
)


def _is_python_socks(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] == "python_socks"


# --- timeline -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEvent:
    t_s: float  # seconds since the connection attempt started (monotonic)
    direction: str  # "sent", "received" or "local" (connect, close, drop)
    type: str
    summary: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "t_s": round(self.t_s, 4),
            "direction": self.direction,
            "type": self.type,
            **self.summary,
        }


def _with_token(url: str, token: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != "token"] + [("token", token)]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def without_token(url: str) -> str:
    """`url` with any `token=` query removed: a key session must not carry a stale token
    (the service judges the token, not the key, and refuses it)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if not any(k == "token" for k, _ in query):
        return url
    query = [(k, v) for k, v in query if k != "token"]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _shown_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [
        (k, mask(v) if k == "token" else v)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, safe="*")))


def ssl_context_for(ca_bundle: str | None) -> ssl.SSLContext | None:
    """The default store plus `ca_bundle`'s CAs; None keeps the default (honours
    SSL_CERT_FILE)."""
    from doctor.net.trust import trusting

    return trusting(ca_bundle) if ca_bundle else None


def tls_url(url: str) -> bool:
    """Whether `url` is wss:// or https://, however its scheme is spelt (`WSS://` is the
    same URL: schemes are case-insensitive, and websockets opens TLS for it)."""
    try:
        return urllib.parse.urlsplit(url.strip()).scheme in ("wss", "https")
    except ValueError:  # not a URL urllib can split: the connect names that itself
        return False


def ws_ssl_kwargs(url: str, ca_bundle: str | None) -> dict[str, Any]:
    """websockets' `ssl=` for `url`: --ca-bundle's context for a TLS URL, else nothing
    (websockets refuses `ssl=` on a ws:// URL and picks the default trust itself)."""
    context = ssl_context_for(ca_bundle)
    return {"ssl": context} if context is not None and tls_url(url) else {}


def _auth_value(api_key: str, auth_header: str) -> str:
    if auth_header not in ("bearer", "raw"):
        raise ValueError("auth_header must be 'bearer' or 'raw'")
    return f"Bearer {api_key}" if auth_header == "bearer" else api_key


# --- the connection -----------------------------------------------------------------------


class AgentConnection:
    """One WebSocket to the Voice Agent API. Open with `AgentConnection.open(...)`."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.timeline: list[TimelineEvent] = []
        self.received: list[ServerEvent] = []
        self.session_id: str | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.close_frame: bool | None = None  # a close frame came from the server
        self.connect_s: float | None = None
        self.ready_s: float | None = None
        self.ws: ClientConnection | None = None
        self._t0 = time.monotonic()
        self._queue: asyncio.Queue[ServerEvent | None] = asyncio.Queue()
        self._closed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        # a wait on this peer ran out: closing must not wait on it again
        self.stalled = False

    # --- opening ------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        ws_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        proxy: ProxySetting = None,
        ca_bundle: str | None = None,
        timeout: float = 10.0,
        auth_header: str = "bearer",
        extra_headers: dict[str, str] | None = None,
    ) -> _Opener:
        """`async with AgentConnection.open(url, api_key=...) as conn` (or `await` it)."""
        conn = cls(timeout)
        return _Opener(
            conn,
            conn._connect(
                ws_url, api_key, token, proxy, ca_bundle, auth_header, extra_headers or {}
            ),
        )

    def now(self) -> float:
        return time.monotonic() - self._t0

    def _note(self, direction: str, type_: str, summary: dict[str, Any] | None = None) -> None:
        self.timeline.append(TimelineEvent(self.now(), direction, type_, summary or {}))

    async def _connect(
        self,
        ws_url: str,
        api_key: str | None,
        token: str | None,
        proxy: ProxySetting,
        ca_bundle: str | None,
        auth_header: str,
        extra_headers: dict[str, str],
    ) -> AgentConnection:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidProxy, InvalidProxyStatus, InvalidStatus

        headers = dict(extra_headers)
        url = ws_url
        try:
            if token is not None:
                url = _with_token(ws_url, token)
            elif api_key is not None:
                url = without_token(ws_url)
                headers["Authorization"] = _auth_value(api_key, auth_header)
            shown = _shown_url(url)
        except ValueError as exc:  # a URL urllib cannot even split (`wss://[::1/v1/ws`)
            text = scrub(str(exc), token, api_key)
            self._note("local", "connect_failed", {"reason": "invalid_url"})
            raise ConnectFailed(
                "connect",
                f"connection failed (invalid_url): {text}",
                reason="invalid_url",
                cause=exc,
                cause_text=text,
            ) from None
        auth = "token" if token is not None else "api_key" if api_key is not None else "none"
        self._note(
            "local",
            "connect",
            {
                "url": shown,
                "auth": auth,
                "auth_header": auth_header if auth == "api_key" else None,
                "proxy": "environment" if proxy is None else bool(proxy),
            },
        )
        kwargs = ws_ssl_kwargs(url, ca_bundle)
        try:
            self.ws = await connect(
                url,
                additional_headers=headers,
                open_timeout=self.timeout,
                proxy=True if proxy is None else (proxy or None),
                compression=None,
                ping_interval=None,
                max_size=2**23,
                **kwargs,
            )
        except InvalidStatus as exc:
            body = bytes(exc.response.body or b"").decode("utf-8", "replace")[:500]
            status = exc.response.status_code
            self._note("local", "handshake_rejected", {"http_status": status})
            raise HandshakeRejected(
                "handshake",
                f"the server refused the upgrade: HTTP {status}",
                http_status=status,
                body=body,
                cause=exc,
            ) from None
        except InvalidProxyStatus as exc:
            status = exc.response.status_code
            self._note("local", "proxy_rejected", {"http_status": status})
            raise ProxyRejected(
                "proxy",
                f"the proxy refused the tunnel: HTTP {status}",
                http_status=status,
                cause=exc,
            ) from None
        except (TimeoutError, asyncio.TimeoutError) as exc:
            self._note("local", "timeout", {"step": "connect"})
            self.stalled = True
            raise StepTimeout(
                "connect",
                f"no WebSocket connection within {self.timeout:g} s",
                timeout_s=self.timeout,
                reason="timeout",
                cause=exc,
            ) from None
        except (ImportError, InvalidProxy) as exc:
            why = SOCKS_MISSING if isinstance(exc, ImportError) else exc.msg
            self._note("local", "connect_failed", {"reason": "proxy_unsupported"})
            raise proxy_unsupported("connect", proxy, exc, why) from None
        except (OSError, ssl.SSLError, Exception) as exc:
            reason = connect_failure_reason(exc)
            if reason == "refused" and (proxy or _is_python_socks(exc)):
                reason = "proxy_unreachable"
            if isinstance(exc, ValueError) and reason == "other":
                reason = "invalid_url"  # websockets: a port that is not a number...
            text = scrub(str(exc), token, api_key, _proxy_password(proxy))
            self._note("local", "connect_failed", {"reason": reason})
            raise ConnectFailed(
                "connect",
                f"connection failed ({reason}): {text}",
                reason=reason,
                cause=exc,
                cause_text=text,
            ) from None
        self.connect_s = self.now()
        self._note("local", "open", {"connect_s": round(self.connect_s, 4)})
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        assert self.ws is not None
        try:
            async for raw in self.ws:
                event = parse_server_event(raw)
                self._note("received", event.type, summarize(event.payload))
                if event.type == "session.ready" and isinstance(
                    event.payload.get("session_id"), str
                ):
                    self.session_id = event.payload["session_id"]
                self.received.append(event)
                self._queue.put_nowait(event)
        except ConnectionClosed:
            pass
        finally:
            code = self.ws.close_code  # websockets' CloseCode for known codes: a plain int
            self.close_code = None if code is None else int(code)  # reads as 1006, not an enum
            self.close_reason = self.ws.close_reason
            self.close_frame = self.ws.protocol.close_rcvd is not None
            self._note(
                "local",
                "closed",
                {
                    "code": self.close_code,
                    "reason": self.close_reason,
                    "close_frame": self.close_frame,
                },
            )
            self._closed.set()
            self._queue.put_nowait(None)

    # --- sending ------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def send(self, message: dict[str, Any]) -> None:
        """Send one JSON message (raises ClosedByServer when the socket is gone)."""
        from websockets.exceptions import ConnectionClosed

        assert self.ws is not None
        self._note("sent", str(message.get("type")), summarize(message))
        try:
            await self.ws.send(json.dumps(message))
        except ConnectionClosed:
            await self._wait_closed(1.0)
            raise self._closed_error(
                "send", f"the socket closed before {message.get('type')} went out"
            ) from None

    def _server_error(self, step: str) -> SessionError | None:
        """The fatal `session.error` the server sent before closing, as the error to raise
        (a server that refuses at once closes before the client's first message goes out;
        the frame, not the failed send, is what happened)."""
        for event in self.received:
            code = event.error_code
            if code is not None and is_fatal(code):
                message = str(event.payload.get("message", ""))
                return SessionError(
                    step,
                    f"session.error {code}: {message}",
                    error_code=code,
                    error_message=message,
                    close_code=self.close_code,
                    close_reason=self.close_reason,
                    close_frame=self.close_frame,
                )
        return None

    async def send_raw(self, text: str | bytes) -> None:
        """A frame exactly as given (to provoke validation errors); raises ClosedByServer
        (or the fatal SessionError that preceded the close) like `send`."""
        from websockets.exceptions import ConnectionClosed

        assert self.ws is not None
        self._note("sent", "(raw)", {"size_bytes": len(text)})
        try:
            await self.ws.send(text)
        except ConnectionClosed:
            await self._wait_closed(1.0)
            raise self._closed_error(
                "send", "the socket closed before the raw frame went out"
            ) from None

    async def send_audio(self, pcm: bytes) -> None:
        await self.send({"type": "input.audio", "audio": base64.b64encode(pcm).decode("ascii")})

    # --- waiting ------------------------------------------------------------------------
    def _closed_error(self, step: str, text: str) -> AgentApiError:
        """SessionError when a fatal `session.error` preceded the close, else ClosedByServer."""
        server_error = self._server_error(step)
        if server_error is not None:
            return server_error
        frame = "no close frame" if not self.close_frame else f"close {self.close_code}"
        return ClosedByServer(
            step,
            f"{text} ({frame}{': ' + self.close_reason if self.close_reason else ''})",
            close_code=self.close_code,
            close_reason=self.close_reason,
            close_frame=self.close_frame,
        )

    async def _wait_closed(self, timeout: float) -> bool:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout)
        return self._closed.is_set()

    async def next_event(self, timeout: float | None = None) -> ServerEvent | None:
        """The next server event, None once the socket is closed; StepTimeout if none comes."""
        wait = self.timeout if timeout is None else timeout
        try:
            event = await asyncio.wait_for(self._queue.get(), wait)
        except asyncio.TimeoutError:
            self.stalled = True
            raise StepTimeout("recv", f"no event within {wait:g} s", timeout_s=wait) from None
        if event is None:
            self._queue.put_nowait(None)  # stay closed: every later call returns None at once
        return event

    async def wait_for(
        self,
        types: str | Iterable[str],
        step: str,
        timeout: float | None = None,
        errors_fatal: bool = True,
    ) -> ServerEvent:
        """Skip events until one of `types`; a `session.error` (if `errors_fatal`, or a
        fatal code) raises SessionError, a close raises ClosedByServer."""
        wanted = {types} if isinstance(types, str) else set(types)
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            remaining = deadline - time.monotonic()
            try:
                event = await asyncio.wait_for(self._queue.get(), max(0.0, remaining))
            except asyncio.TimeoutError:
                self._note("local", "timeout", {"step": step, "timeout_s": wait})
                self.stalled = True
                raise StepTimeout(
                    step, f"no {' or '.join(sorted(wanted))} within {wait:g} s", timeout_s=wait
                ) from None
            if event is None:
                self._queue.put_nowait(None)  # stay closed for later waits
                raise self._closed_error(
                    step, f"the socket closed before {' or '.join(sorted(wanted))}"
                )
            if event.type in wanted:
                return event
            code = event.error_code
            if code is not None and (errors_fatal or is_fatal(code)):
                if is_fatal(code):
                    await self._wait_closed(min(2.0, max(0.1, deadline - time.monotonic())))
                message = str(event.payload.get("message", ""))
                raise SessionError(
                    step,
                    f"session.error {code}: {message}",
                    error_code=code,
                    error_message=message,
                    close_code=self.close_code,
                    close_reason=self.close_reason,
                    close_frame=self.close_frame,
                )

    # --- the session steps --------------------------------------------------------------
    async def start_session(
        self, config: dict[str, Any] | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """session.update, then session.ready's payload."""
        await self.send({"type": "session.update", "session": config or {}})
        event = await self.wait_for("session.ready", "ready", timeout)
        self.ready_s = self.now()
        return event.payload

    async def update(self, config: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        await self.send({"type": "session.update", "session": config})
        return (await self.wait_for("session.updated", "update", timeout)).payload

    async def resume(self, session_id: str, timeout: float | None = None) -> dict[str, Any]:
        """session.resume as the first message; session.ready's payload (check its id)."""
        await self.send({"type": "session.resume", "session_id": session_id})
        event = await self.wait_for("session.ready", "resume", timeout)
        self.ready_s = self.now()
        return event.payload

    async def end(self, timeout: float | None = None) -> dict[str, Any] | None:
        """session.end; session.ended's payload, or None if the server closed without it."""
        await self.send({"type": "session.end"})
        wait = self.timeout if timeout is None else timeout
        try:
            event = await self.wait_for("session.ended", "end", wait, errors_fatal=False)
        except ClosedByServer:
            return None
        await self._wait_closed(wait)
        return event.payload

    async def drop(self) -> None:
        """Abrupt disconnect: the TCP connection goes away with no close frame."""
        assert self.ws is not None
        self._note("local", "drop")
        self.ws.transport.abort()
        await self._wait_closed(self.timeout)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """A normal close frame (without session.end: the grace window applies). After a
        wait on this peer ran out, the connection is cut instead: waiting for its close
        handshake would be one more wait on a peer that does not answer."""
        if self.ws is not None and not self.closed:
            if self.stalled:
                self._note("local", "cut", {"why": "the peer stalled"})
                self.ws.transport.abort()
                await self._wait_closed(1.0)  # the reader's own wind-up, no network wait
                return
            self._note("local", "close", {"code": code})
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(code, reason), self.timeout)
            await self._wait_closed(self.timeout)

    async def aclose(self) -> None:
        await self.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    def timeline_dicts(self) -> list[dict[str, Any]]:
        return [e.as_dict() for e in self.timeline]


class _Opener:
    """Both `await AgentConnection.open(...)` and `async with AgentConnection.open(...)`."""

    def __init__(self, conn: AgentConnection, coro: Any) -> None:
        self.conn = conn
        self._coro = coro

    def __await__(self) -> Generator[Any, None, AgentConnection]:
        result: AgentConnection = yield from self._coro.__await__()
        return result

    async def __aenter__(self) -> AgentConnection:
        result: AgentConnection = await self._coro
        return result

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.conn.aclose()


# --- temporary tokens ---------------------------------------------------------------------


@dataclass(frozen=True)
class TokenResult:
    """What GET /v1/token answered; `token` is set only on success."""

    status: int
    token: str | None = field(default=None, repr=False)
    expires_in_seconds: int | None = None
    error: str | None = None  # the body's `error` or `detail` text
    body: Any = None  # the parsed JSON (token masked) or the first 500 characters
    elapsed_ms: float = 0.0
    retry_after_s: float | None = None  # what a `Retry-After` header asked (429, 503)

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.token)


async def mint_token(
    token_url: str,
    api_key: str,
    expires_in_seconds: int | None = 60,
    max_session_duration_seconds: int | None = None,
    *,
    proxy: ProxySetting = None,
    ca_bundle: str | None = None,
    timeout: float = 10.0,
    auth_header: str = "raw",
) -> TokenResult:
    """Ask for a temporary token; never raises for an HTTP status, raises ConnectFailed,
    ProxyRejected or StepTimeout when no HTTP answer comes (ConnectFailed with reason
    `proxy_unsupported` for a proxy httpx cannot use, e.g. SOCKS without socksio)."""

    params: dict[str, int] = {}
    if expires_in_seconds is not None:
        params["expires_in_seconds"] = expires_in_seconds
    if max_session_duration_seconds is not None:
        params["max_session_duration_seconds"] = max_session_duration_seconds
    t0 = time.monotonic()
    client = http_client("token", proxy, ca_bundle, timeout)
    try:
        async with client:
            response = await within(
                timeout,
                client.get(
                    token_url,
                    params=params,
                    headers={"Authorization": _auth_value(api_key, auth_header)},
                ),
            )
    except Exception as exc:
        failure = http_failure("token", exc, "the token endpoint", timeout, proxy, api_key)
        if failure is None:
            raise
        raise failure from None
    elapsed = (time.monotonic() - t0) * 1000
    # An HTTP-date is read against the server's own Date (local clock skew does not count).
    server_now = http_date(response.headers.get("date")) or datetime.now(timezone.utc)
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = response.text[:500]
    token = body.get("token") if isinstance(body, dict) else None
    expires = body.get("expires_in_seconds") if isinstance(body, dict) else None
    error = None
    if isinstance(body, dict):
        raw_error = body.get("error", body.get("detail"))
        error = str(raw_error) if raw_error is not None else None
        if isinstance(token, str):
            body = {**body, "token": mask(token)}
    return TokenResult(
        status=response.status_code,
        token=token if isinstance(token, str) and response.status_code == 200 else None,
        expires_in_seconds=expires if isinstance(expires, int) else None,
        error=error,
        body=body,
        elapsed_ms=round(elapsed, 1),
        retry_after_s=retry_after_s(response.headers.get("retry-after"), server_now),
    )


def _proxy_status(text: str) -> int | None:
    for word in text.split():
        if word.isdigit() and 100 <= int(word) <= 599:
            return int(word)
    return None


async def within(deadline_s: float, call: Awaitable[T]) -> T:
    """`call` given `deadline_s` in all. httpx's timeouts are per read, so a server that
    trickles a byte every half second held `session --timeout 3` for 154 s; a whole
    exchange (connect, headers, body) now has one deadline, reported as an httpx timeout."""
    import httpx

    try:
        return await asyncio.wait_for(call, deadline_s)
    except asyncio.TimeoutError:
        raise httpx.ReadTimeout(f"no complete answer within {deadline_s:g} s") from None


def http_client(step: str, proxy: ProxySetting, ca_bundle: str | None, timeout: float) -> Any:
    """An httpx.AsyncClient with the run's trust, proxy and timeout; `proxy_unsupported`
    (ConnectFailed) for a proxy httpx cannot use."""
    import httpx

    # The same trust as the WebSocket: the bundle, else the system store and SSL_CERT_FILE
    # (httpx's own default would ignore SSL_CERT_FILE whenever trust_env is off).
    verify = ssl_context_for(ca_bundle) or ssl.create_default_context()
    try:  # the proxy (given or from the environment) is set up here, before any I/O
        return httpx.AsyncClient(
            proxy=proxy if isinstance(proxy, str) else None,
            trust_env=proxy is None,
            verify=verify,
            timeout=timeout,
        )
    except ImportError as exc:
        raise proxy_unsupported(step, proxy, exc, SOCKS_MISSING) from None
    except (ValueError, httpx.InvalidURL) as exc:  # "Unknown scheme for proxy URL"
        raise proxy_unsupported(step, proxy, exc, str(exc)) from None


def http_failure(
    step: str,
    exc: BaseException,
    what: str,
    timeout: float,
    proxy: ProxySetting,
    *secrets: str | None,
) -> AgentApiError | None:
    """An httpx failure as the typed error (None: not an httpx failure). `what` names the
    peer in the timeout message ("the token endpoint")."""
    import httpx

    if isinstance(exc, httpx.ProxyError):
        status = _proxy_status(str(exc))
        if status is not None:
            return ProxyRejected(
                step, f"the proxy refused the tunnel: HTTP {status}", http_status=status, cause=exc
            )
        return ConnectFailed(step, f"proxy failed: {exc}", reason="proxy_unreachable", cause=exc)
    if isinstance(exc, httpx.TimeoutException):
        return StepTimeout(
            step,
            f"no answer from {what} within {timeout:g} s",
            timeout_s=timeout,
            reason="timeout",
            cause=exc,
        )
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        text = scrub(str(exc), *secrets)
        return ConnectFailed(
            step,
            f"{step} request failed (invalid_url): {text}",
            reason="invalid_url",
            cause=exc,
            cause_text=text,
        )
    if isinstance(exc, httpx.TransportError):
        root: BaseException = exc
        while root.__cause__ is not None or root.__context__ is not None:
            root = root.__cause__ or root.__context__  # type: ignore[assignment]
        reason = connect_failure_reason(root)
        if proxy and reason == "refused":
            reason = "proxy_unreachable"
        text = scrub(str(exc), *secrets)
        return ConnectFailed(
            step,
            f"{step} request failed ({reason}): {text}",
            reason=reason,
            cause=root,
            cause_text=scrub(str(root), *secrets),
        )
    return None
