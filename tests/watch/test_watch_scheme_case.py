"""`watch --ws-url WSS://...` (an upper-case scheme is the same URL) relays over TLS with
--ca-bundle's CAs, as `wss://` does: the relay once opened it with the default trust only."""

from __future__ import annotations

import json
from collections.abc import Callable

from clirun import assert_valid_report
from watchparts import App, run, start_watch

from doctor.sandbox.threaded import ThreadedSandbox

Factory = Callable[..., ThreadedSandbox]


def test_an_upper_case_wss_upstream_trusts_the_ca_bundle(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(trust=False)  # its CA only in --ca-bundle, not SSL_CERT_FILE
    assert sb.ca_file and sb.ws_url.startswith("wss://")
    upper = "WSS://" + sb.ws_url[len("wss://") :]
    wp = start_watch(sb, "--sessions", "1", "--json", "--ca-bundle", sb.ca_file, ws_url=upper)

    async def app() -> str:
        a = await App.open(wp.url, api_key=sb.api_key)
        ready = await a.start()
        await a.end()
        return str(ready.get("session_id"))

    session_id = run(app(), timeout=60)
    rc, out = wp.finish()
    report = assert_valid_report(json.loads(out))
    assert session_id and session_id != "None", wp.stderr_text
    assert rc == 0, [(c["id"], c["summary"]) for c in report["checks"]]
