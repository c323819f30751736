"""The relay: the service's two faces on 127.0.0.1, every frame forwarded unchanged.

`/v1/ws` opens the upstream WebSocket first (with the app's own `Authorization` header or
`?token=`), so a refusal reaches the app as the same HTTP status; then each data frame is
written to the other side as it is parsed (doctor/watch/fastpath.py: no queue, no task, no
decoding), and a side that the other cannot take more from stops being read, so
backpressure from either side reaches the other and every buffer is bounded (the peer's
write limit, a short list of frames that arrive before the session is wired, and the feed
to the worker). A copy of each frame goes to the worker after it was forwarded; nothing on
the forwarding path waits for the analysis. `GET /v1/token` is
forwarded to the token endpoint. Credentials are handed to `on_secret` (the report's
redactor) and never to the worker: it learns how the app authenticated and which distinct
token (a number), never the value.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import http
import logging
import os
import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from doctor.watch.feed import KIND_CLOSE, KIND_OPEN, FeedWriter

if TYPE_CHECKING:
    from websockets.asyncio.server import Server, ServerConnection
    from websockets.http11 import Request, Response

    from doctor.net.auth_outcome import Outcome
    from doctor.watch.fastpath import UpstreamConnection

WS_PATH = "/v1/ws"
TOKEN_PATH = "/v1/token"
MAX_FRAME = 16 * 1024 * 1024
MAX_QUEUE = 4  # websockets' recv() queue: unused now (fastpath.py bypasses it), kept bounded
CLOSE_TIMEOUT_S = 5.0
STOP_REASON = "agent-doctor watch stopped"
MAX_TOKEN_ANSWERS = 20  # token answers kept for the report (all are counted)
SENDABLE = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
APP, SERVICE = 0, 1


@dataclass
class Upstream:
    """Where the relay forwards to, and how (the same proxy/trust rules as the checks)."""

    ws_url: str
    token_url: str
    proxy: str | None = None  # None: the environment's proxy variables, as websockets reads them
    ca_bundle: str | None = None
    timeout: float = 10.0


class LatencyHistogram:
    """The relay's own time per forwarded frame, in 10 µs buckets (O(1) each): from the
    bytes that carried it handed to the relay by the event loop to the frame written to the
    peer's transport (parsing and writing included). It is not the whole added latency: the
    time the bytes wait for the loop, and in the kernel's buffers, are not in it."""

    BUCKET_S = 1e-5
    BUCKETS = 20_000  # up to 200 ms; beyond lands in the last bucket

    def __init__(self) -> None:
        self.counts = [0] * (self.BUCKETS + 1)
        self.n = 0
        self.max_s = 0.0

    def add(self, seconds: float) -> None:
        i = int(seconds / self.BUCKET_S)
        self.counts[i if i < self.BUCKETS else self.BUCKETS] += 1
        self.n += 1
        if seconds > self.max_s:
            self.max_s = seconds

    def percentile_ms(self, q: float) -> float | None:
        if not self.n:
            return None
        want = q / 100 * self.n
        seen = 0
        for i, count in enumerate(self.counts):
            seen += count
            if seen >= want:
                return round((i + 1) * self.BUCKET_S * 1000, 3)
        return round(self.max_s * 1000, 3)  # pragma: no cover


@dataclass
class RelayStats:
    connections: int = 0
    refused: int = 0
    closed: int = 0
    frames_forwarded: int = 0
    bytes_forwarded: int = 0
    token_requests: int = 0
    stopped_open: int = 0
    token_answers: list[dict[str, Any]] = field(default_factory=list)  # the first few
    token_failed: int = 0
    token_last_failed: bool = False
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def to_dict(self, feed: FeedWriter | None) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "connections_refused_upstream": self.refused,
            "token_requests": self.token_requests,
            "sessions_open_at_stop": self.stopped_open,
            "token_requests_failed": self.token_failed,
            "token_last_failed": self.token_last_failed,
            "token_answers": list(self.token_answers),
            "frames_forwarded": self.frames_forwarded,
            "bytes_forwarded": self.bytes_forwarded,
            "added_latency_p50_ms": self.latency.percentile_ms(50),
            "added_latency_p99_ms": self.latency.percentile_ms(99),
            "added_latency_max_ms": round(self.latency.max_s * 1000, 3),
            "capture_dropped_frames": feed.dropped_frames if feed else 0,
        }


