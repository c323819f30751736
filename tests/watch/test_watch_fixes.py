"""Regression tests for the defects of the issue-16 review (r16), on the relay in-process
with real sockets (no subprocess: the bugs live in the relay and the worker)."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from watchparts import App, raw_tcp, start_watch
from websockets.exceptions import InvalidStatus

from doctor.capture.format import ConnEvent, Frame, Header
from doctor.report.build import verdict
from doctor.result import Status
from doctor.sandbox.threaded import ThreadedSandbox
from doctor.watch.feed import KIND_CLOSE, KIND_OPEN, Item
from doctor.watch.observe import RelayObserver
from doctor.watch.relay import Relay, Upstream
from doctor.watch.report import _unjudged
from doctor.watch.results import relay_result, watch_results
from doctor.watch.worker import Worker

T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 60) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


async def with_relay(
    upstream: Upstream, body: Callable[[Relay, list[str]], Awaitable[T]], **kw: Any
) -> tuple[T, list[str]]:
    lines: list[str] = []
    relay = Relay(upstream, on_line=lines.append, **kw)
    await relay.start()
    try:
        result = await body(relay, lines)
    finally:
        await relay.stop()
    return result, lines


async def until(predicate: Callable[[], bool], timeout: float = 15) -> None:
    """Waits for a condition that a real socket event makes true (polls the loop)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "condition never became true"
        await asyncio.sleep(0.02)


def test_r16_1_a_bad_header_value_never_prints_the_key() -> None:
    secret = "testkey-SECRET123456"
    request = (
        "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {secret}\r\r\n\r\n"
    ).encode()

    async def body(relay: Relay, lines: list[str]) -> None:
        await raw_tcp(relay.port, request)
        await until(lambda: any("handshake" in line for line in lines))

    _, lines = run(with_relay(Upstream("ws://127.0.0.1:9/v1/ws", "http://127.0.0.1:9/"), body))
    text = "\n".join(lines)
    assert "failed during the handshake" in text
    assert secret not in text and "Bearer" not in text


def _upgrade(api_key: str) -> bytes:
    return (
        "GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {api_key}\r\n\r\n"
    ).encode()


def test_r16_2_an_app_gone_mid_handshake_closes_its_upstream_session(
    sandbox: ThreadedSandbox,
) -> None:
    async def body(relay: Relay, lines: list[str]) -> int:
        for _ in range(3):  # a whole upgrade request, then the app goes away before the 101
            await raw_tcp(relay.port, _upgrade(sandbox.api_key), read=False)
        # the service sees each of its three sessions closed while the relay still runs
        await asyncio.to_thread(
            sandbox.wait_for, lambda _e: len(sandbox.find("ws.closed")) >= 3, 20
        )
        return relay.stats.connections

    connections, lines = run(with_relay(Upstream(sandbox.ws_url, sandbox.token_url), body))
    assert len(sandbox.find("ws.open")) == 3
    assert sum("went away before the upgrade completed" in line for line in lines) == 3
    assert connections == 0  # none was relayed


def test_r16_6_a_lagging_analysis_skips_audio_but_never_a_control_record() -> None:
    sent: list[dict[str, Any]] = []
    w = Worker(Header(1e9, 100.0, "keep", "ws://x/v1/ws"), None, sent.append, echo=False)
    gate = threading.Event()
    real = w.observer.feed
    seen: list[str] = []

    def slow(record: Any, raw: Any = None) -> Any:
        gate.wait(10)  # the analysis is stuck until every record has been handed over
        seen.append(str((record.msg or {}).get("type")) if isinstance(record, Frame) else "ev")
        return real(record, raw)

    w.observer.feed = slow  # type: ignore[method-assign]
    w.audio_limit_bytes = 5 * 3300

    def text(t: float, direction: str, msg: dict[str, Any]) -> Item:
        return Item(b"T", direction, t, 1e9, 1, data=json.dumps(msg))

    audio = {"type": "input.audio", "audio": base64.b64encode(b"\0\0" * 1200).decode()}
    items = [Item(KIND_OPEN, "", 100.0, 1e9, 1, details={"auth": "header"})]
    items.append(text(100.01, "app", {"type": "session.update", "session": {}}))
    items.append(text(100.05, "service", {"type": "session.ready", "session_id": "s"}))
    items += [text(100.1 + i * 0.05, "app", audio) for i in range(40)]
    items.append(text(102.5, "app", {"type": "session.end"}))
    items.append(Item(KIND_CLOSE, "", 102.6, 1e9, 1, details={"by": "app", "code": 1000}))
    for item in items:
        w.handle(item)
    gate.set()
    result = w.finish()
    assert result["stats"]["analysis_dropped_frames"] > 0  # audio was skipped...
    assert seen.count("ev") == 2 and "session.end" in seen and "session.update" in seen
    assert "no_session_end" not in {f["cause"] for f in result["findings"]}


