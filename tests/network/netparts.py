"""Real network parts for the `wss` tests: TLS servers with trustme certificates, silent
listeners, HTTP block pages, tinyproxy and proxy.py processes. Loopback only."""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import trustme
from realparts import need_tool, stop_process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes] | None = None, seconds: float = 60) -> None:
    """Poll until a daemon we started listens (bounded; not a sleep-as-synchronisation)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {port} after {seconds} s")


@dataclass
class Certs:
    ca: trustme.CA
    ca_file: Path
    dir: Path

    def server_context(
        self, *names: str, expired: bool = False, ca: trustme.CA | None = None
    ) -> ssl.SSLContext:
        kwargs = {}
        if expired:
            kwargs = {
                "not_before": datetime.datetime(2020, 1, 1),
                "not_after": datetime.datetime(2021, 1, 1),
            }
        leaf = (ca or self.ca).issue_cert(*(names or ("localhost", "127.0.0.1")), **kwargs)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(ctx)
        return ctx


def make_certs(tmp: Path) -> Certs:
    ca = trustme.CA(organization_name="Voice Agent Test CA")
    ca_file = tmp / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Certs(ca, ca_file, tmp)


Handler = Callable[[socket.socket], None]


class ThreadServer:
    """Accepts on 127.0.0.1 and hands each connection to `handler` in a thread."""

    def __init__(
        self, handler: Handler, ssl_ctx: ssl.SSLContext | None = None, accept: bool = True
    ) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.handler, self.ssl_ctx = handler, ssl_ctx
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        if accept:
            threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            if self.ssl_ctx is not None:
                conn = self.ssl_ctx.wrap_socket(conn, server_side=True)
            self.handler(conn)

    def close(self) -> None:
        self._stop.set()
        for c in self.conns:
            with contextlib.suppress(OSError):
                c.close()
        self.sock.close()


def _read_request(conn: socket.socket) -> bytes:
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def http_answer(status: str, body: bytes, ctype: str = "text/html", extra: str = "") -> Handler:
    def handle(conn: socket.socket) -> None:
        _read_request(conn)
        conn.sendall(
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: "
            f"{len(body)}\r\n{extra}Connection: close\r\n\r\n".encode()
            + body
        )
        conn.close()

    return handle


def websocket_accept(conn: socket.socket) -> None:
    """A minimal RFC 6455 server handshake: enough to prove the upgrade path."""
    import base64
    import hashlib

    req = _read_request(conn).decode("latin-1")
    keys = [
        line.split(":", 1)[1].strip()
        for line in req.split("\r\n")
        if line.lower().startswith("sec-websocket-key:")
    ]
    if not keys:  # a probe's second handshake that sends no request
        conn.close()
        return
    key = keys[0]
    accept = base64.b64encode(
        hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    ).decode()
    conn.sendall(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        ).encode()
    )
    with contextlib.suppress(OSError):
        conn.recv(64)  # the client's close frame
    conn.close()


def silent(conn: socket.socket) -> None:
    """Accept and never answer: a blackhole after the TCP handshake."""
    with contextlib.suppress(OSError):
        conn.settimeout(30)
        conn.recv(1)


@contextlib.contextmanager
def daemon(
    cmd: list[str], port: int, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_port(port, proc)
        yield proc
    finally:
        stop_process(proc)


@contextlib.contextmanager
def tinyproxy(
    tmp: Path, allow_ports: list[int], auth: tuple[str, str] | None = None
) -> Iterator[tuple[int, Path]]:
    need_tool("tinyproxy")
    port = free_port()
    log = tmp / f"tiny-{port}.log"
    conf = tmp / f"tiny-{port}.conf"
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Allow 127.0.0.1",
        "Timeout 30",
        f'LogFile "{log}"',
        "LogLevel Info",
        f'PidFile "{tmp}/tiny-{port}.pid"',
        "MaxClients 20",
        "DisableViaHeader Yes",
        *[f"ConnectPort {p}" for p in allow_ports],
    ]
    if auth:
        lines.append(f"BasicAuth {auth[0]} {auth[1]}")
    conf.write_text("\n".join(lines) + "\n")
    with daemon(["tinyproxy", "-d", "-c", str(conf)], port, tmp / f"tiny-{port}.out"):
        yield port, log


@contextlib.contextmanager
def intercepting_proxy(tmp: Path, upstream_ca: Path) -> Iterator[tuple[int, Path]]:
    """proxy.py doing real TLS interception with its own 'corporate' CA."""
    need_tool("openssl")
    ca_key, ca_pem, sign_key = tmp / "mitm-ca.key", tmp / "mitm-ca.pem", tmp / "mitm-sign.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-newkey",
            "rsa:2048",
            "-keyout",
            str(ca_key),
            "-out",
            str(ca_pem),
            "-days",
            "30",
            "-subj",
            "/O=Contoso Corp SSL Inspection/CN=Contoso Corp Root CA",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["openssl", "genrsa", "-out", str(sign_key), "2048"], check=True, capture_output=True
    )
    (tmp / "mitm-certs").mkdir(exist_ok=True)
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "proxy",
        "--hostname",
        "127.0.0.1",
        "--port",
        str(port),
        "--ca-key-file",
        str(ca_key),
        "--ca-cert-file",
        str(ca_pem),
        "--ca-signing-key-file",
        str(sign_key),
        "--ca-cert-dir",
        str(tmp / "mitm-certs"),
        "--ca-file",
        str(upstream_ca),
        "--num-workers",
        "1",
        "--num-acceptors",
        "1",
    ]
    with daemon(cmd, port, tmp / "proxypy.log", env=dict(os.environ)):
        yield port, ca_pem
