"""The sandbox server: token endpoint and WebSocket endpoint of the Voice Agent API on one port.

The decisions (token rules, session store, message validation, turn detection) live in pure
modules; this file is the shell that moves bytes and keeps time. protocol.md is the spec.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import json
import math
import os
import secrets
import shutil
import ssl
import sys
import tempfile
import time
import urllib.parse
import weakref
from types import TracebackType
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from doctor.sandbox import rules
from doctor.sandbox.config import SandboxConfig
from doctor.sandbox.connection import Auth, Connection
from doctor.sandbox.eventlog import EventLog, mask_query, masked
from doctor.sandbox.sessions_rest import SessionsRest
from doctor.sandbox.store import Session, Store, TokenGrant, parse_token_query

WS_PATH = "/v1/ws"
TOKEN_PATH = "/v1/token"
# field-facts §1: a token request without Authorization, as FastAPI lists it.
MISSING_AUTH_ITEM: dict[str, Any] = {
    "type": "missing",
    "loc": ["header", "authorization"],
    "msg": "Field required",
    "input": None,
}


def _json_response(
    status: int,
    body: dict[str, Any],
    extra_headers: tuple[tuple[str, str], ...] = (),
    at: float | None = None,
) -> Response:
    """`at`: the wall-clock time the Date header states (one reading for every date)."""
    data = json.dumps(body).encode()
    phrase = http.HTTPStatus(status).phrase
    headers = Headers(
        [
            ("Date", email.utils.formatdate(at, usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(data))),
            ("Content-Type", "application/json"),
            *extra_headers,
        ]
    )
    return Response(status, phrase, headers, data)


def _retry_after(seconds: float, form: str, at: float) -> str:
    """The header value: whole delta-seconds (rounded up), or the HTTP-date `at` + that."""
    whole = math.ceil(seconds)
    if form == "date":
        return email.utils.formatdate(math.floor(at) + whole, usegmt=True)
    return str(whole)


def _strip_bearer(value: str) -> str:
    value = value.strip()
    return value[7:].strip() if value[:7].lower() == "bearer " else value


class Sandbox:
    """A local Voice Agent API. `async with Sandbox(SandboxConfig(...)) as sb: sb.ws_url`."""

    def __init__(self, config: SandboxConfig | None = None, **overrides: Any) -> None:
        self.config = config or SandboxConfig(**overrides)
        if not self.config.api_keys:
            self.config.api_keys = [secrets.token_hex(16)]
        self.api_keys: list[str] = list(self.config.api_keys)
        self.store = Store(self.config.grace_s, self.config.single_use_tokens)
        self.log = EventLog(self.config.events_path, sys.stderr if self.config.log_events else None)
        self.events = self.log.events
        self.ca: Any = None  # trustme.CA when TLS is made here
        self.ca_file: str | None = None
        self.port: int = 0
        self._server: Server | None = None
        self._tmpdir: str | None = None
        self._pending: weakref.WeakKeyDictionary[ServerConnection, Auth] = (
            weakref.WeakKeyDictionary()
        )
        self._live: dict[int, Connection] = {}
        self._next_conn = 0
        self._timers: set[asyncio.Task[None]] = set()
        self.rest = SessionsRest(self)
        self._artifacts_tmp: str | None = None
        self._first_end_taken = False  # fault slow-first-ended: only the first is late
        self.sessions_admitted = 0  # first session.updates accepted (fault at-capacity-after)

    def take_first_end(self) -> bool:
        """True once: for the first session.end this sandbox answers."""
        first, self._first_end_taken = not self._first_end_taken, True
        return first

    def now(self) -> float:
        """The service's clock (`SandboxConfig.clock`; monotonic seconds by default)."""
        return float(self.config.clock())

    # --- lifecycle ----------------------------------------------------------------------
    @property
    def host_for_url(self) -> str:
        host = self.config.host
        return f"[{host}]" if ":" in host else host

    @property
    def ws_url(self) -> str:
        scheme = "wss" if self.config.tls else "ws"
        return f"{scheme}://{self.host_for_url}:{self.port}{WS_PATH}"

    @property
    def http_base(self) -> str:
        """scheme://host:port of the HTTP side (token endpoint, REST API, artifacts)."""
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{self.host_for_url}:{self.port}"

    @property
    def token_url(self) -> str:
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{self.host_for_url}:{self.port}{TOKEN_PATH}"

    def ready_info(self) -> dict[str, Any]:
        return {
            "ws_url": self.ws_url,
            "token_url": self.token_url,
            "ca_file": self.ca_file,
            "api_keys": list(self.api_keys),
        }

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.config.tls:
            return None
        if self.config.ssl_context is not None:
            ctx: ssl.SSLContext = self.config.ssl_context
            return ctx
        import trustme

        self.ca = trustme.CA(organization_name="agent-doctor sandbox")
        leaf = self.ca.issue_cert(*self.config.cert_hostnames)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(ctx)
        directory = self.config.workdir
        if directory is None:
            directory = self._tmpdir = tempfile.mkdtemp(prefix="agent-doctor-sandbox-")
        self.ca_file = os.path.join(directory, "sandbox-ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        return ctx

    async def start(self) -> Sandbox:
        if self.config.record:
            # Heavy imports (scipy.signal, libsndfile) now, not on the loop mid-session.
            with contextlib.suppress(Exception):
                from doctor.sandbox import recorder

                recorder.warm_up()
        self._server = await serve(
            self._handler,
            self.config.host,
            self.config.port,
            ssl=self._ssl_context(),
            process_request=self._process_request,
            compression=None,
            ping_interval=None,
            max_size=2**22,
            logger=None if os.environ.get("SANDBOX_DEBUG") else _QUIET,
        )
        sock = next(iter(self._server.sockets))
        self.port = int(sock.getsockname()[1])
        self.log.record(
            "server",
            "sandbox.started",
            **{k: v for k, v in self.ready_info().items() if k != "api_keys"},
            api_keys=[masked(k) for k in self.api_keys],
            faults=self.config.faults,
        )
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5.0)
            self._server = None
            self.log.record("server", "sandbox.stopped")
        for timer in list(self._timers):  # after the close: closing detaches sessions
            timer.cancel()
        self.log.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        if self._artifacts_tmp is not None:
            for session in self.store.sessions.values():  # recordings still open
                if session.recorder is not None:
                    with contextlib.suppress(Exception):
                        session.recorder.close(time.time())
            shutil.rmtree(self._artifacts_tmp, ignore_errors=True)
            self._artifacts_tmp = None

    # --- session artifacts --------------------------------------------------------------
    @property
    def artifacts_root(self) -> str:
        if self.config.artifacts_dir:
            return self.config.artifacts_dir
        if self._artifacts_tmp is None:
            self._artifacts_tmp = tempfile.mkdtemp(prefix="agent-doctor-sandbox-sessions-")
        return self._artifacts_tmp

    def start_recording(self, session: Session) -> None:
        """Left = what the client sends, right = the agent; never fatal to the session."""
        if not self.config.record:
            return
        from doctor.sandbox import artifacts
        from doctor.sandbox.recorder import Recorder

        try:
            session.recorder = Recorder(
                artifacts.recording_path(self.artifacts_root, session.id),
                session.started_at - artifacts.RECORDING_LEAD,
            )
        except Exception as exc:  # no libsndfile / no Opus: the rest still works
            self.log.record(
                "server",
                "recording.failed",
                session_id=session.id,
                error=f"{type(exc).__name__}: {exc}",
            )

    def session_finished(self, session: Session) -> None:
        """Write the ended session's artifacts; the REST API lists them after the delay."""
        if not self.config.record or session.artifacts is not None:
            return
        from doctor.sandbox import artifacts

        if session.ended_at is None:
            session.ended_at = time.time()
        try:
            session.artifacts = artifacts.write(
                session,
                self.artifacts_root,
                self.now() + self.config.artifacts_delay_s,
                self.config.timeline_reason,
                self.config.timeline_quirks,
            )
        except Exception as exc:
            self.log.record(
                "server",
                "artifacts.failed",
                session_id=session.id,
                error=f"{type(exc).__name__}: {exc}",
            )
            return
        self.log.record(
            "server",
            "artifacts.written",
            session_id=session.id,
            ready_in_s=self.config.artifacts_delay_s,
        )

    async def __aenter__(self) -> Sandbox:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- HTTP stage ---------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urllib.parse.urlsplit(request.path)
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        header = request.headers.get("Authorization")
        self.log.record(
            "in",
            "http.request",
            path=mask_query(request.path),
            authorization=(
                "bearer" if header and header.strip()[:7].lower() == "bearer " else "raw"
            )
            if header
            else None,
            upgrade=request.headers.get("Upgrade"),
        )
        if self.rest.handles(parts.path):
            return self._logged(self.rest.handle(request.method, parts.path, query, header))
        if parts.path == TOKEN_PATH:
            return self._logged(self._token_endpoint(header, query))
        if parts.path != WS_PATH:
            return self._logged(_json_response(404, {"error": "Not found"}))
        if self.config.fault("handshake-reject"):
            return self._logged(_json_response(401, {"error": "Unauthorized"}))
        if self.config.fault("handshake-forbidden"):
            return self._logged(_json_response(403, {"error": "Forbidden"}))
        auth = self._authenticate(header, query)
        if auth.failure is not None and auth.failure_mode == "http":
            status = 403 if auth.failure.code == "FORBIDDEN" else 401
            return self._logged(_json_response(status, {"error": auth.failure.message}))
        self._pending[connection] = auth
        return None

    def _logged(self, response: Response) -> Response:
        json_body = response.headers.get("Content-Type") == "application/json"
        self.log.record(
            "out",
            "http.response",
            status=response.status_code,
            body=_mask_body(response.body) if json_body else f"({len(response.body)} bytes)",
        )
        return response

    def _token_error(
        self,
        status: int,
        message: str,
        param: str | None = None,
        retry_after_s: float | None = None,
    ) -> Response:
        at = time.time()
        extra: tuple[tuple[str, str], ...] = ()
        if retry_after_s is not None:
            extra = (
                ("Retry-After", _retry_after(retry_after_s, self.config.retry_after_form, at)),
            )
        if self.config.token_errors == "field" or self.config.token_error_body == "detail":
            # field-facts §1: the live endpoint's error bodies are `{"detail": ...}` (it
            # answers protocol.md's open question 8); `{"error": ...}` is the documented
            # endpoint's generic shape, kept behind --token-errors documented
            return _json_response(status, {"detail": message}, extra, at)
        body: dict[str, Any] = {"error": message}
        if param is not None:  # AssemblyAI's generic error shape: {error, code?, details?}
            body["details"] = {"param": param}
        return _json_response(status, body, extra, at)

    def _token_endpoint(self, header: str | None, query: dict[str, list[str]]) -> Response:
        if self.config.fault("token-rate-limited"):
            return self._token_error(
                429, "Too many requests", retry_after_s=self.config.fault_s("token-rate-limited")
            )
        if self.config.fault("token-server-error"):
            return self._token_error(500, "Internal server error")
        parsed = parse_token_query(query)
        if self.config.token_errors == "field":
            # field-facts §1: FastAPI validates the header and the query first (422 with
            # every problem listed), then a key it does not know is 404 "Invalid API key".
            items = [] if header else [MISSING_AUTH_ITEM]
            items += [p.item for p in parsed if p.item] if isinstance(parsed, list) else []
            if items:
                return _json_response(422, {"detail": items}, at=time.time())
            if _strip_bearer(header or "") not in self.api_keys:
                return _json_response(404, {"detail": "Invalid API key"}, at=time.time())
        else:
            if not header:
                return self._token_error(401, "Missing authorization header")
            if _strip_bearer(header) not in self.api_keys:
                return self._token_error(401, "Unauthorized")
            if isinstance(parsed, list):
                first = parsed[0]
                return self._token_error(first.status, first.message, first.param)
        assert header is not None and not isinstance(parsed, list)
        key = _strip_bearer(header)
        expires, cap = parsed
        grant = self.store.mint(key, expires, cap, self.now())
        self.log.record(
            "server",
            "token.minted",
            auth="api_key",
            token=masked(grant.token),
            expires_in_seconds=expires,
            max_session_duration_seconds=cap,
        )
        return _json_response(200, {"token": grant.token, "expires_in_seconds": expires})

    def _authenticate(self, header: str | None, query: dict[str, list[str]]) -> Auth:
        mode = self.config.mode("auth_failure")
        # field-facts §2: any refused credential (bad, missing, expired): the upgrade
        # succeeds, then session.error `unauthorized` and close 1008.
        refused = rules.ProtocolError("unauthorized", "Authentication failed", config=True)
        if "token" in query:
            token = query["token"][-1]
            outcome = self.store.redeem(token, self.now())
            if isinstance(outcome, TokenGrant):
                return Auth("token", outcome.owner_key, outcome)
            if outcome == "expired":
                expired = self.config.mode("expired_token")
                if expired == "field":
                    return Auth("token", failure=refused, failure_mode="close")
                if expired == "frame":
                    err = rules.ProtocolError(
                        "unauthorized", "Token expired: the redemption window has passed"
                    )
                    return Auth("token", failure=err, failure_mode="frame")
                err = rules.ProtocolError("UNAUTHORIZED", "Token expired")
                return Auth("token", failure=err, failure_mode=expired)
            why = "Token already used" if outcome == "used" else "Invalid token"
            if mode == "field":
                return Auth("token", failure=refused, failure_mode="close")
            return Auth(
                "token", failure=rules.ProtocolError("UNAUTHORIZED", why), failure_mode=mode
            )
        if not header:
            if mode == "field":
                return Auth("none", failure=refused, failure_mode="close")
            err = rules.ProtocolError("UNAUTHORIZED", "Missing authorization header or token")
            return Auth("none", failure=err, failure_mode=mode)
        key = _strip_bearer(header)
        if key in self.config.forbidden_keys:
            err = rules.ProtocolError("FORBIDDEN", "This API key has no Voice Agent access")
            return Auth("api_key", failure=err, failure_mode="close" if mode == "field" else mode)
        if key not in self.api_keys:
            if mode == "field":
                return Auth("api_key", failure=refused, failure_mode="close")
            return Auth(
                "api_key",
                failure=rules.ProtocolError("UNAUTHORIZED", "Invalid API key"),
                failure_mode=mode,
            )
        return Auth("api_key", key)

    # --- WebSocket stage ----------------------------------------------------------------
    async def _handler(self, ws: ServerConnection) -> None:
        auth = self._pending.pop(ws, Auth("none"))
        self._next_conn += 1
        conn = Connection(self, ws, self._next_conn, auth)
        self._live[conn.id] = conn
        try:
            await conn.run()
        finally:
            self._live.pop(conn.id, None)

    def connection(self, conn_id: int | None) -> Connection | None:
        return None if conn_id is None else self._live.get(conn_id)

    def detach(self, session_id: str) -> None:
        """The socket went away without session.end: the grace window runs, and its end
        is an event in the log (tests wait on it instead of sleeping)."""
        self.store.detach(session_id, self.now())
        timer = asyncio.ensure_future(self._expire_when_due(session_id))
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)

    async def _expire_when_due(self, session_id: str) -> None:
        while True:
            session = self.store.sessions.get(session_id)
            if session is None or session.attached is not None or session.detached_at is None:
                return  # ended, resumed, or already forgotten
            due = min(session.detached_at + self.store.grace_s, session.cap_deadline)
            if self.now() > due:
                for gone in self.store.expire(self.now()):
                    self.log.record(
                        "server",
                        "session.grace_expired",
                        session_id=gone,
                        grace_s=self.store.grace_s,
                    )
                    ended = self.store.finished.get(gone)
                    if ended is not None:
                        self.session_finished(ended)
                return
            await asyncio.sleep(due - self.now() + 0.001)


def _mask_body(body: bytes | bytearray) -> Any:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(data, dict) and isinstance(data.get("token"), str):
        data["token"] = masked(data["token"])
    return data


class _Quiet:
    """websockets' own logger, silenced: the event log says what happened."""

    def debug(self, *a: Any, **k: Any) -> None: ...
    def info(self, *a: Any, **k: Any) -> None: ...
    def warning(self, *a: Any, **k: Any) -> None: ...
    def error(self, *a: Any, **k: Any) -> None: ...
    def exception(self, *a: Any, **k: Any) -> None: ...
    def isEnabledFor(self, level: int) -> bool:
        return False


_QUIET: Any = _Quiet()
