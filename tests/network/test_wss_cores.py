"""Pure cores of the `wss` check: proxy choice, failure classification, HTTP parsing."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest

from doctor.net.classify import (
    classify_exception,
    classify_proxy_status,
    classify_upgrade,
    parse_http_response,
    sanitize_body,
)
from doctor.net.proxy_choice import choose_proxy
from doctor.net.tls_facts import looks_like_inspection, looks_public

URL = "wss://agents.assemblyai.com/v1/ws"


def test_explicit_proxy_wins() -> None:
    c = choose_proxy(URL, "http://u:p@proxy:3128", {"HTTPS_PROXY": "http://other:1"})
    assert (c.url, c.source, c.display) == ("http://u:p@proxy:3128", "--proxy", "http://proxy:3128")


def test_order_is_wss_then_socks_then_https_like_websockets() -> None:
    env = {"https_proxy": "http://h:1", "wss_proxy": "http://w:1", "socks_proxy": "http://s:1"}
    assert choose_proxy(URL, None, env).source == "environment wss_proxy"
    del env["wss_proxy"]
    c = choose_proxy(URL, None, env)
    assert (c.url, c.source) == ("socks5h://s:1", "environment socks_proxy")
    assert "https_proxy" in c.ignored


def test_lowercase_variable_wins_and_all_proxy_is_ignored() -> None:
    c = choose_proxy(
        URL,
        None,
        {
            "HTTPS_PROXY": "http://upper:1",
            "https_proxy": "http://lower:1",
            "ALL_PROXY": "http://all:1",
            "HTTP_PROXY": "http://plain:1",
        },
    )
    assert (c.url, c.source) == ("http://lower:1", "environment https_proxy")
    assert {"ALL_PROXY", "HTTP_PROXY"} <= set(c.ignored)


def test_no_proxy_bypass_is_reported() -> None:
    c = choose_proxy(URL, None, {"https_proxy": "http://h:1", "no_proxy": ".assemblyai.com"})
    assert c.url is None and c.bypassed_by == "no_proxy=.assemblyai.com"
    assert choose_proxy(URL, None, {}).source == "none"


def test_plain_ws_url_uses_http_proxy_last() -> None:
    assert choose_proxy("ws://h/v1/ws", None, {"http_proxy": "http://p:1"}).url == "http://p:1"


@pytest.mark.parametrize(
    ("stage", "exc", "cause"),
    [
        ("dns", socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "dns_failed"),
        ("dns", TimeoutError("slow"), "timeout"),
        ("tcp", ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "connection_refused"),
        ("tcp", OSError(errno.EHOSTUNREACH, "No route to host"), "no_route"),
        ("tcp", OSError(errno.ENETUNREACH, "Network is unreachable"), "no_route"),
        ("tls", ConnectionResetError(errno.ECONNRESET, "reset"), "connection_reset"),
        ("tls", ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), "connection_reset"),
        ("tls", ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "tls_failed"),
        ("tls", TimeoutError("timed out"), "timeout"),
    ],
)
def test_classify_exception(stage: str, exc: BaseException, cause: str) -> None:
    failure = classify_exception(stage, exc)
    assert failure.cause == cause and failure.stage == stage


def _verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    exc.verify_code, exc.verify_message = code, message
    return exc


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (10, "tls_expired"),
        (62, "tls_hostname_mismatch"),
        (64, "tls_hostname_mismatch"),
        (20, "tls_untrusted"),
        (19, "tls_untrusted"),
        (18, "tls_untrusted"),
        (50, "tls_failed"),
    ],
)
def test_verify_codes(code: int, cause: str) -> None:
    assert classify_exception("tls", _verify_error(code, "x")).cause == cause


def test_proxy_side_failures() -> None:
    assert (
        classify_exception("tcp", ConnectionRefusedError(), via_proxy=True).cause
        == "proxy_unreachable"
    )
    ok = parse_http_response(b"HTTP/1.1 200 Connection established\r\n\r\n")
    assert classify_proxy_status(ok) is None
    for raw, cause in (
        (
            b"HTTP/1.1 407 Proxy Authentication Required\r\n"
            b"Proxy-Authenticate: Basic realm=x\r\n\r\n",
            "proxy_auth_required",
        ),
        (b"HTTP/1.0 403 Access violation\r\n\r\n", "proxy_denied"),
        (b"HTTP/1.1 504 Gateway Timeout\r\n\r\n", "timeout"),
    ):
        failure = classify_proxy_status(parse_http_response(raw))
        assert failure is not None and failure.cause == cause
    assert classify_proxy_status(None) is not None


@pytest.mark.parametrize(
    ("raw", "cause"),
    [
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", None),
        (b"HTTP/1.1 401 Unauthorized\r\n\r\n", None),
        (b'HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n\r\n{"error":"x"}', None),
        (
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\n\r\n<h1>Blocked</h1>",
            "http_rejected",
        ),
        (b"HTTP/1.1 302 Found\r\nLocation: http://portal/login\r\n\r\n", "not_websocket"),
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>hi</html>", "not_websocket"),
        (b"HTTP/1.1 426 Upgrade Required\r\n\r\n", "http_rejected"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not_websocket"),
        (b"", "not_websocket"),
    ],
)
def test_upgrade_answers(raw: bytes, cause: str | None) -> None:
    failure, _ = classify_upgrade(parse_http_response(raw), raw)
    assert (failure.cause if failure else None) == cause


def test_sanitize_body_strips_markup_and_control_bytes() -> None:
    assert sanitize_body(b"<html>\n<b>Access</b>\x00\x07 denied\r\n</html>") == "Access denied"
    assert len(sanitize_body(b"a" * 10_000)) == 160


def test_issuer_heuristics() -> None:
    assert looks_public("CN=Amazon RSA 2048 M02,O=Amazon,C=US")
    assert looks_public("CN=R11,O=Let's Encrypt,C=US")
    assert looks_like_inspection("CN=Zscaler Intermediate Root CA,O=Zscaler Inc.")
    assert looks_like_inspection("CN=Contoso Corp Root CA,O=Contoso Corp SSL Inspection")
    assert not looks_like_inspection("O=Voice Agent Test CA")


def test_a_proxy_refusing_credentials_that_were_sent_says_so_with_the_user_only() -> None:
    """proxy.py answers a wrong password with 407, tinyproxy with 401: both mean the
    credentials in the URL were refused, not that none were given."""
    for raw in (
        b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n",
        b"HTTP/1.0 401 Unauthorized\r\n\r\n",
    ):
        failure = classify_proxy_status(parse_http_response(raw), "bob")
        assert failure is not None and failure.cause == "proxy_auth_required"
        assert "refused the credentials sent for user 'bob'" in failure.detail
        unsent = classify_proxy_status(parse_http_response(raw))
        assert unsent is not None and "wants credentials" in unsent.detail