@dataclass
class _Pending:
    conn: int
    upstream: UpstreamConnection
    opened: float
    details: dict[str, Any]


def _close_of(ws: Any) -> tuple[int | None, str | None, int | None]:
    """(code received, reason received, code sent) of a finished connection."""
    proto = ws.protocol
    rcvd, sent = proto.close_rcvd, proto.close_sent
    return (
        rcvd.code if rcvd is not None else None,
        rcvd.reason if rcvd is not None else None,
        sent.code if sent is not None else None,
    )


def token_answer_outcome(answer: Any, query: str = "") -> Outcome | None:
    """The `token` check's cause for an HTTP answer of the token endpoint (None: a token);
    a rejected parameter is told against what the app's `query` asked for."""
    from doctor.net.mint_outcome import mint_outcome
    from doctor.report.redact import scrub_query

    if answer.status_code == 200:
        return None
    try:
        body: Any = answer.json()
    except ValueError:
        body = answer.text[:300]
    retry = answer.headers.get("Retry-After")
    retry_s = float(retry) if retry and retry.strip().isdigit() else None
    params = scrub_query("?" + query)[1:] if query else ""
    asked = f"the app asked for {params}" if params else "the app's request had no parameters"
    return mint_outcome(answer.status_code, False, None, 0, None, body, retry_s, asked=asked)


def token_failure(exc: BaseException, token_url: str, timeout_s: float) -> Outcome:
    """The `token` check's cause when the token endpoint gave no HTTP answer at all."""
    from doctor.net.auth_outcome import Failure
    from doctor.net.mint_outcome import mint_unreachable

    timed_out = isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__
    failure = Failure(
        kind="timeout" if timed_out else "connect",
        step="token",
        reason=f"{type(exc).__name__}: {_short(exc)}",
        timeout_s=timeout_s,
    )
    return mint_unreachable(failure, token_url)


def _sent_reason(ws: Any) -> str | None:
    """The reason of the close frame the relay's websockets sent (why it closed)."""
    sent = ws.protocol.close_sent
    return (sent.reason or None) if sent is not None else None


