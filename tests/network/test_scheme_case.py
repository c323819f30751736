"""URL schemes are case-insensitive: `WSS://HOST/v1/ws` gets the same TLS handling as
`wss://` (the --ca-bundle's CAs are trusted), where a `startswith("wss:")` dropped them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from doctor.net.agent_api import AgentConnection, tls_url, ws_ssl_kwargs
from doctor.sandbox.threaded import ThreadedSandbox

Factory = Callable[..., ThreadedSandbox]


@pytest.mark.parametrize(
    ("url", "tls"),
    [
        ("wss://h/v1/ws", True),
        ("WSS://h/v1/ws", True),
        ("Wss://h/v1/ws", True),
        ("HTTPS://h/v1/token", True),
        (" wss://h/v1/ws", True),
        ("ws://h/v1/ws", False),
        ("WS://h/v1/ws", False),
        ("http://h/v1/token", False),
        ("wss://[::1/v1/ws", False),  # not a URL urllib can split: no TLS claimed for it
    ],
)
def test_the_scheme_is_read_case_insensitively(url: str, tls: bool) -> None:
    assert tls_url(url) is tls


def test_a_ca_bundle_applies_to_tls_urls_only(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(trust=False)
    assert sb.ca_file
    assert set(ws_ssl_kwargs("WSS://h/v1/ws", sb.ca_file)) == {"ssl"}
    assert ws_ssl_kwargs("WS://h/v1/ws", sb.ca_file) == {}
    assert ws_ssl_kwargs("WSS://h/v1/ws", None) == {}


def test_an_upper_case_wss_url_trusts_the_ca_bundle(sandbox_factory: Factory) -> None:
    """The sandbox's CA is only in --ca-bundle (not SSL_CERT_FILE): the open must use it."""
    sb = sandbox_factory(trust=False)
    assert sb.ca_file and sb.ws_url.startswith("wss://")
    url = "WSS://" + sb.ws_url[len("wss://") :]

    async def go() -> bool:
        conn = await AgentConnection.open(url, api_key=sb.api_key, ca_bundle=sb.ca_file)
        try:
            return conn.ws is not None
        finally:
            await conn.aclose()

    assert asyncio.run(asyncio.wait_for(go(), 30))
