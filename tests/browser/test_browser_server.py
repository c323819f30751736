"""The loopback page server and the CLI's wait, without a browser."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from clirun import assert_valid_report, cli_env
from pagerun import start_cli

from doctor.browser.echo import probe_bytes
from doctor.browser.server import PageServer, page_files

SECRET = "sk-test-browser-key-0123456789abcdef"


def _serve(test: Callable[[PageServer, httpx.AsyncClient], Any]) -> Any:
    posted: list[dict[str, Any]] = []

    async def session() -> dict[str, Any]:
        return {"ws_url": "ws://x", "token": "tok", "token_error": None}

    async def result(facts: dict[str, Any]) -> dict[str, Any]:
        posted.append(facts)
        return {"checks": []}

    async def main() -> Any:
        server = await PageServer(session, lambda rate: b"\0" * 4 * rate, result).start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
                return await test(server, client), posted
        finally:
            await server.stop()

    return asyncio.run(main())


def test_page_assets_ship_in_the_package_and_load_nothing_from_elsewhere() -> None:
    files = page_files()
    assert {"index.html", "main.js", "audio.js", "worklet.js", "wss.js"} <= set(files)
    for name, body in files.items():
        text = body.decode()
        assert "https://" not in text.replace("https://www.assemblyai.com", ""), name
        assert "import(" not in text, name


def test_the_page_is_served_and_every_other_call_needs_the_nonce() -> None:
    async def t(server: PageServer, client: httpx.AsyncClient) -> None:
        page = await client.get("/")
        assert page.status_code == 200 and "Start the checks" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "default-src 'self'" in page.headers["content-security-policy"]
        js = await client.get("/static/main.js")
        assert js.headers["content-type"].startswith("text/javascript")
        assert (await client.get("/static/../server.py")).status_code == 404
        assert (await client.post("/session")).status_code == 403
        assert (
            await client.post("/session", headers={"X-Doctor-Nonce": "wrong"})
        ).status_code == 403
        ok = await client.post("/session", headers={"X-Doctor-Nonce": server.nonce})
        assert ok.json()["token"] == "tok"
        probe = await client.post("/probe?rate=24000", headers={"X-Doctor-Nonce": server.nonce})
        assert len(probe.content) == 4 * 24000
        bad = await client.post("/probe?rate=1", headers={"X-Doctor-Nonce": server.nonce})
        assert bad.status_code == 400
        res = await client.post("/result", content=b"[1]", headers={"X-Doctor-Nonce": server.nonce})
        assert res.status_code == 400
        res = await client.post(
            "/result", json={"ua": "x"}, headers={"X-Doctor-Nonce": server.nonce}
        )
        assert res.json() == {"checks": []}

    _, posted = _serve(t)
    assert posted == [{"ua": "x"}]


def test_the_probe_is_the_echo_cores_probe_at_the_contexts_rate() -> None:
    import numpy as np

    from doctor.audio.echo.probe import make_probe

    got = np.frombuffer(probe_bytes(44100), dtype="<f4")
    want = make_probe(44100).samples
    assert len(got) == len(want) and np.allclose(got, want, atol=1e-6)


def test_a_page_that_never_posts_ends_at_timeout_with_the_clis_own_checks(
    plain_sandbox: Callable[..., Any],
) -> None:
    sb = plain_sandbox()
    env = cli_env({"ASSEMBLYAI_API_KEY": SECRET})
    t0 = time.monotonic()
    cli = start_cli(["--ws-url", sb.ws_url, "--token-url", sb.token_url, "--timeout", "2"], env)
    report, stderr, rc = cli.finish(60)
    assert rc == 1
    assert_valid_report(report)
    by = {c["id"]: c for c in report["checks"]}
    assert by["wss"]["status"] == "pass"  # what the CLI found on its own
    assert (by["browser-page"]["status"], by["browser-page"]["cause"]) == (
        "fail",
        "no_page_results",
    )
    assert "the page sent no results within 2 s" in stderr
    assert "browser" not in report["environment"]
    assert time.monotonic() - t0 < 30
    assert SECRET not in json.dumps(report) + stderr


@pytest.mark.parametrize("args", [["--timeout", "0"], ["--browser-timeout", "5"]])
def test_bad_browser_options_are_one_line_usage_errors(args: list[str]) -> None:
    from clirun import run_cli

    r = run_cli("browser", "--no-open", *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
