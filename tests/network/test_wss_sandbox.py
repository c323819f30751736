"""`agent-doctor check wss` (the real CLI) against the sandbox: a WebSocket endpoint that
refuses an unauthenticated upgrade is still reachable, whichever way it refuses."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from clirun import assert_valid_report, cli_env, run_cli

from doctor.sandbox.threaded import ThreadedSandbox

Factory = Callable[..., ThreadedSandbox]


def wss_report(sb: ThreadedSandbox, *extra: str) -> tuple[dict[str, Any], str]:
    assert sb.ca_file
    proc = run_cli(
        "check",
        "wss",
        "--ws-url",
        sb.ws_url,
        "--token-url",
        sb.token_url,
        "--ca-bundle",
        sb.ca_file,
        "--timeout",
        "5",
        "--json",
        *extra,
        env=cli_env(),
    )
    assert proc.returncode == 0, proc.stderr
    report = assert_valid_report(json.loads(proc.stdout))
    assert [c["id"] for c in report["checks"]] == ["wss"]
    return report, proc.stdout + proc.stderr


def assert_reached(result: dict[str, Any], sb: ThreadedSandbox, http_status: int) -> None:
    assert result["status"] == "pass" and result["cause"] is None
    ev = result["evidence"]
    assert ev["url"] == sb.ws_url and ev["port"] == sb.port
    assert ev["http_status"] == http_status
    assert ev["ws_upgrade_ms"] >= 0 and ev["tls_handshake_ms"] >= 0
    assert "agent-doctor sandbox" in ev["tls_issuer"]
    assert ev["other_region"]["reachable"] is None  # URL overridden: EU not probed
    upgrades = sb.find("http.request", path="/v1/ws", upgrade="websocket")
    assert upgrades  # the probe's upgrade really reached the sandbox


@pytest.mark.parametrize(("mode", "status"), [("close", 101), ("http", 401)])
def test_wss_passes_against_the_sandbox(sandbox_factory: Factory, mode: str, status: int) -> None:
    """`close`: 101 then UNAUTHORIZED + 1008; `http`: 401 before the upgrade. Both reachable."""
    sb = sandbox_factory(trust=False, auth_failure=mode)
    report, _ = wss_report(sb)
    assert_reached(report["checks"][0], sb, status)
    assert report["target"]["ws_url"] == sb.ws_url
    assert report["target"]["token_url"] == sb.token_url
    assert report["summary"]["pass"] == 1
    if mode == "close":
        assert sb.wait_for("session.error", code="UNAUTHORIZED")
    else:
        assert sb.find("http.response", status=401)


def test_wss_passes_with_a_key_and_never_shows_it(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(trust=False)
    report, output = wss_report(sb, "--api-key", sb.api_key)
    assert_reached(report["checks"][0], sb, 101)
    assert report["target"]["auth"] == "api_key"
    assert sb.api_key not in output


def test_wss_passes_with_the_handshake_reject_fault(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(trust=False, faults={"handshake-reject": None})
    report, _ = wss_report(sb, "--api-key", sb.api_key)
    result = report["checks"][0]
    assert_reached(result, sb, 401)
    assert "401" in result["summary"]
    assert sb.find("http.response", status=401)
