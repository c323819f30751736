"""The loopback page server and the CLI's wait, without a browser."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
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
    port = int(cli.url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10):  # idle, to the end
        report, stderr, rc = cli.finish(60)
    assert "Traceback" not in stderr and "Exception in callback" not in stderr, stderr
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


@pytest.mark.parametrize(
    "args",
    [
        ["browser", "--timeout", "0"],
        ["browser", "--browser-timeout", "5"],
        ["browser", "--browser", '"unclosed', "--timeout", "3", "--json"],
        ["browser", "--browser", "  "],
        ["all", "--browser", "--browser-cmd", "firefox 'unclosed"],
    ],
)
def test_bad_browser_options_are_one_line_usage_errors(args: list[str]) -> None:
    from clirun import run_cli

    r = run_cli(*args[:1], "--no-open", *args[1:])
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == ""


def test_all_with_browser_adds_the_page_after_the_python_checks(
    plain_sandbox: Callable[..., Any],
) -> None:
    from clirun import run_cli

    sb = plain_sandbox()
    env = cli_env({"ASSEMBLYAI_API_KEY": SECRET, "PULSE_SERVER": "unix:/nonexistent"})
    skip = [a for cid in ("microphone", "sample-rate", "echo", "resume", "token")
            for a in ("--skip", cid)]  # fmt: skip
    r = run_cli("all", "--browser", "--no-open", "--browser-timeout", "2", "--json",
                "--ws-url", sb.ws_url, "--token-url", sb.token_url, *skip, env=env)  # fmt: skip
    report = assert_valid_report(json.loads(r.stdout))
    ids = [c["id"] for c in report["checks"]]
    assert ids[-1] == "browser-page" and "wss" in ids and ids.index("wss") < len(ids) - 1
    assert report["command"] == "all" and r.returncode == 1
    assert "no browser opened the page (--no-open" in report["checks"][-1]["summary"]
    assert "open http://127.0.0.1:" in r.stderr and SECRET not in r.stdout + r.stderr


def test_the_page_gets_a_minted_token_never_the_key(plain_sandbox: Callable[..., Any]) -> None:
    from doctor.browser.command import PageRun
    from doctor.context import Context, Credential

    sb = plain_sandbox()
    ctx = Context.build(ws_url=sb.ws_url, token_url=sb.token_url,
                        api_key=Credential("api_key", sb.api_key, "test"))  # fmt: skip
    answer = asyncio.run(PageRun(ctx).session())
    assert answer["token"] and answer["token"] != sb.api_key
    assert sb.api_key not in json.dumps(answer)
    assert ctx.redactor.scrub(answer["token"]) != answer["token"]  # registered as a secret


def test_browser_cmd_gets_the_url_with_its_nonce(tmp_path: Any) -> None:
    from clirun import run_cli

    seen = tmp_path / "url.txt"
    opener = tmp_path / "opener.py"
    opener.write_text(  # written whole, then renamed: the test never reads half a URL
        f"import os, sys; open({str(seen)!r} + '.part', 'w').write(sys.argv[1]); "
        f"os.replace({str(seen)!r} + '.part', {str(seen)!r})\n"
    )
    r = run_cli("browser", "--browser", f"{sys.executable} {opener}", "--timeout", "3",
                "--json", env=cli_env({"PULSE_SERVER": "unix:/nonexistent"}))  # fmt: skip
    assert r.returncode == 1
    # the opener is started, not waited for (as a browser is): on a loaded machine its
    # Python may still be starting when the CLI's 3 s are over
    deadline = time.monotonic() + 60
    while not seen.exists():
        assert time.monotonic() < deadline, "the opener never wrote the URL"
        time.sleep(0.05)  # another process's file: no event to wait on
    url = seen.read_text()
    assert url.startswith("http://127.0.0.1:") and "#nonce=" in url
    assert url in r.stderr  # printed too, for a browser that did not open
    page = json.loads(r.stdout)["checks"][-1]
    assert (page["id"], page["cause"]) == ("browser-page", "no_page_results")
    assert page["evidence"]["page_loaded"] is False


def test_a_launcher_that_exits_0_hands_the_page_on_and_the_wait_goes_on() -> None:
    """xdg-open exits 0 once another program has the address: not a failure. `true` has
    exited long before the 15 s are over, so the timeout's summary names it."""
    page, _ = _browser_report("true", "15")
    assert (page["cause"], page["evidence"]["page_loaded"]) == ("no_page_results", False)
    assert "'true' exited 0 but no browser fetched the page" in page["summary"]


