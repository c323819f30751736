"""SOCKS and unknown proxy schemes: a clean ConnectFailed from both the WebSocket open and
the token request, never the library's ImportError or ValueError."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from sandbox_wire import run, unanswering_listener

from doctor.net.agent_api import AgentApiError, AgentConnection, ConnectFailed, mint_token

KEY = "k" * 32
PASSWORD = "pr0xy-secret-pw"


def closed_port() -> int:
    with unanswering_listener() as port:
        pass  # closed again: nothing listens there now
    return port


async def both(proxy: str, target_port: int) -> list[AgentApiError]:
    """The error of the WebSocket open and of the token request through `proxy`."""
    errors: list[AgentApiError] = []
    try:
        await AgentConnection.open(
            f"wss://127.0.0.1:{target_port}/v1/ws", api_key=KEY, proxy=proxy, timeout=5
        )
    except AgentApiError as exc:
        errors.append(exc)
    try:
        await mint_token(f"https://127.0.0.1:{target_port}/v1/token", KEY, proxy=proxy, timeout=5)
    except AgentApiError as exc:
        errors.append(exc)
    return errors


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_socks_proxy_on_a_closed_port_is_a_clean_connect_failure(scheme: str) -> None:
    proxy = f"{scheme}://user:{PASSWORD}@127.0.0.1:{closed_port()}"
    errors = run(both(proxy, closed_port()))
    assert [type(e) for e in errors] == [ConnectFailed, ConnectFailed]
    assert [e.step for e in errors] == ["connect", "token"]
    assert [e.reason for e in errors] == ["proxy_unreachable", "proxy_unreachable"]
    for err in errors:
        assert PASSWORD not in str(err) and PASSWORD not in json.dumps(err.facts())


def test_unknown_proxy_scheme_is_proxy_unsupported() -> None:
    proxy = f"ftp://user:{PASSWORD}@127.0.0.1:{closed_port()}"
    errors = run(both(proxy, closed_port()))
    assert [(type(e), e.reason) for e in errors] == [(ConnectFailed, "proxy_unsupported")] * 2
    for err in errors:
        assert "ftp://127.0.0.1:" in str(err) and "ftp" in str(err)
        assert PASSWORD not in str(err) and PASSWORD not in json.dumps(err.facts())


def test_socks4_is_unreachable_for_the_websocket_and_unsupported_for_the_token() -> None:
    """websockets speaks SOCKS4, httpx only SOCKS5: each says so in its own terms."""
    errors = run(both(f"socks4://127.0.0.1:{closed_port()}", closed_port()))
    assert [e.reason for e in errors] == ["proxy_unreachable", "proxy_unsupported"]
    assert "socks4://127.0.0.1:" in str(errors[1])


# The optional SOCKS packages are installed here; a user's environment may lack them. A
# child process hides them (sys.modules[name] = None makes the import fail) before the
# client imports its libraries: that absence is the one thing simulated.
MISSING_SOCKS = textwrap.dedent(
    """
    import asyncio, json, sys
    sys.modules["python_socks"] = None
    sys.modules["socksio"] = None
    from doctor.net.agent_api import AgentApiError, AgentConnection, mint_token

    async def main():
        proxy, port = sys.argv[1], int(sys.argv[2])
        out = []
        try:
            await AgentConnection.open(
                f"wss://127.0.0.1:{port}/v1/ws", api_key="k" * 32, proxy=proxy, timeout=5
            )
        except AgentApiError as exc:
            out.append([type(exc).__name__, exc.reason, str(exc)])
        try:
            await mint_token(f"https://127.0.0.1:{port}/v1/token", "k" * 32, proxy=proxy, timeout=5)
        except AgentApiError as exc:
            out.append([type(exc).__name__, exc.reason, str(exc)])
        print(json.dumps(out))

    asyncio.run(main())
    """
)


def test_missing_socks_packages_simulated_in_a_child_give_proxy_unsupported() -> None:
    proxy = f"socks5://user:{PASSWORD}@127.0.0.1:{closed_port()}"
    done = subprocess.run(
        [sys.executable, "-c", MISSING_SOCKS, proxy, str(closed_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [(kind, reason) for kind, reason, _ in out] == [
        ("ConnectFailed", "proxy_unsupported")
    ] * 2
    for _, _, message in out:
        assert "python-socks" in message and "socks5://127.0.0.1:" in message
        assert PASSWORD not in message
    assert PASSWORD not in done.stderr
