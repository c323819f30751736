"""The relay reaches the service the way the checks do: through `--proxy` (a real tinyproxy
here), for the WebSocket and the token endpoint alike; and a proxy that refuses the
tunnel gets one line while the app gets an HTTP answer."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import netparts
from watchparts import App, mint, run, start_watch
from websockets.exceptions import InvalidStatus

from doctor.sandbox.threaded import ThreadedSandbox


def test_upstream_through_a_proxy(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    with netparts.tinyproxy(tmp_path, [sandbox.port]) as (port, log):
        wp = start_watch(
            sandbox, "--sessions", "1", "--json", "--proxy", f"http://127.0.0.1:{port}"
        )

        async def app() -> None:
            token = await mint(wp, sandbox.api_key)
            a = await App.open(wp.url, token=token)
            await a.start()
            await a.end()

        run(app())
        rc, out = wp.finish()
        proxied = log.read_text(encoding="utf-8", errors="replace")
    assert rc == 0, wp.stderr_text
    assert proxied.count(f"CONNECT 127.0.0.1:{sandbox.port}") >= 2  # the token and the socket
    assert json.loads(out)["target"]["proxy"] == f"http://127.0.0.1:{port}"


def test_a_proxy_refusing_the_tunnel(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    with netparts.tinyproxy(tmp_path, [1]) as (port, _):  # CONNECT allowed to port 1 only
        wp = start_watch(sandbox, "--json", "--proxy", f"http://127.0.0.1:{port}")

        async def app() -> int:
            try:
                a = await App.open(wp.url, api_key=sandbox.api_key)
            except InvalidStatus as exc:
                return int(exc.response.status_code)
            await a.ws.close()
            return 101

        status = run(app())
        wp.wait_line(lambda line: "the proxy refused the tunnel with HTTP 403" in line)
        wp.finish(sig=signal.SIGINT)
    assert status == 502
    assert "Traceback" not in wp.stderr_text
