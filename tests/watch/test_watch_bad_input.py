"""Bad input on both sides of the relay: each gets one clear line, the relay keeps serving
the other sessions, and nothing ends in a traceback. Real sockets throughout."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

from watchparts import App, chunked, one, pcm16, problems, raw_tcp, run, speech, start_watch
from websockets.exceptions import ConnectionClosed, InvalidStatus

from doctor.sandbox.threaded import ThreadedSandbox


def port_of(url: str) -> int:
    return int(urllib.parse.urlsplit(url).port or 0)


def test_a_bad_client_costs_only_itself(sandbox: ThreadedSandbox) -> None:
    wp = start_watch(sandbox, "--json")
    port = port_of(wp.url)

    async def good(started: asyncio.Event) -> App:
        a = await App.open(wp.url, api_key=sandbox.api_key)
        await a.start()
        started.set()
        await a.stream(chunked(pcm16(speech(0.8, 1.2)), 2400))
        await a.wait("reply.done")
        await a.end()
        return a

    async def bad() -> dict[str, object]:
        seen: dict[str, object] = {}
        # garbage instead of HTTP, and a request cut in the middle of the handshake
        seen["garbage"] = await raw_tcp(port, b"\x16\x03\x01\x00\xa5garbage\r\n\r\n")
        seen["cut"] = await raw_tcp(port, b"GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgr", read=False)
        # a path the service does not have
        seen["path"] = await raw_tcp(port, b"GET /v2/realtime HTTP/1.1\r\nHost: x\r\n\r\n")
        # non-JSON text, a binary frame, then a frame too big for the relay
        a = await App.open(wp.url, api_key=sandbox.api_key)
        await a.start()
        await a.send("this is not json")
        await a.ws.send(b"\x00\x01binary")
        await a.send({"type": "input_audio_buffer.append", "audio": ""})
        try:
            await a.ws.send("x" * (17 * 1024 * 1024))
            await asyncio.wait_for(a.closed.wait(), 20)
        except ConnectionClosed:
            pass
        seen["huge_close"] = a.ws.close_code
        return seen

    async def both() -> tuple[App, dict[str, object]]:
        started = asyncio.Event()
        g = asyncio.ensure_future(good(started))
        await started.wait()
        seen = await bad()
        return await g, seen

    good_app, seen = run(both())
    wp.wait_line(lambda line: "closed by" in line and "conn 1" in line)
    rc, out = wp.finish(sig=signal.SIGINT)
    report = json.loads(out)
    err = wp.stderr_text
    assert "Traceback" not in err and "Traceback" not in out
    # the well-behaved session went through whole
    assert any(m["type"] == "session.ended" for m in good_app.received)
    # one clear line each
    assert "failed during the handshake" in err
    assert "'/v2/realtime' is not a path of the service" in err
    assert b"404" in seen["path"]  # type: ignore[operator]
    assert "a text frame that is not JSON" in err
    assert "a binary frame" in err
    assert '"input_audio_buffer.append"' in err and "OpenAI Realtime" in err
    assert seen["huge_close"] == 1009
    unknown = one(report, "unknown_message")
    assert unknown["status"] == "warn"
    assert rc in (0, 1)


@contextlib.contextmanager
def unanswering_listener() -> Iterator[int]:
    """A port whose TCP handshake completes (listen backlog) but that never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _refused_status(url: str) -> int:
    """The HTTP status the app gets for its upgrade (101 when it is accepted)."""

    async def attempt() -> int:
        try:
            a = await App.open(url, api_key="some-key-1234")
        except InvalidStatus as exc:
            return int(exc.response.status_code)
        await a.ws.close()
        return 101

    return run(attempt())


def test_upstream_that_stalls_or_is_gone_gets_a_line_and_an_http_answer() -> None:
    with unanswering_listener() as stalled:
        wp = start_watch(None, "--json", ws_url=f"ws://127.0.0.1:{stalled}/v1/ws", timeout=1)
        assert _refused_status(wp.url) == 504
        wp.wait_line(lambda line: "did not answer within 1 s" in line)
        wp.finish(sig=signal.SIGINT)
    assert "Traceback" not in wp.stderr_text
    gone = closed_port()
    wp = start_watch(None, "--json", ws_url=f"ws://127.0.0.1:{gone}/v1/ws", timeout=2)
    assert _refused_status(wp.url) == 502
    wp.wait_line(lambda line: "cannot reach the service (refused)" in line)
    wp.finish(sig=signal.SIGINT)
    assert "Traceback" not in wp.stderr_text