class Relay:
    """`await relay.start()`; `relay.url`; `await relay.stop()`."""

    def __init__(
        self,
        upstream: Upstream,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        feed: FeedWriter | None = None,
        on_line: Callable[[str], None] | None = None,
        on_secret: Callable[[str, str], None] | None = None,
        on_closed: Callable[[int], None] | None = None,
    ) -> None:
        self.upstream = upstream
        self.host = host
        self.port = port
        self.feed = feed
        self.on_line = on_line or (lambda _line: None)
        self.on_secret = on_secret or (lambda _kind, _value: None)
        self.on_closed = on_closed or (lambda _n: None)
        self.stats = RelayStats()
        self.server: Server | None = None
        self._pending: dict[int, _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._live: set[Any] = set()
        self._stopped: set[int] = set()  # id() of app connections stop() closed
        self._token_key = secrets.token_bytes(16)
        self._token_seq: dict[bytes, int] = {}
        self._conn_seq = 0
        self._t0 = time.monotonic()

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        from websockets.asyncio.server import serve

        self.server = await serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            compression=None,
            ping_interval=None,
            max_size=MAX_FRAME,
            max_queue=MAX_QUEUE,
            close_timeout=CLOSE_TIMEOUT_S,
            open_timeout=self.upstream.timeout + 5,
            logger=_handshake_logger(self.on_line),
            server_header="agent-doctor-watch",
            create_connection=_connection_class(self.on_line, self._abandon),
        )
        sock = next(iter(self.server.sockets))
        self.port = int(sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{WS_PATH}"

    @property
    def token_url(self) -> str:
        return f"http://{self.host}:{self.port}{TOKEN_PATH}"

    async def stop(self) -> None:
        """Stop accepting, close every watched connection (1001 both ways), wait for them."""
        from websockets.protocol import State

        if self.server is not None:
            self.server.close(close_connections=False)
        for ws in list(self._live):  # the relay's close, not the app's: recorded as such
            if ws.protocol.state is State.OPEN:  # not one already closing on its own
                self._stopped.add(id(ws))
                self.stats.stopped_open += 1
            await _close_or_abort(ws, 1001, STOP_REASON, 2)
        for p in list(self._pending.values()):
            await _close_or_abort(p.upstream, 1001, "", 2)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=CLOSE_TIMEOUT_S + 2)
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)

    # --- the handshake --------------------------------------------------------------------
    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        try:
            return await self._route(connection, request)
        except Exception as exc:  # never a traceback: one line and a 502 to the app
            self.on_line(f"relay: a request failed: {type(exc).__name__}: {_short(exc)}")
            return _text_response(connection, 502, "agent-doctor watch: the relay failed\n")

    async def _route(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urllib.parse.urlsplit(request.path)
        path = parts.path.rstrip("/") or "/"
        upgrade = "websocket" in request.headers.get("Upgrade", "").lower()
        if path == TOKEN_PATH and not upgrade:
            return await self._token(connection, request, parts.query)
        if path != WS_PATH:
            self.on_line(f"relay: {path!r} is not a path of the service (use {WS_PATH})")
            return _text_response(
                connection, 404, f"agent-doctor watch: only {WS_PATH} and {TOKEN_PATH}\n"
            )
        if not upgrade:
            return _text_response(connection, 426, "agent-doctor watch: WebSocket only\n")
        return await self._open_upstream(connection, request, parts.query)

    def _auth(self, request: Request, query: str) -> tuple[str, dict[str, str], int | None]:
        headers: dict[str, str] = {}
        auth_header = request.headers.get("Authorization")
        self._query_secrets(query)
        token = next(
            (v for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True) if k == "token"),
            None,
        )
        seq = None
        if token:
            self.on_secret("token", token)
            digest = hmac.new(self._token_key, token.encode(), hashlib.sha256).digest()
            seq = self._token_seq.setdefault(digest, len(self._token_seq) + 1)
        if auth_header:
            headers["Authorization"] = auth_header
            value = (
                auth_header.split(" ", 1)[-1]
                if auth_header.lower().startswith("bearer ")
                else auth_header
            )
            self.on_secret("api_key", value)
            self.on_secret("api_key", auth_header)
        kind = "query" if token else "header" if auth_header else "none"
        return kind, headers, seq

    def _query_secrets(self, query: str) -> None:
        """Every credential the app put in a query string (`?authorization=`, `?api_key=`)
        goes to the redactor, whatever later text quotes it (an error, an echoed body)."""
        from doctor.report.redact import query_secret

        for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            if query_secret(name):
                self.on_secret("token" if name == "token" else "api_key", value)

    async def _open_upstream(
        self, connection: ServerConnection, request: Request, query: str
    ) -> Response | None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidProxyStatus, InvalidStatus

        from doctor.net.agent_api import connect_failure_reason, ws_ssl_kwargs
        from doctor.watch.fastpath import UpstreamConnection

        self._conn_seq += 1
        conn = self._conn_seq
        kind, headers, seq = self._auth(request, query)
        up = self.upstream
        url = up.ws_url
        if query:
            base = urllib.parse.urlsplit(url)
            url = urllib.parse.urlunsplit(base._replace(query=query))
        kwargs = ws_ssl_kwargs(url, up.ca_bundle)
        details: dict[str, Any] = {"path": WS_PATH, "auth": kind, "token_seq": seq}
        t_open = time.monotonic()
        try:
            upstream = await connect(
                url,
                additional_headers=headers,
                open_timeout=up.timeout,
                proxy=up.proxy if up.proxy else True,
                compression=None,
                ping_interval=None,
                max_size=MAX_FRAME,
                max_queue=MAX_QUEUE,
                close_timeout=CLOSE_TIMEOUT_S,
                create_connection=UpstreamConnection,
                **kwargs,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            self.stats.refused += 1
            self.on_line(
                f"conn {conn}: the service refused the upgrade with HTTP {status}; "
                "the app gets the same answer"
            )
            self._event_refused(conn, t_open, details, status, f"HTTP {status}")
            return _http_response(
                status,
                bytes(exc.response.body or b""),
                {"Content-Type": exc.response.headers.get("Content-Type")},
            )
        except InvalidProxyStatus as exc:
            status = exc.response.status_code
            self.stats.refused += 1
            self.on_line(
                f"conn {conn}: cannot reach the service: the proxy refused the tunnel with "
                f"HTTP {status}; the app gets HTTP 502"
            )
            self._event_refused(conn, t_open, details, 502, f"proxy HTTP {status}")
            return _text_response(
                connection,
                502,
                f"agent-doctor watch: the proxy refused the tunnel (HTTP {status})\n",
            )
        except (TimeoutError, asyncio.TimeoutError):
            self.stats.refused += 1
            self.on_line(
                f"conn {conn}: the service did not answer within {up.timeout:g} s; "
                "the app gets HTTP 504"
            )
            self._event_refused(conn, t_open, details, 504, "upstream timeout")
            return _text_response(
                connection,
                504,
                f"agent-doctor watch: the service did not answer within {up.timeout:g} s\n",
            )
        except Exception as exc:
            reason = connect_failure_reason(exc)
            self.stats.refused += 1
            self.on_line(
                f"conn {conn}: cannot reach the service ({reason}): {_short(exc)}; "
                "the app gets HTTP 502"
            )
            self._event_refused(conn, t_open, details, 502, f"upstream {reason}")
            return _text_response(
                connection, 502, f"agent-doctor watch: cannot reach the service ({reason})\n"
            )
        assert isinstance(upstream, UpstreamConnection)  # create_connection above
        self._pending[id(connection)] = _Pending(conn, upstream, t_open, details)
        return None

    def _abandon(self, connection: Any) -> None:
        """The app's upgrade did not complete (it went away before the 101, or the relay is
        stopping): the upstream session opened for it is closed now, not left to idle."""
        p = self._pending.pop(id(connection), None)
        if p is None:
            return
        self.on_line(
            f"conn {p.conn}: the app went away before the upgrade completed; "
            "the service session opened for it was closed"
        )

        async def close_upstream() -> None:
            await _close_or_abort(p.upstream, 1001, "", CLOSE_TIMEOUT_S)

        task = asyncio.ensure_future(close_upstream())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _event_refused(
        self, conn: int, t: float, details: dict[str, Any], status: int, reason: str
    ) -> None:
        """A refused upgrade is a connection that ended: it counts towards --sessions (or
        watch would wait forever for an app the service keeps refusing)."""
        self.stats.closed += 1
        self.on_closed(self.stats.closed)
        if self.feed is None:
            return
        wall = time.time()
        self.feed.event(KIND_OPEN, t, wall, conn, {**details, "upstream_status": status})
        self.feed.event(
            KIND_CLOSE,
            time.monotonic(),
            wall,
            conn,
            {
                "by": "service",
                "code": None,
                "reason": reason,
                "upstream_refused": True,
                "upstream_status": status,
            },
        )

    async def _token(self, connection: ServerConnection, request: Request, query: str) -> Response:
        from doctor.net.agent_api import http_client, within

        self.stats.token_requests += 1
        self._query_secrets(query)
        headers = {}
        auth = request.headers.get("Authorization")
        if auth:
            headers["Authorization"] = auth
            self.on_secret(
                "api_key", auth.split(" ", 1)[-1] if auth.lower().startswith("bearer ") else auth
            )
        up = self.upstream
        url = up.token_url + (("&" if "?" in up.token_url else "?") + query if query else "")
        try:  # the token check's own client: the same trust, proxy and timeout rules
            async with http_client("token", up.proxy, up.ca_bundle, up.timeout) as client:
                answer = await within(up.timeout, client.get(url, headers=headers))
        except Exception as exc:
            self.on_line(
                f"token: cannot reach the token endpoint: {type(exc).__name__}: "
                f"{_short(exc)}; the app gets HTTP 502"
            )
            self._token_answer(502, token_failure(exc, up.token_url, up.timeout))
            return _text_response(
                connection, 502, "agent-doctor watch: cannot reach the token endpoint\n"
            )
        with contextlib.suppress(ValueError):
            body = answer.json()
            if isinstance(body, dict) and isinstance(body.get("token"), str):
                self.on_secret("token", body["token"])
        resp = _http_response(
            answer.status_code,
            answer.content,
            {name: answer.headers.get(name) for name in ("Content-Type", "Retry-After", "Date")},
        )
        if answer.status_code != 200:
            self.on_line(f"token: the token endpoint answered HTTP {answer.status_code}")
        self._token_answer(answer.status_code, token_answer_outcome(answer, query))
        return resp

    def _token_answer(self, status: int, outcome: Outcome | None) -> None:
        """Keep what a token request got (status and cause; never the token or the key)."""
        self.stats.token_last_failed = outcome is not None
        if outcome is not None:
            self.stats.token_failed += 1
        kept = self.stats.token_answers
        failures_kept = sum(1 for a in kept if a.get("cause"))
        # the first few of each: a failure after many good answers is still kept (the
        # first failure always is, so watch-token can name its cause)
        room = len(kept) - failures_kept < MAX_TOKEN_ANSWERS if outcome is None else True
        if room and (outcome is None or failures_kept < MAX_TOKEN_ANSWERS):
            self.stats.token_answers.append(
                {"app_status": status}
                | (
                    {"cause": None}
                    if outcome is None
                    else {
                        "cause": outcome.cause,
                        "summary": outcome.summary,
                        "guide": outcome.guide,
                        "detail": outcome.detail,
                    }
                )
            )

    # --- forwarding -----------------------------------------------------------------------
    async def _handler(self, app: ServerConnection) -> None:
        pending = self._pending.pop(id(app), None)
        if pending is None:  # pragma: no cover - process_request always sets it or refuses
            await app.close(1011)
            return
        task = asyncio.current_task()
        assert task is not None
        self.stats.connections += 1  # only connections actually relayed
        self._tasks.add(task)
        self._live.add(app)
        try:
            await self._relay(app, pending)
        except Exception as exc:
            self.on_line(f"conn {pending.conn}: relay error {type(exc).__name__}: {_short(exc)}")
        finally:
            self._live.discard(app)
            self._tasks.discard(task)
            self.stats.closed += 1
            self.on_closed(self.stats.closed)

    async def _relay(self, app: Any, p: _Pending) -> None:
        from doctor.watch.fastpath import Link, first_lost

        up = p.upstream
        if self.feed is not None:
            self.feed.event(KIND_OPEN, p.opened, time.time(), p.conn, p.details)
        link = Link(
            p.conn, self.stats, self.feed, self.on_line, asyncio.get_running_loop().create_future()
        )
        app.attach(up, link, APP)
        up.attach(app, link, SERVICE)
        app.flush_early()
        up.flush_early()
        await asyncio.wait(
            {app.connection_lost_waiter, up.connection_lost_waiter, link.failed},
            return_when=asyncio.FIRST_COMPLETED,
        )
        closer_side = "relay" if link.failed.done() else first_lost(app, up)
        code = reason = sent = None
        if closer_side == "relay":  # a side failed in a way that is not a close: end both
            for ws in (app, up):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(1011, "relay error"), CLOSE_TIMEOUT_S)
        else:
            closer, other = (app, up) if closer_side == "app" else (up, app)
            code, reason, sent = _close_of(closer)
            if code is not None:
                mirror = code if code in SENDABLE or 3000 <= code < 5000 else 1000
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        other.close(mirror, (reason or "")[:120]), CLOSE_TIMEOUT_S
                    )
            elif sent is not None:  # the relay's websockets closed it (1009: frame too big)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        other.close(sent if sent in SENDABLE else 1011), CLOSE_TIMEOUT_S
                    )
            else:  # no close frame: a drop, and the other side sees a drop too
                other.transport.abort()
        for ws in (app, up):  # both closes are under way (or done): their codes are final
            try:
                await asyncio.wait_for(ws.wait_closed(), CLOSE_TIMEOUT_S)
            except Exception:  # a peer that never answers the close: its TCP ends here
                ws.transport.abort()
            ws.detach()
        app_code, app_reason, _ = _close_of(app)
        svc_code, svc_reason, _ = _close_of(up)
        by = closer_side
        if code is None and sent is not None:  # websockets' own close (1009): say why
            by, reason = "relay", _sent_reason(app if closer_side == "app" else up)
        if id(app) in self._stopped and closer_side == "app" and code in (1001, None):
            # stop()'s close (Ctrl-C), echoed, or aborted after 2 s without an answer
            by, sent, reason = "relay", 1001, STOP_REASON
        details = {
            "by": by,
            "code": code if by != "relay" else sent,
            "reason": reason,
            "app_code": app_code,
            "app_reason": app_reason,
            "service_code": svc_code,
            "service_reason": svc_reason,
        }
        if self.feed is not None:
            self.feed.event(KIND_CLOSE, time.monotonic(), time.time(), p.conn, details)