def test_r16_3_9_a_refused_upgrade_is_its_own_finding_and_counts_as_a_session(
    sandbox_factory: Callable[..., ThreadedSandbox],
) -> None:
    sb = sandbox_factory(faults={"handshake-reject": None})
    wp = start_watch(sb, "--json", "--sessions", "1")

    async def attempt() -> int:
        try:
            a = await App.open(wp.url, api_key="some-key-1234")
        except InvalidStatus as exc:
            return int(exc.response.status_code)
        await a.ws.close()
        return 101

    assert run(attempt()) == 401
    rc, out = wp.finish(timeout=60)  # --sessions 1 ends it: no signal sent
    assert wp.proc.returncode is not None and "Traceback" not in wp.stderr_text
    report = json.loads(out)
    refused = [c for c in report["checks"] if c["cause"] == "unauthorized"]
    assert len(refused) == 1 and refused[0]["id"] == "watch-connect"
    assert refused[0]["evidence"]["upstream_status"] == 401
    assert "abrupt_close" not in {c["cause"] for c in report["checks"]}
    assert rc == 1


def test_r16_4_malformed_declarations_do_not_crash_the_analysis() -> None:
    obs = RelayObserver(echo=False)
    obs.feed(ConnEvent(0, 1e9, 1, "open", {"auth": "header"}))
    for session in (
        {"tools": 5},
        {"input": {"format": {"encoding": ["x"], "sample_rate": "24000"}}},
        {"output": {"format": {"encoding": {"a": 1}}}},
    ):
        obs.feed(Frame(0.01, 0, 1, "app", msg={"type": "session.update", "session": session}))
    obs.feed(Frame(0.05, 0, 1, "service", msg={"type": "session.ready", "session_id": "s"}))
    pcm = base64.b64encode(b"\1\0" * 2400).decode()
    for i in range(20):
        obs.feed(Frame(0.1 + i * 0.1, 0, 1, "app", msg={"type": "input.audio", "audio": pcm}))
    obs.feed(ConnEvent(3.0, 1e9, 1, "close", {"by": "service", "code": 1000}))
    findings = obs.finish()
    assert any("is not a string" in f.summary for f in findings if f.area == "audio")


def test_r16_4_after_a_crash_or_with_no_frames_the_areas_skip_not_pass() -> None:
    crashed = _unjudged({"analysis_crashed": "TypeError: boom", "app_frames": 10})
    assert crashed is not None and crashed[0] == "analysis_crashed"
    assert _unjudged({"app_frames": 0, "service_frames": 0}) == (
        "no_frames",
        "no frame went through the relay",
    )
    assert _unjudged({"app_frames": 3, "service_frames": 2}) is None
    results = watch_results([], 2, unjudged=crashed)
    areas = [r for r in results if r.id != "watch-connect"]
    assert areas and all(r.status is Status.SKIP for r in areas)
    assert all(r.status is not Status.PASS for r in areas)
    assert all(r.status is Status.PASS for r in watch_results([], 2))