def test_a_browser_killed_after_it_opened_the_page_ends_the_wait(tmp_path: Any) -> None:
    """A browser that crashes (killed by a signal) once it has the page: the wait ended only
    at --timeout (300 s by default), with "Start was never clicked"."""
    opener = tmp_path / "crashing.py"
    opener.write_text(
        "import os, signal, sys, urllib.request\n"
        "urllib.request.urlopen(sys.argv[1], timeout=30).read()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    page, stderr = _browser_report(f"{sys.executable} {opener}", "300")
    assert (page["cause"], page["evidence"]["exit_code"]) == ("browser_exited", -9), page
    assert "killed by signal 9 after it opened the page" in page["summary"]
    assert "after it opened the page" in stderr
    assert "Start was never clicked" not in page["summary"]


def _browser_report(browser_cmd: str, timeout: str, extra_env: dict[str, str] | None = None) -> Any:
    from clirun import run_cli

    env = cli_env({"PULSE_SERVER": "unix:/nonexistent", **(extra_env or {})})
    # a hang guard, not a timing: the old code waited out --timeout (300 s) here
    r = run_cli("browser", "--browser", browser_cmd, "--timeout", timeout, "--json", env=env,
                timeout=120)  # fmt: skip
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    report = assert_valid_report(json.loads(r.stdout))
    return {c["id"]: c for c in report["checks"]}["browser-page"], r.stderr


@pytest.mark.parametrize(
    ("command", "cause", "exit_code", "said"),
    [
        ("no-such-browser-0815", "browser_not_started", None, "No such file or directory"),
        (
            f"{sys.executable} -c \"import sys; sys.exit('no DISPLAY here')\"",
            "browser_exited",
            1,
            "no DISPLAY here",
        ),
        ("false", "browser_exited", 1, None),
    ],
)
def test_a_browser_command_that_fails_ends_the_wait_at_once_naming_it(
    command: str, cause: str, exit_code: int | None, said: str | None
) -> None:
    page, stderr = _browser_report(command, "300")
    assert (page["status"], page["cause"]) == ("fail", cause)
    assert page["evidence"]["command"] == command
    assert page["evidence"]["exit_code"] == exit_code
    if said:
        assert said in page["summary"] and said in stderr
    assert page["fix"]["guide"] == "browser_start"
    assert any("--no-open" in step for step in page["fix"]["steps"])
    assert "Start was never clicked" not in page["summary"]


def test_a_launcher_that_fetched_the_page_and_then_failed_is_waited_out(tmp_path: Any) -> None:
    """The page was fetched, so a browser has it: the launcher's exit code is not a verdict."""
    opener = tmp_path / "opener.py"
    opener.write_text(
        "import sys, urllib.request\n"
        "urllib.request.urlopen(sys.argv[1], timeout=30).read()\n"
        "sys.exit(4)\n"
    )
    page, _ = _browser_report(f"{sys.executable} {opener}", "20")
    assert (page["cause"], page["evidence"]["page_loaded"]) == ("no_page_results", True)
    assert "Start was never clicked" in page["summary"]


def test_no_default_browser_is_said_and_the_address_can_still_be_opened_by_hand() -> None:
    from clirun import run_cli

    env = cli_env({"PULSE_SERVER": "unix:/nonexistent", "BROWSER": "no-such-browser-0815"})
    for var in ("DISPLAY", "WAYLAND_DISPLAY"):  # with one, webbrowser falls back to xdg-open
        env.pop(var, None)
    r = run_cli("browser", "--timeout", "10", "--json", env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "could not start a default browser; open the address above by hand" in r.stderr
    page = json.loads(r.stdout)["checks"][-1]
    assert page["cause"] == "no_page_results"
    assert "no default browser could be started" in page["summary"]


def _judge_facts(facts: dict[str, Any]) -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
    from doctor.browser.command import PageRun
    from doctor.context import Context

    async def main() -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
        run = PageRun(Context.build())
        run.outcome = asyncio.get_running_loop().create_future()
        answer = await run.result(facts)
        results, env = run.outcome.result()
        return answer, results, env

    return asyncio.run(main())


def test_what_the_user_typed_goes_into_the_report() -> None:
    _, _, env = _judge_facts({"ua": "Mozilla/5.0 Firefox/153.0", "description": " mic cuts out "})
    assert env["problem_description"] == "mic cuts out"
    assert (env["engine"], env["version"]) == ("Gecko", "153.0")


@pytest.mark.parametrize(
    "junk",
    [
        {},
        {"env": "x", "gum": 5, "contexts": "abc", "measure": [], "wss": {"events": "no"}},
        {"echo": [1, {"label": 3, "recorded_pcm16_b64": "!!", "recorded_rate_hz": 24000}]},
        {"echo": [{"recorded_pcm16_b64": "AAAA", "recorded_rate_hz": 1e12}], "ua": 7},
        {"wss": {"events": [{"type": "open", "t_ms": "x"}, {"type": "close", "t_ms": 5}]}},
    ],
)
def test_malformed_page_facts_give_results_never_a_crash(junk: dict[str, Any]) -> None:
    from doctor.result import Status

    answer, results, _ = _judge_facts(junk)
    assert results and all(isinstance(r.status, Status) for r in results)
    assert len(answer["checks"]) == len(results)


@pytest.mark.parametrize(
    ("key", "sandbox_args", "cause", "guide_id"),
    [
        ("sk-wrong-key-abcdef123456", (), "unauthorized", "token_auth"),
        (None, ("--fault", "token-rate-limited=30"), "rate_limited", "rate_limit"),
    ],
)
def test_a_key_the_token_endpoint_refuses_fails_the_websocket_never_skips(
    plain_sandbox: Callable[..., Any],
    key: str | None,
    sandbox_args: tuple[str, ...],
    cause: str,
    guide_id: str,
) -> None:
    """The sandbox's real token endpoint answers; the page's facts are what it posts
    when it got no token (no browser needed: the verdict is the CLI's)."""
    from doctor.browser.command import PageRun
    from doctor.context import Context, Credential
    from doctor.result import Status

    sb = plain_sandbox(*sandbox_args)
    wire = key or sb.api_key
    ctx = Context.build(ws_url=sb.ws_url, token_url=sb.token_url,
                        api_key=Credential("api_key", wire, "test"))  # fmt: skip

    async def main() -> tuple[dict[str, Any], list[Any]]:
        run = PageRun(ctx)
        run.outcome = asyncio.get_running_loop().create_future()
        answer = await run.session()
        assert answer["token"] is None and answer["token_error"]
        await run.result({"session": {"has_token": False, "token_error": answer["token_error"]}})
        return answer, run.outcome.result()[0]

    answer, results = asyncio.run(main())
    wss = next(r for r in results if r.id == "browser-wss")
    assert (wss.status, wss.cause) == (Status.FAIL, cause)
    assert wss.fix is not None and wss.fix.guide == guide_id
    assert wire not in json.dumps(wss.to_dict()) + json.dumps(answer)


def test_judging_that_raises_is_an_error_result_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The judge is replaced by one that raises (mocked: no real input makes it raise now)."""
    import doctor.browser.verdicts as verdicts
    from doctor.result import Status

    def boom(*args: Any) -> Any:
        raise TypeError("'<' not supported between instances of 'str' and 'float'")

    monkeypatch.setattr(verdicts, "judge", boom)
    answer, results, env = _judge_facts({"ua": "Mozilla/5.0 Firefox/153.0"})
    assert env is None and len(results) == 1
    r = results[0]
    assert (r.id, r.status, r.cause) == ("browser-page", Status.ERROR, "exception")
    assert "TypeError" in r.summary and answer["checks"][0]["status"] == "error"


def test_closed_before_open_with_a_ca_bundle_names_the_browsers_trust_of_that_ca(
    sandbox_process_factory: Callable[..., Any],
) -> None:
    """TLS sandbox, its CA given with --ca-bundle: the CLI's handshake works, so a 1006 in
    the browser means the browser does not trust that CA (the page's facts are what
    Chromium posts for a TLS failure; no browser needed for the verdict)."""
    from doctor.browser.command import PageRun
    from doctor.context import Context, Credential
    from doctor.result import Status

    sb = sandbox_process_factory()
    assert sb.ws_url.startswith("wss://") and sb.ca_file
    ctx = Context.build(ws_url=sb.ws_url, token_url=sb.token_url, ca_bundle=sb.ca_file,
                        api_key=Credential("api_key", sb.api_key, "test"))  # fmt: skip

    async def main() -> list[Any]:
        run = PageRun(ctx)
        run.outcome = asyncio.get_running_loop().create_future()
        answer = await run.session()
        assert answer["token"]
        closed = [
            {"t_ms": 5, "type": "error"},
            {"t_ms": 6, "type": "close", "code": 1006, "reason": "", "was_clean": False},
        ]
        await run.result({"session": {"has_token": True}, "wss": {"events": closed}})
        return run.outcome.result()[0]

    wss = next(r for r in asyncio.run(main()) if r.id == "browser-wss")
    assert (wss.status, wss.cause) == (Status.FAIL, "tls_untrusted")
    assert "does not trust the CA given with --ca-bundle" in wss.summary
    assert wss.fix is not None and wss.fix.guide == "browser_ca"
    assert any("CA certificate" in step for step in wss.fix.steps)
    assert sb.ca_file in wss.summary
    assert "proxy" not in wss.summary


def test_stop_ends_idle_connections_so_no_handler_is_left_to_the_loops_teardown() -> None:
    """An idle TCP connection (a browser's spare one) was left in `_read_request`, and the
    loop's teardown cancelled it: asyncio then printed a CancelledError traceback."""
    reported: list[dict[str, Any]] = []

    async def session() -> dict[str, Any]:
        return {}

    async def result(facts: dict[str, Any]) -> dict[str, Any]:
        return {"checks": []}

    async def main() -> set[asyncio.Task[Any]]:
        asyncio.get_running_loop().set_exception_handler(lambda _, c: reported.append(c))
        server = await PageServer(session, lambda rate: b"", result).start()
        _, idle = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
                assert (await client.get("/")).status_code == 200  # the idle one is accepted
            others = {t for t in asyncio.all_tasks() if t.get_coro().__name__ == "_handle"}
            assert others, "the idle connection has no handler: the test proves nothing"
            await server.stop()
            for _ in range(5):  # let done-callbacks run, as the loop's teardown would
                await asyncio.sleep(0)
            return {t for t in others if not t.done() or t.cancelled()}
        finally:
            idle.close()

    left = asyncio.run(main())
    assert left == set()
    assert reported == []


def test_a_browser_killed_by_a_signal_is_named_so() -> None:
    from doctor.browser.launch import LaunchFailure

    detail = LaunchFailure("chromium", exit_code=-9, stderr_tail=["a", "b"]).detail
    assert "'chromium' was killed by signal 9" in detail and detail.endswith("it said: a | b")