async def _close_or_abort(ws: Any, code: int, reason: str, timeout: float) -> None:
    """Close with `code`; a peer that never answers within `timeout` loses its TCP
    connection (the timeout cancels websockets' close() before its own deadline would)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(code, reason), timeout)
    if not ws.connection_lost_waiter.done():
        ws.transport.abort()


def _http_response(status: int, body: bytes, headers: dict[str, str | None]) -> Response:
    """An HTTP answer with the upstream's status, body and the headers that matter."""
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    out = Headers()
    for name, value in headers.items():
        if value:
            out[name] = value
    out["Content-Length"] = str(len(body))
    out["Connection"] = "close"
    return Response(status, reason, out, body)


def _text_response(connection: ServerConnection, status: int, text: str) -> Response:
    return connection.respond(http.HTTPStatus(status), text)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _handshake_what(exc: BaseException) -> str:
    """The exception's type and its message up to the first ':' only: a handshake error's
    text can quote a raw header (the API key) before the redactor has learnt it."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    head = text.split(":", 1)[0].strip()[:80]
    return f"{type(exc).__name__}: {head}" if head else type(exc).__name__


def _connection_class(on_line: Callable[[str], None], on_abandoned: Callable[[Any], None]) -> Any:
    """websockets' server connection, saying in one line why a handshake did not happen
    (garbage instead of HTTP, a client gone mid-request): websockets itself says nothing.
    A handshake that ends without an open connection hands it to `on_abandoned`, which
    closes the upstream session already opened for it."""
    from websockets.asyncio.server import ServerConnection
    from websockets.protocol import State

    from doctor.watch.fastpath import FastPath

    class WatchedConnection(FastPath, ServerConnection):
        async def handshake(self, *args: Any, **kwargs: Any) -> None:
            try:
                await super().handshake(*args, **kwargs)
            finally:
                if self.protocol.state is not State.OPEN:
                    on_abandoned(self)
            if self.request is None:
                exc = self.protocol.handshake_exc
                cause = exc.__cause__ if exc is not None and exc.__cause__ else exc
                what = _handshake_what(cause) if cause else "closed early"
                on_line(
                    "relay: an app connection failed during the handshake: no valid HTTP "
                    f"request ({what})"
                )

    return WatchedConnection


class _LineHandler(logging.Handler):
    """websockets' own server log as one line per failed handshake, never a traceback."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.on_line = on_line

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "handshake failed" not in msg and record.levelno < logging.ERROR:
            return
        exc = record.exc_info[1] if record.exc_info else None
        cause = exc.__cause__ if exc is not None and exc.__cause__ is not None else exc
        what = _handshake_what(cause) if cause is not None else msg
        self.on_line(f"relay: an app connection failed during the handshake ({what})")


def _handshake_logger(on_line: Callable[[str], None]) -> logging.Logger:
    logger = logging.getLogger(f"doctor.watch.server.{os.getpid()}.{id(on_line)}")
    logger.propagate = False
    logger.handlers[:] = [_LineHandler(on_line)]
    logger.setLevel(logging.INFO)
    return logger
