"""The staged reachability probe: DNS, TCP, proxy CONNECT, TLS, WebSocket upgrade.

Blocking sockets on purpose: each stage is timed and fails on its own, which a one-shot
`websockets.connect` cannot tell apart (a TCP drop and a TLS blackhole both look like
"timed out during opening handshake"). Run it in a thread (`doctor.runner.run_blocking`).
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import os
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from doctor.net.classify import (
    Failure,
    HttpResponse,
    classify_exception,
    classify_proxy_status,
    classify_upgrade,
    parse_http_response,
)
from doctor.net.proxy_choice import ProxyChoice
from doctor.net.tls_facts import certificate_facts, looks_like_inspection, looks_public
from doctor.net.trust import verifying_context

MAX_HEAD = 64 * 1024


@dataclass
class Probe:
    """What one probe of one URL found; `failure` is None when the API answered."""

    url: str
    host: str
    port: int
    evidence: dict[str, Any] = field(default_factory=dict)
    failure: Failure | None = None
    meaning: str = ""

    @property
    def ok(self) -> bool:
        return self.failure is None


class _StageError(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


def _ms(t0: float) -> float:
    return round((time.monotonic() - t0) * 1000, 1)


def resolve(host: str, port: int, timeout: float) -> list[tuple[Any, ...]]:
    """getaddrinfo has no timeout of its own: run it in a daemon thread and stop waiting."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["ok"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except BaseException as exc:
            box["err"] = exc

    thread = threading.Thread(target=work, daemon=True, name="doctor-dns")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"DNS lookup of {host} took longer than {timeout:g} s")
    if "err" in box:
        raise box["err"]
    infos: list[tuple[Any, ...]] = box["ok"]
    return infos


