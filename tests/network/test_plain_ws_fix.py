"""A ws:// service URL (no TLS) that cannot be reached gets a fix about a plain WebSocket:
no "TLS" to allow and `curl http://...`, where the fix text always said TLS and https."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from clirun import assert_valid_report, cli_env, run_cli

from doctor import guide
from doctor.context import Context
from doctor.net.sessions import fix_values


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_check_wss_on_a_plain_ws_url_gives_a_fix_without_tls(closed_port: int) -> None:
    url = f"ws://127.0.0.1:{closed_port}/v1/ws"
    proc = run_cli("check", "wss", "--ws-url", url, "--timeout", "5", "--json", env=cli_env())
    (wss,) = assert_valid_report(json.loads(proc.stdout))["checks"]
    assert wss["status"] == "fail" and wss["fix"]["guide"] == "firewall", wss
    steps, commands = " ".join(wss["fix"]["steps"]), wss["fix"]["commands"]
    assert f"outbound TCP {closed_port} (plain WebSocket upgrade, no TLS)" in steps
    assert "TLS," not in steps and "https" not in " ".join(commands)
    assert f"curl -sv http://127.0.0.1:{closed_port}/ -o /dev/null" in commands


@pytest.mark.parametrize(
    ("ws_url", "words", "curl"),
    [
        ("ws://10.0.0.5:8080/v1/ws", "(plain WebSocket upgrade, no TLS)", "http://10.0.0.5:8080/"),
        ("WS://10.0.0.5/v1/ws", "(plain WebSocket upgrade, no TLS)", "http://10.0.0.5:80/"),
        ("wss://10.0.0.5/v1/ws", "(TLS, WebSocket upgrade)", "https://10.0.0.5:443/"),
    ],
)
def test_the_session_fix_follows_the_service_urls_scheme(
    ws_url: str, words: str, curl: str
) -> None:
    ctx = Context.build(ws_url=ws_url, token_url="https://10.0.0.5/v1/token")
    fix = guide.fix("firewall", detail="connect: refused", **fix_values(ctx))
    assert words in " ".join(fix.steps)
    assert f"curl -sv {curl} -o /dev/null" in fix.commands
