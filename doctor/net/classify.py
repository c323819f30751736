"""Failure classification for the staged reachability probe (pure: exceptions and bytes in,
contract cause codes out). Never lets a bare exception reach the user."""

from __future__ import annotations

import errno
import re
import socket
import ssl
from dataclasses import dataclass

STAGES = ("proxy", "dns", "tcp", "proxy_connect", "tls", "ws_upgrade")

# OpenSSL X509 verify codes (x509_vfy.h).
_VERIFY_EXPIRED = {9, 10}  # not yet valid, expired
_VERIFY_HOSTNAME = {62, 64}  # hostname mismatch, IP address mismatch
_VERIFY_UNTRUSTED = {2, 18, 19, 20, 21, 27}  # unknown / self-signed / no local issuer


@dataclass(frozen=True)
class Failure:
    cause: str
    stage: str
    detail: str

    def as_evidence(self) -> dict[str, str]:
        return {"failed_stage": self.stage, "failure_detail": self.detail}


def _errno_of(exc: BaseException) -> int | None:
    return exc.errno if isinstance(exc, OSError) else None


def classify_exception(stage: str, exc: BaseException, *, via_proxy: bool = False) -> Failure:
    """One exception at one stage -> one cause. `via_proxy` says the TCP peer is the proxy."""
    text = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return Failure("timeout", stage, f"no answer at the {stage} stage ({text})")
    if stage == "dns":
        if isinstance(exc, socket.gaierror):
            names = {
                socket.EAI_NONAME: "name does not exist (NXDOMAIN)",
                socket.EAI_AGAIN: "no DNS server answered (temporary failure)",
            }
            return Failure("dns_failed", stage, names.get(exc.errno or 0, text))
        return Failure("dns_failed", stage, text)
    if stage == "tcp" and via_proxy and isinstance(exc, OSError):
        return Failure("proxy_unreachable", stage, f"cannot connect to the proxy: {text}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        if code in _VERIFY_EXPIRED:
            return Failure("tls_expired", "tls", exc.verify_message or text)
        if code in _VERIFY_HOSTNAME:
            return Failure("tls_hostname_mismatch", "tls", exc.verify_message or text)
        if code in _VERIFY_UNTRUSTED:
            return Failure("tls_untrusted", "tls", exc.verify_message or text)
        return Failure("tls_failed", "tls", text)
    if isinstance(exc, ConnectionRefusedError):
        return Failure("connection_refused", stage, text)
    if isinstance(
        exc,
        (
            ConnectionResetError,
            ConnectionAbortedError,
            BrokenPipeError,
            ssl.SSLEOFError,
            ssl.SSLZeroReturnError,
        ),
    ):
        return Failure("connection_reset", stage, text)
    if isinstance(exc, ssl.SSLError):  # before errno: SSLError numbers are not errnos
        if "WRONG_VERSION_NUMBER" in str(exc) or "record layer failure" in str(exc):
            text += " (the port does not speak TLS: plain HTTP, or a proxy answered in clear)"
        return Failure("tls_failed", "tls", text)
    if _errno_of(exc) in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM):
        return Failure("no_route", stage, text)
    if isinstance(exc, OSError) and _errno_of(exc) == errno.ECONNREFUSED:
        return Failure("connection_refused", stage, text)
    return Failure("tls_failed" if stage == "tls" else "connection_reset", stage, text)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names
    body: bytes


def parse_http_response(raw: bytes) -> HttpResponse | None:
    """Status line, headers and whatever body bytes came with them; None if not HTTP."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    match = re.match(r"HTTP/\d(?:\.\d)?\s+(\d{3})\s*(.*)", lines[0]) if lines else None
    if not match:
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return HttpResponse(int(match.group(1)), match.group(2), headers, body)


def sanitize_body(body: bytes, limit: int = 160) -> str:
    """The first bytes of a body, printable and on one line (a middlebox page, a portal)."""
    text = body[: limit * 2].decode("utf-8", "replace")
    text = re.sub(r"<[^>]{0,200}>", " ", text)
    text = re.sub(r"[^\x20-\x7e]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()[:limit]


def classify_proxy_status(resp: HttpResponse | None, user: str | None = None) -> Failure | None:
    """A CONNECT answer. `user`: the user name whose credentials were sent (never the
    password): a 407 (or tinyproxy's 401) then means they were refused, not missing."""
    if resp is None:
        return Failure("proxy_denied", "proxy_connect", "the proxy did not answer CONNECT in HTTP")
    if 200 <= resp.status < 300:
        return None
    detail = f"HTTP {resp.status} {resp.reason}".strip()
    if resp.status in (401, 407) and user is not None:
        return Failure(
            "proxy_auth_required",
            "proxy_connect",
            f"{detail}; the proxy refused the credentials sent for user {user!r} (the "
            "password or the user name is wrong)",
        )
    if resp.status in (401, 407):
        scheme = resp.headers.get("proxy-authenticate", "")
        return Failure(
            "proxy_auth_required",
            "proxy_connect",
            f"{detail}; the proxy wants credentials ({scheme or 'no scheme given'})",
        )
    if resp.status in (403, 405, 400):
        return Failure("proxy_denied", "proxy_connect", f"{detail}: CONNECT refused")
    if resp.status in (502, 503, 504):
        return Failure(
            "timeout" if resp.status == 504 else "connection_refused",
            "proxy_connect",
            f"{detail}: the proxy could not reach the host",
        )
    return Failure("proxy_denied", "proxy_connect", detail)


def _is_json(resp: HttpResponse) -> bool:
    return "json" in resp.headers.get("content-type", "") or resp.body.lstrip()[:1] in (b"{", b"[")


def classify_upgrade(resp: HttpResponse | None, raw: bytes) -> tuple[Failure | None, str]:
    """The answer to an *unauthenticated* upgrade: (failure or None, what it means).

    101 is the API. An auth refusal in the service's style (401, or 403 with a JSON body)
    also proves the API is there: only credentials are missing, which the `token` check
    looks at. A redirect or an HTML page is a captive portal or a block page.
    """
    if resp is None:
        return (
            Failure(
                "not_websocket",
                "ws_upgrade",
                f"the answer is not HTTP: {sanitize_body(raw) or 'no bytes'}",
            ),
            "not HTTP",
        )
    body = sanitize_body(resp.body)
    if resp.status == 101:
        if resp.headers.get("upgrade", "").lower() != "websocket":
            return Failure("not_websocket", "ws_upgrade", "101 without `Upgrade: websocket`"), ""
        return None, "101 Switching Protocols: the WebSocket endpoint answered"
    if resp.status == 401 or (resp.status == 403 and _is_json(resp)):
        return None, (
            f"HTTP {resp.status} to an unauthenticated upgrade: the API is there and "
            "asks for credentials"
        )
    ctype = resp.headers.get("content-type", "")
    if 300 <= resp.status < 400:
        where = resp.headers.get("location", "?")
        return (
            Failure(
                "not_websocket",
                "ws_upgrade",
                f"HTTP {resp.status} redirect to {where}: a captive portal or a login "
                "page intercepts the connection",
            ),
            "",
        )
    if 200 <= resp.status < 300:
        return (
            Failure(
                "not_websocket",
                "ws_upgrade",
                f"HTTP {resp.status} {ctype or 'no content type'} instead of a WebSocket "
                f"upgrade (a captive portal or block page?): {body!r}",
            ),
            "",
        )
    return (
        Failure(
            "http_rejected",
            "ws_upgrade",
            f"HTTP {resp.status} {resp.reason}".strip() + (f": {body!r}" if body else ""),
        ),
        "",
    )
