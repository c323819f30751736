"""`watch` relaying to a ws:// upstream it cannot reach: the finding's fix names that
upstream's host and port and a plain WebSocket (no TLS, `curl http://`), where it named
agents.assemblyai.com:443, TLS and https whatever --ws-url said."""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Iterator

import pytest
from clirun import assert_valid_report
from test_watch_bad_input import _refused_status
from watchparts import start_watch


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound, never listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_an_unreachable_plain_ws_upstream_gets_a_fix_for_that_upstream(closed_port: int) -> None:
    wp = start_watch(None, "--json", ws_url=f"ws://127.0.0.1:{closed_port}/v1/ws", timeout=2)
    assert _refused_status(wp.url) == 502
    wp.wait_line(lambda line: "cannot reach the service (refused)" in line)
    _, out = wp.finish(sig=signal.SIGINT)
    report = assert_valid_report(json.loads(out))
    fixes = [c["fix"] for c in report["checks"] if (c.get("fix") or {}).get("guide") == "firewall"]
    assert fixes, [(c["id"], c["cause"]) for c in report["checks"]]
    steps, commands = " ".join(fixes[0]["steps"]), " ".join(fixes[0]["commands"])
    assert f"outbound TCP {closed_port} (plain WebSocket upgrade, no TLS) to 127.0.0.1" in steps
    assert f"curl -sv http://127.0.0.1:{closed_port}/" in commands
    assert "agents.assemblyai.com:" not in commands and "https" not in commands