def _read_head(sock: socket.socket | ssl.SSLSocket, deadline: float) -> bytes:
    """Read up to the end of the HTTP head, plus any body bytes that came with it."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < MAX_HEAD:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    resp = parse_http_response(data)
    if resp and resp.status != 101:  # read a little of the body for the evidence
        want = min(int(resp.headers.get("content-length", "0") or 0), 2048)
        while len(resp.body) < want and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
            resp = parse_http_response(data) or resp
    return data


class _Prober:
    def __init__(
        self, url: str, choice: ProxyChoice, ca_bundle: str | None, timeout: float
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"not a ws:// or wss:// URL: {url}")
        self.url = url
        self.secure = parts.scheme == "wss"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.secure else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.choice = choice
        self.proxy = urllib.parse.urlsplit(choice.url) if choice.url else None
        self.ca_bundle = ca_bundle
        self.timeout = timeout

    # -- stages ------------------------------------------------------------------------------
    def _connect_tcp(self, ev: dict[str, Any] | None) -> socket.socket:
        via_proxy = self.proxy is not None
        host = self.proxy.hostname if self.proxy else self.host
        port = (
            (self.proxy.port or (443 if self.proxy.scheme == "https" else 80))
            if self.proxy
            else self.port
        )
        assert host is not None
        t0 = time.monotonic()
        try:
            infos = resolve(host, port, self.timeout)
        except BaseException as exc:
            failure = classify_exception("dns", exc)
            if via_proxy and failure.cause == "dns_failed":
                failure = Failure(
                    "proxy_unreachable",
                    "dns",
                    f"the proxy host {host} does not resolve: {failure.detail}",
                )
            raise _StageError(failure) from exc
        addrs = list(dict.fromkeys(info[4][0] for info in infos))
        if ev is not None:
            ev.update(
                {
                    "dns_host": host,
                    "dns_ms": _ms(t0),
                    "dns_addresses": addrs,
                    "dns_ipv4": [a for a in addrs if ":" not in a],
                    "dns_ipv6": [a for a in addrs if ":" in a],
                }
            )
        errors: list[str] = []
        last: BaseException | None = None
        for family, stype, proto, _, sockaddr in infos:
            sock = socket.socket(family, stype, proto)
            sock.settimeout(self.timeout)
            t1 = time.monotonic()
            try:
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                errors.append(f"{sockaddr[0]}: {type(exc).__name__}: {exc}")
                last = exc
                continue
            if ev is not None:
                ev.update(
                    {
                        "tcp_peer": f"{sockaddr[0]}:{sockaddr[1]}",
                        "tcp_connect_ms": _ms(t1),
                        "tcp_target": "proxy" if via_proxy else "host",
                    }
                )
                if errors:
                    ev["tcp_errors"] = errors
            return sock
        if ev is not None:
            ev["tcp_errors"] = errors
        assert last is not None
        raise _StageError(classify_exception("tcp", last, via_proxy=via_proxy)) from last

    def _tunnel(self, sock: socket.socket, ev: dict[str, Any] | None) -> socket.socket:
        assert self.proxy is not None
        t0 = time.monotonic()
        try:
            if self.proxy.scheme == "https":
                sock = ssl.create_default_context().wrap_socket(
                    sock, server_hostname=self.proxy.hostname
                )
            target = f"{self.host}:{self.port}"
            head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: agent-doctor\r\n"
            if self.proxy.username is not None:
                user = urllib.parse.unquote(self.proxy.username)
                password = urllib.parse.unquote(self.proxy.password or "")
                cred = base64.b64encode(f"{user}:{password}".encode()).decode()
                head += f"Proxy-Authorization: Basic {cred}\r\n"
            sock.settimeout(self.timeout)
            sock.sendall((head + "\r\n").encode())
            raw = _read_head(sock, time.monotonic() + self.timeout)
        except BaseException as exc:
            sock.close()
            raise _StageError(classify_exception("proxy_connect", exc)) from exc
        resp = parse_http_response(raw)
        if ev is not None:
            ev.update({"proxy_connect_ms": _ms(t0), "proxy_status": resp.status if resp else None})
        sent_user: str | None = None
        if self.proxy.username is not None:
            sent_user = urllib.parse.unquote(self.proxy.username)
            if ev is not None:
                ev["proxy_user"] = sent_user  # the user name only: the password is secret
        refused = classify_proxy_status(resp, sent_user)
        if refused:
            sock.close()
            raise _StageError(refused)
        return sock

    def _open(self, ev: dict[str, Any] | None) -> socket.socket:
        if self.proxy is not None and self.proxy.scheme.startswith("socks"):
            return self._socks_open(ev)
        sock = self._connect_tcp(ev)
        return self._tunnel(sock, ev) if self.proxy else sock

    def _socks_open(self, ev: dict[str, Any] | None) -> socket.socket:
        """The SOCKS stage on its own (python-socks, as websockets uses it), so that a
        proxy that never finishes the SOCKS handshake is named as such, and TLS and the
        upgrade are then staged and timed like any other path."""
        from python_socks import ProxyTimeoutError
        from python_socks.sync import Proxy
        from websockets.sync.client import SOCKS_PROXY_RDNS, SOCKS_PROXY_TYPES

        assert self.proxy is not None and self.proxy.hostname is not None
        scheme, port = self.proxy.scheme, self.proxy.port or 1080
        where = f"{self.proxy.hostname}:{port}"
        unquote = urllib.parse.unquote
        socks = Proxy(
            SOCKS_PROXY_TYPES[scheme],
            self.proxy.hostname,
            port,
            None if self.proxy.username is None else unquote(self.proxy.username),
            None if self.proxy.password is None else unquote(self.proxy.password),
            rdns=SOCKS_PROXY_RDNS[scheme],
        )
        user, password = unquote(self.proxy.username or ""), unquote(self.proxy.password or "")
        if ev is not None and user and password:  # python-socks sends them only both given
            ev["proxy_user"] = user  # the name only: never the password
        t0 = time.monotonic()
        try:
            sock = socks.connect(self.host, self.port, timeout=self.timeout)
        except ProxyTimeoutError as exc:
            raise _StageError(
                Failure(
                    "timeout",
                    "socks",
                    f"the SOCKS proxy at {where} did not finish the SOCKS handshake (and its "
                    f"CONNECT to {self.host}:{self.port}) within {self.timeout:g} s: is it a "
                    f"{scheme} proxy?",
                )
            ) from exc
        except Exception as exc:
            raise _StageError(_socks_failure(exc)) from exc
        if ev is not None:
            ev.update({"tcp_peer": where, "tcp_target": "proxy", "socks_connect_ms": _ms(t0)})
        sock.settimeout(self.timeout)
        return sock

    def _context(self, cafile: str | None, verify: bool = True) -> ssl.SSLContext:
        if verify:  # loaded once, and early when `all`/`check` preloaded it (trust.py)
            return verifying_context(cafile)
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _handshake(self, ctx: ssl.SSLContext, ev: dict[str, Any] | None) -> ssl.SSLSocket:
        sock = self._open(ev)
        t0 = time.monotonic()
        try:
            tls = ctx.wrap_socket(sock, server_hostname=self.host)
        except BaseException as exc:
            sock.close()
            raise _StageError(classify_exception("tls", exc)) from exc
        if ev is not None:
            ev.update(
                {
                    "tls_handshake_ms": _ms(t0),
                    "tls_version": tls.version(),
                    "tls_cipher": (tls.cipher() or ("?",))[0],
                }
            )
        return tls

    def _peer_facts(self) -> dict[str, Any]:
        """A second, non-verifying handshake, only to read the certificate we are shown."""
        tls = self._handshake(self._context(None, verify=False), None)
        try:
            der = tls.getpeercert(binary_form=True)
            return certificate_facts(der) if der else {}
        finally:
            tls.close()

    def _certifi_verdict(self) -> dict[str, Any]:
        try:
            import certifi

            tls = self._handshake(self._context(certifi.where()), None)
            tls.close()
            return {"tls_certifi_verified": True}
        except _StageError as exc:
            verified = None if exc.failure.cause == "timeout" else False
            return {"tls_certifi_verified": verified, "tls_certifi_error": exc.failure.detail}
        except Exception as exc:
            return {"tls_certifi_verified": None, "tls_certifi_error": str(exc)}

    def _tls(self, ev: dict[str, Any]) -> ssl.SSLSocket:
        system = (
            f"system (SSL_CERT_FILE={os.environ['SSL_CERT_FILE']})"
            if os.environ.get("SSL_CERT_FILE")
            else "system"
        )
        ev["tls_trust_store"] = (
            f"{system} + --ca-bundle {self.ca_bundle}" if self.ca_bundle else system
        )
        try:
            tls = self._handshake(self._context(self.ca_bundle), ev)
        except _StageError as exc:
            if exc.failure.stage != "tls":
                raise
            failure = exc.failure
            if failure.cause == "timeout":
                # A silent peer: more handshakes would each wait the whole timeout again.
                ev["tls_second_look"] = "not tried: the peer did not answer the handshake"
                raise
            silent = False
            try:
                facts = self._peer_facts()
            except _StageError as second:
                facts = {}
                silent = second.failure.cause == "timeout"
                if silent:
                    # The peer answered once and then fell silent: a third handshake
                    # would wait the whole timeout again (issue 13: every verdict within
                    # --timeout + 2 s of the stall).
                    ev["tls_second_look"] = (
                        f"timed out: no answer to a second handshake within {self.timeout:g} s"
                    )
                    ev["tls_certifi_verified"] = None
                    ev["tls_certifi_error"] = (
                        "not tried: the peer stopped answering (the second handshake timed out)"
                    )
            ev.update(facts)
            if not silent:
                ev.update(self._certifi_verdict())
            issuer = str(facts.get("tls_issuer", ""))
            if (
                failure.cause == "tls_untrusted"
                and issuer
                and not looks_public(issuer)
                and (self.proxy is not None or looks_like_inspection(issuer))
            ):
                failure = Failure(
                    "tls_intercepted",
                    "tls",
                    f"the certificate for {self.host} was issued by {issuer}, "
                    f"not a public CA ({failure.detail})",
                )
            raise _StageError(failure) from exc
        der = tls.getpeercert(binary_form=True)
        if der:
            ev.update(certificate_facts(der))
        return tls

    def _upgrade(self, sock: socket.socket | ssl.SSLSocket, ev: dict[str, Any]) -> str:
        key = base64.b64encode(os.urandom(16)).decode()
        host = self.host if self.port in (80, 443) else f"{self.host}:{self.port}"
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\nUser-Agent: agent-doctor\r\n\r\n"
        )
        t0 = time.monotonic()
        try:
            sock.settimeout(self.timeout)
            sock.sendall(request.encode())
            raw = _read_head(sock, time.monotonic() + self.timeout)
        except BaseException as exc:
            raise _StageError(classify_exception("ws_upgrade", exc)) from exc
        resp: HttpResponse | None = parse_http_response(raw)
        ev.update({"ws_upgrade_ms": _ms(t0), "http_status": resp.status if resp else None})
        if resp is not None and resp.headers.get("server"):
            ev["http_server"] = resp.headers["server"][:80]
        failure, meaning = classify_upgrade(resp, raw)
        if failure:
            raise _StageError(failure)
        if resp is not None and resp.status == 101:
            _close_frame(sock)
        return meaning

    def _socks_ready(self) -> None:
        """websockets needs python-socks for a SOCKS proxy; so does this probe."""
        if importlib.util.find_spec("python_socks") is None:
            raise _StageError(
                Failure(
                    "proxy_unreachable",
                    "proxy",
                    "a SOCKS proxy is configured, and websockets needs the python-socks package "
                    "for it (`pip install python-socks`): your app's client fails the same way",
                )
            ) from None

    def run(self) -> Probe:
        result = Probe(self.url, self.host, self.port)
        ev = result.evidence
        ev.update(self.choice.describe())
        t0 = time.monotonic()
        sock: socket.socket | ssl.SSLSocket | None = None
        try:
            if self.proxy is not None and self.proxy.scheme.startswith("socks"):
                self._socks_ready()
            sock = self._tls(ev) if self.secure else self._open(ev)
            try:
                result.meaning = self._upgrade(sock, ev)
            except _StageError as exc:
                if self.secure and exc.failure.cause != "timeout":
                    ev.update(self._certifi_verdict())
                raise
            if self.secure:  # a second handshake, only once the peer has answered
                ev.update(self._certifi_verdict())
        except _StageError as exc:
            result.failure = exc.failure
            ev.update(exc.failure.as_evidence())
        finally:
            if sock is not None:
                sock.close()
            ev["total_ms"] = _ms(t0)
        return result


def _socks_failure(exc: BaseException) -> Failure:
    """python-socks' own errors: the proxy itself unreachable (an OSError, which the
    ws_upgrade stage read as the service refusing: the firewall fix) or its refusal."""
    name = type(exc).__name__
    if name == "ProxyConnectionError":
        return Failure("proxy_unreachable", "proxy", f"cannot connect to the SOCKS proxy: {exc}")
    if name == "ProxyError":
        auth = "auth" in str(exc).lower()
        cause = "proxy_auth_required" if auth else "proxy_denied"
        return Failure(cause, "proxy", f"the SOCKS proxy refused: {exc}")
    return classify_exception("socks", exc)


def _close_frame(sock: socket.socket | ssl.SSLSocket) -> None:
    """A masked close frame (1000), so the server sees a clean goodbye, not a drop."""
    mask = os.urandom(4)
    payload = (1000).to_bytes(2, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    with contextlib.suppress(OSError):
        sock.sendall(bytes([0x88, 0x80 | len(payload)]) + mask + masked)


def probe(url: str, choice: ProxyChoice, ca_bundle: str | None, timeout: float) -> Probe:
    """Probe one WebSocket URL stage by stage; never raises for network trouble."""
    return _Prober(url, choice, ca_bundle, timeout).run()