def test_upstream_refusing_the_upgrade_is_passed_on(
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    sb = sandbox_factory(faults={"handshake-reject": None})
    wp = start_watch(sb, "--json")
    assert _refused_status(wp.url) == 401  # what the app would have got directly
    wp.wait_line(lambda line: "refused the upgrade with HTTP 401" in line)
    _, out = wp.finish(sig=signal.SIGINT)
    assert "Traceback" not in wp.stderr_text
    relay = next(c for c in json.loads(out)["checks"] if c["id"] == "watch-relay")
    assert relay["evidence"]["connections_refused_upstream"] == 1


def test_upstream_dropping_mid_session(sandbox_factory: Callable[..., ThreadedSandbox]) -> None:
    sb = sandbox_factory(faults={"drop-after-ready": 0.5})

    async def app() -> int | None:
        a = await App.open(start.url, api_key=sb.api_key)
        await a.start()
        with contextlib.suppress(ConnectionClosed):
            await a.stream(chunked(pcm16(speech(1.5, 0.5)), 2400))
        await a.closed.wait()
        return a.ws.close_code

    start = start_watch(sb, "--json", "--sessions", "1")
    code = run(app())
    assert code == 1006  # the app sees the drop as it would directly
    _, out = start.finish()
    report = json.loads(out)
    assert "Traceback" not in start.stderr_text
    assert "the service dropped the connection" in start.stderr_text
    assert any(c["cause"] == "abrupt_close" for c in problems(report))


def test_frames_are_forwarded_byte_for_byte() -> None:
    """An upstream that echoes every frame back as it came: what the app gets back is
    exactly what it sent, text (odd spacing, escapes, raw UTF-8) and binary alike."""
    from websockets.asyncio.server import serve

    sent: list[str | bytes] = [
        '{"type":"session.update",  "session":{"system_prompt":"caf\\u00e9 \u2603"}}',
        b"\x00\xffbinary\x80",
        "not json at all \u00e9",
        '{"type": "input.audio", "audio": "AAAA"}\n',
    ]

    async def go() -> tuple[list[str | bytes], list[str | bytes]]:
        seen: list[str | bytes] = []

        async def echo(ws):  # type: ignore[no-untyped-def]
            async for msg in ws:
                seen.append(msg)
                await ws.send(msg)

        async with serve(echo, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            loop = asyncio.get_running_loop()
            wp = await loop.run_in_executor(
                None, lambda: start_watch(None, "--json", ws_url=f"ws://127.0.0.1:{port}/v1/ws")
            )
            a = await App.open(wp.url, api_key="key-for-the-echo-server")
            got: list[str | bytes] = []
            for m in sent:
                await a.ws.send(m)
            a.reader.cancel()
            for _ in sent:
                got.append(await asyncio.wait_for(a.ws.recv(), 10))
            await a.ws.close()
            await loop.run_in_executor(None, lambda: wp.finish(sig=signal.SIGINT))
        assert "Traceback" not in wp.stderr_text
        return seen, got

    seen, got = run(go())
    assert seen == sent  # the upstream got exactly what the app sent
    assert got == sent  # and the app got exactly what the upstream sent
    assert [type(x) for x in got] == [type(x) for x in sent]


def _in_flight_bound(size: int) -> int:
    """What the path flood -> relay -> app may hold while the app reads nothing: two TCP
    hops, each a send and a receive buffer at the kernel's autotuning ceiling (tcp_wmem,
    tcp_rmem: 4 and 32 MB on our CI machines, so the old fixed bound of 60 frames of
    512 KiB failed once the buffers grew under load), plus the websockets read-ahead
    queues (the relay's MAX_QUEUE per side, the test app's default 16) and one frame in
    hand at each end."""
    from doctor.watch.relay import MAX_QUEUE

    def ceiling(name: str) -> int:
        return int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[2])

    kernel = 2 * (ceiling("tcp_rmem") + ceiling("tcp_wmem"))
    return kernel + (2 * MAX_QUEUE + 16 + 2) * size


def test_backpressure_reaches_the_sender_and_nothing_is_lost() -> None:
    """An app that stops reading: the relay stops reading the service, whose sends then
    wait (bounded buffers, not memory); when the app reads again every frame arrives, in
    order."""
    from websockets.asyncio.server import serve

    size = 512 * 1024
    bound = _in_flight_bound(size)
    frames = bound // size + 30  # more than every buffer on the way can hold

    async def go() -> tuple[int, list[int]]:
        progress: list[int] = []
        go_on = asyncio.Event()

        async def flood(ws):  # type: ignore[no-untyped-def]
            await ws.recv()  # the app's hello
            for i in range(frames):
                await ws.send(json.dumps({"type": "reply.audio", "n": i, "data": "A" * size}))
                progress.append(i)
            await go_on.wait()

        async with serve(flood, "127.0.0.1", 0, max_size=2**24) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            loop = asyncio.get_running_loop()
            wp = await loop.run_in_executor(
                None, lambda: start_watch(None, "--json", ws_url=f"ws://127.0.0.1:{port}/v1/ws")
            )
            a = await App.open(wp.url, api_key="key-for-the-flood")
            a.reader.cancel()  # the app stops reading
            await a.ws.send(json.dumps({"type": "session.update", "session": {}}))
            # the flood must stall: wait for progress to stop growing (bounded by a deadline)
            stalled_at = -1
            for _ in range(50):
                before = len(progress)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(go_on.wait(), 0.2)
                if len(progress) == before and before > 0:
                    stalled_at = before
                    break
            got = [json.loads(await asyncio.wait_for(a.ws.recv(), 20))["n"] for _ in range(frames)]
            go_on.set()
            await a.ws.close()
            await loop.run_in_executor(None, lambda: wp.finish(sig=signal.SIGINT))
        assert "Traceback" not in wp.stderr_text
        return stalled_at, got

    stalled_at, got = run(go())
    assert 0 < stalled_at * size <= bound  # the service was held back, not buffered for
    assert got == list(range(frames))  # and nothing was lost or reordered


def test_for_seconds_with_no_app_gives_a_report() -> None:
    wp = start_watch(None, "--json", "--for", "1", ws_url="ws://127.0.0.1:9/v1/ws")
    rc, out = wp.finish(timeout=60)
    report = json.loads(out)
    assert rc == 0
    assert "stopped (1 s elapsed)" in wp.stderr_text
    relay = next(c for c in report["checks"] if c["id"] == "watch-relay")
    assert relay["status"] == "warn" and relay["evidence"]["connections"] == 0
    assert relay["cause"] == "no_app_connected" and "no app connected" in relay["summary"]


def test_a_port_in_use_is_one_line_and_exit_2() -> None:
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "doctor",
                "watch",
                "--port",
                str(port),
                "--for",
                "1",
                "--ws-url",
                "ws://127.0.0.1:9/v1/ws",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
