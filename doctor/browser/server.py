"""The loopback HTTP server the page talks to: page assets, a fresh token, the probe, results.

http://127.0.0.1:<free port> is a secure context in every engine without a certificate.
Every request but the page's own files needs the run's nonce in an `X-Doctor-Nonce` header:
a custom header makes a cross-origin request preflight, which this server never grants, so
no other site can fetch a token or post results. The API key stays in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

log = logging.getLogger("doctor.browser")

MAX_BODY = 32 * 1024 * 1024  # two echo recordings at 48 kHz are ~2 MB of base64
HEAD_TIMEOUT_S = 10.0
STOP_GRACE_S = 2.0  # how long stop() lets a connection finish its answer
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # the page loads only its own files; it talks to this server and to the service
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' ws: wss: https: http:; "
        "media-src 'self' blob:; img-src 'self' data:"
    ),
}

SessionFn = Callable[[], Awaitable[dict[str, Any]]]
ProbeFn = Callable[[int], bytes]
ResultFn = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def page_files() -> dict[str, bytes]:
    """The page's assets, read from the package once (no build step, nothing fetched)."""
    root = resources.files("doctor.browser") / "page"
    return {
        item.name: item.read_bytes()
        for item in root.iterdir()
        if item.is_file() and any(item.name.endswith(ext) for ext in _TYPES)
    }


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class PageServer:
    """Serves the page; `on_session`, `on_probe` and `on_result` are the CLI's side."""

    on_session: SessionFn
    on_probe: ProbeFn
    on_result: ResultFn
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    files: dict[str, bytes] = field(default_factory=page_files)
    port: int = 0
    requests: list[str] = field(default_factory=list)  # "METHOD /path status", for tests
    last_step: str | None = None  # what the page said it was doing last (POST /progress)
    _server: asyncio.Server | None = None
    # connection handlers, and whether each is still waiting for a request (idle)
    _handlers: dict[asyncio.Task[None], bool] = field(default_factory=dict)

    @property
    def page_loaded(self) -> bool:
        """Whether a browser fetched the page itself (so it got past the launcher)."""
        return any(r.startswith(("GET / ", "GET /index.html ")) for r in self.requests)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/#nonce={self.nonce}"

    async def start(self) -> PageServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop listening and end every connection: an idle one (a browser's spare
        connection, or any client that sends nothing) at once, one still answering after
        `grace_s`. Handlers left to the loop's teardown are cancelled there and asyncio
        prints a CancelledError traceback."""
        if self._server is not None:
            self._server.close()
        for task, idle in list(self._handlers.items()):
            if idle:
                task.cancel()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=grace_s)
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=grace_s)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), grace_s)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers[task] = True
        try:
            await self._serve(reader, writer, task)
        except asyncio.CancelledError:
            # stop() ended this connection (wherever it was, even in the 500 answer);
            # nobody awaits a handler task, and asyncio reports one that ends cancelled
            # as an "Exception in callback" traceback
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
            if task is not None:
                self._handlers.pop(task, None)

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        task: asyncio.Task[Any] | None,
    ) -> None:
        try:
            request = await asyncio.wait_for(_read_request(reader), HEAD_TIMEOUT_S)
            if task is not None:
                self._handlers[task] = False
            if request is None:
                return
            status, ctype, body = await self._route(request)
            self.requests.append(f"{request.method} {request.path} {status}")
            log.debug(
                "page: %s %s -> %s (%s)", request.method, request.path, status, self.last_step
            )
            await _respond(writer, status, ctype, body)
        except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception as exc:  # one bad request must not end the run
            log.debug("page server: %s", type(exc).__name__)
            with contextlib.suppress(Exception):
                await _respond(writer, 500, "text/plain", b"internal error")

    async def _route(self, req: Request) -> tuple[int, str, bytes]:
        if req.method == "GET" and req.path in ("/", "/index.html"):
            return 200, _TYPES[".html"], self.files["index.html"]
        if req.method == "GET" and req.path.startswith("/static/"):
            name = req.path.removeprefix("/static/")
            if name in self.files:
                ext = name[name.rfind(".") :]
                return 200, _TYPES[ext], self.files[name]
            return 404, "text/plain", b"not found"
        if req.method != "POST":
            return 404, "text/plain", b"not found"
        if not secrets.compare_digest(req.headers.get("x-doctor-nonce", ""), self.nonce):
            return 403, "text/plain", b"wrong or missing nonce"
        if req.path == "/session":
            return 200, "application/json", json.dumps(await self.on_session()).encode()
        if req.path == "/progress":
            try:
                step = json.loads(req.body).get("step")
            except (ValueError, AttributeError):
                step = None
            if isinstance(step, str):
                self.last_step = step[:200]
            return 200, "application/json", b"{}"
        if req.path == "/probe":
            try:
                rate = int(req.query.get("rate", ""))
            except ValueError:
                return 400, "text/plain", b"rate must be an integer"
            if not 3000 <= rate <= 768000:
                return 400, "text/plain", b"rate out of range"
            return 200, "application/octet-stream", self.on_probe(rate)
        if req.path == "/result":
            try:
                facts = json.loads(req.body)
            except ValueError:
                return 400, "text/plain", b"not JSON"
            if not isinstance(facts, dict):
                return 400, "text/plain", b"not a JSON object"
            return 200, "application/json", json.dumps(await self.on_result(facts)).encode()
        return 404, "text/plain", b"not found"


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    method, target, _ = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length > MAX_BODY:
        return None
    body = await reader.readexactly(length) if length else b""
    split = urllib.parse.urlsplit(target)
    query = dict(urllib.parse.parse_qsl(split.query))
    return Request(method, split.path, query, headers, body)


async def _respond(writer: asyncio.StreamWriter, status: int, ctype: str, body: bytes) -> None:
    reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found"}.get(
        status, "Error"
    )
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {ctype}"]
    head += [f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in _HEADERS.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
