"""The wss probe through a SOCKS proxy, staged like the HTTP CONNECT path (real sockets:
a SOCKS5 relay, a TLS WebSocket server, a listener that never answers)."""

from __future__ import annotations

from pathlib import Path

from netparts import ThreadServer, make_certs, silent, websocket_accept
from socksparts import socks5_refusing_auth, socks5_relay
from test_wss_real_parts import wss_check


def test_a_socks5_pass_names_its_stages_without_empty_brackets(tmp_path: Path) -> None:
    """It said "reached 127.0.0.1:PORT ():" (the one-shot connect had no stage timings)."""
    certs = make_certs(tmp_path)
    server = ThreadServer(websocket_accept, certs.server_context())
    relay = ThreadServer(socks5_relay)
    try:
        r = wss_check(
            f"wss://127.0.0.1:{server.port}/v1/ws",
            "--ca-bundle", str(certs.ca_file),
            "--proxy", f"socks5://127.0.0.1:{relay.port}",
        )  # fmt: skip
    finally:
        relay.close()
        server.close()
    assert r["status"] == "pass", r["summary"]
    assert "()" not in r["summary"]
    assert f"reached 127.0.0.1:{server.port} (" in r["summary"]
    assert "SOCKS" in r["summary"] and "TLS" in r["summary"] and "upgrade" in r["summary"]
    assert r["evidence"]["tcp_target"] == "proxy"


def test_a_socks_proxy_that_never_answers_is_named_at_the_socks_stage() -> None:
    """socks5:// to a port that is no SOCKS proxy: it blamed the service at the WebSocket
    upgrade stage."""
    blackhole = ThreadServer(silent)
    try:
        r = wss_check(
            "wss://127.0.0.1:9/v1/ws",
            "--proxy", f"socks5://127.0.0.1:{blackhole.port}",
            timeout="1",
        )  # fmt: skip
    finally:
        blackhole.close()
    assert (r["status"], r["cause"]) == ("fail", "timeout"), r["summary"]
    summary = r["summary"]
    assert f"127.0.0.1:{blackhole.port}" in summary and "SOCKS handshake" in summary
    assert "WebSocket upgrade" not in summary and "127.0.0.1:9 " not in summary
    assert r["evidence"]["stalled_stage"] == "SOCKS handshake"


def test_socks_credentials_sent_and_refused_get_the_credentials_fix() -> None:
    """A SOCKS proxy refusing the user/password in the URL: the fix said "if it asks for
    credentials, put them in the URL" (they were); only the user name is shown."""
    proxy = ThreadServer(socks5_refusing_auth)
    try:
        r = wss_check(
            "wss://127.0.0.1:9/v1/ws",
            "--proxy", f"socks5://alice:wr0ngpw@127.0.0.1:{proxy.port}",
        )  # fmt: skip
    finally:
        proxy.close()
    assert (r["status"], r["cause"]) == ("fail", "proxy_auth_required"), r["summary"]
    assert r["fix"]["guide"] == "proxy_credentials", r["fix"]
    assert r["evidence"]["proxy_user"] == "alice"
    assert "wr0ngpw" not in str(r)


def test_a_socks_user_without_a_password_sends_nothing_so_nothing_was_refused() -> None:
    """python-socks offers a login only with both a user and a password: `alice@` sent none,
    and the fix must ask for them, not say they were refused."""
    proxy = ThreadServer(socks5_refusing_auth)
    try:
        r = wss_check(
            "wss://127.0.0.1:9/v1/ws", "--proxy", f"socks5://alice@127.0.0.1:{proxy.port}"
        )
    finally:
        proxy.close()
    assert (r["status"], r["cause"]) == ("fail", "proxy_auth_required"), r["summary"]
    assert r["fix"]["guide"] != "proxy_credentials" and "proxy_user" not in r["evidence"]