def test_r16_5_a_capture_that_cannot_be_written_is_not_an_analysis_crash() -> None:
    sent: list[dict[str, Any]] = []
    # /dev/full: every write fails with ENOSPC, a real full disk
    w = Worker(Header(1e9, 100.0, "keep", "ws://x/v1/ws"), "/dev/full", sent.append, echo=False)
    audio = {"type": "input.audio", "audio": base64.b64encode(b"\0\0" * 24000).decode()}
    items = [Item(KIND_OPEN, "", 100.0, 1e9, 1, details={"auth": "header"})]
    items += [
        Item(b"T", "app", 100.1 + i * 0.05, 1e9, 1, data=json.dumps(audio)) for i in range(10)
    ]
    items.append(Item(KIND_CLOSE, "", 101.0, 1e9, 1, details={"by": "app", "code": 1000}))
    for item in items:
        w.handle(item)  # never raises
    result = w.finish()
    stats = result["stats"]
    assert stats["capture_failed"] and stats["analysis_crashed"] is None
    assert stats["app_frames"] == 10  # the analysis saw everything
    assert [m["cause"] for m in sent if m.get("cause") == "capture_failed"] == ["capture_failed"]
    r = relay_result({"frames_forwarded": 10, "connections": 1, **stats})
    assert r.status is Status.WARN and r.cause == "capture_failed"
    assert "incomplete" in r.summary and r.fix is not None
    assert "fewer sessions" not in " ".join(r.fix.to_dict().get("steps", []))


def test_r16_7_frames_the_capture_missed_are_a_warning() -> None:
    base = {"frames_forwarded": 100, "connections": 1, "capture_dropped_frames": 0}
    assert relay_result(base).status is Status.PASS
    r = relay_result({**base, "capture_dropped_frames": 13})
    assert r.status is Status.WARN and r.cause == "capture_dropped"
    assert "missed 13 frames" in r.summary


def test_r16_12_the_live_line_for_a_query_token_is_not_garbled_by_the_redactor() -> None:
    obs = RelayObserver(echo=False)
    notes = obs.feed(ConnEvent(0, 1e9, 1, "open", {"auth": "query"}))
    text = notes[0].text
    assert "?token=" not in text  # the redactor's ?token= pattern ate the ")" and masked it
    assert text.endswith("the app connected (a token in the URL query)")


def test_r16_13_no_app_connected_is_a_warning_that_says_so() -> None:
    r = relay_result({"connections": 0, "connections_refused_upstream": 0})
    assert r.status is Status.WARN and r.cause == "no_app_connected" and r.fix is not None
    assert verdict([r]).startswith("No failures, 1 warning")  # not "All ... passed"
    assert "no app connected" in r.summary and "None" not in r.summary


def test_r16_11_the_relay_figure_is_named_send_time_not_added_latency() -> None:
    r = relay_result({"connections": 1, "frames_forwarded": 5, "added_latency_p50_ms": 0.1})
    assert "send time per frame" in r.summary and "added latency" not in r.summary
    assert "not counting the wait to be read" in r.summary


def _dropped_then(first: dict[str, Any]) -> set[str]:
    obs = RelayObserver(echo=False)
    obs.feed(ConnEvent(0, 1e9, 1, "open", {"auth": "header"}))
    obs.feed(Frame(0.01, 0, 1, "app", msg={"type": "session.update", "session": {}}))
    obs.feed(Frame(0.05, 0, 1, "service", msg={"type": "session.ready", "session_id": "sess_a"}))
    obs.feed(ConnEvent(1.0, 1e9, 1, "close", {"by": "service", "code": None}))
    obs.feed(ConnEvent(3.0, 1e9, 2, "open", {"auth": "header"}))
    obs.feed(Frame(3.01, 0, 2, "app", msg=first))
    obs.feed(Frame(3.05, 0, 2, "service", msg={"type": "session.ready", "session_id": "sess_b"}))
    obs.feed(Frame(3.5, 0, 2, "app", msg={"type": "session.end"}))
    obs.feed(ConnEvent(3.6, 1e9, 2, "close", {"by": "app", "code": 1000}))
    return {f.cause for f in obs.finish()}


def test_r16_10_a_fresh_session_after_a_drop_is_a_resume_not_attempted() -> None:
    fresh = _dropped_then({"type": "session.update", "session": {}})
    assert "resume_not_attempted" in fresh
    resumed = _dropped_then({"type": "session.resume", "session_id": "sess_a"})
    assert "resume_not_attempted" not in resumed
