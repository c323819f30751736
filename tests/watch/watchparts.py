"""Shared parts of the watch tests: `agent-doctor watch` as a process, and apps that use it.

The relay's URL is read from its own stderr (the instructions it prints); readiness and
stops are waited for on its output, never by sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from clirun import assert_valid_report
from websockets.asyncio.client import ClientConnection, connect

from doctor.sandbox.audio import synth_voice
from doctor.sandbox.threaded import ThreadedSandbox

T = TypeVar("T")
URL_RE = re.compile(r"->\s+(ws://127\.0\.0\.1:\d+/v1/ws)")
RATE = 24_000
CHUNK_MS = 50


def run(coro: Awaitable[T], timeout: float = 90) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


@dataclass
class WatchProcess:
    proc: subprocess.Popen[str]
    stderr_lines: list[str] = field(default_factory=list)
    url: str = ""
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _threads: list[threading.Thread] = field(default_factory=list)
    stdout: str = ""

    def start_reading(self) -> None:
        for target in (self._read_err, self._read_out):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        with contextlib.suppress(ValueError, OSError):
            self.stdout = self.proc.stdout.read()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        with contextlib.suppress(ValueError, OSError):
            for line in self.proc.stderr:
                with self._cond:
                    self.stderr_lines.append(line.rstrip("\n"))
                    m = URL_RE.search(line)
                    if m and not self.url:
                        self.url = m.group(1)
                    self._cond.notify_all()

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = 30.0) -> str:
        with self._cond:
            found: list[str] = []

            def match() -> bool:
                found[:] = [x for x in self.stderr_lines if predicate(x)]
                return bool(found) or self.proc.poll() is not None

            self._cond.wait_for(match, timeout)
            if not found:
                raise AssertionError("no such line from watch; stderr:\n" + self.stderr_text)
            return found[0]

    @property
    def stderr_text(self) -> str:
        return "\n".join(self.stderr_lines)

    @property
    def token_url(self) -> str:
        return self.url.replace("ws://", "http://").replace("/v1/ws", "/v1/token")

    def finish(self, timeout: float = 120.0, sig: int | None = None) -> tuple[int, str]:
        """Wait for the process to end (after its --sessions/--for, or after `sig`)."""
        if sig is not None and self.proc.poll() is None:
            # to the whole group, as Ctrl-C on a terminal does (the worker gets it too)
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for t in self._threads:
            t.join(10)
        return int(self.proc.returncode), self.stdout

    def report(self) -> dict[str, Any]:
        return json.loads(self.stdout)


def start_watch(
    sb: ThreadedSandbox | None,
    *args: str,
    env: dict[str, str] | None = None,
    ws_url: str | None = None,
    timeout: float = 10,
) -> WatchProcess:
    """`agent-doctor watch` relaying to the sandbox (or to `ws_url`), its URL parsed."""
    ws = ws_url or (sb.ws_url if sb else "")
    token = sb.token_url if sb else ws.replace("ws", "http", 1).replace("/v1/ws", "/v1/token")
    cmd = [
        sys.executable,
        "-m",
        "doctor",
        "watch",
        "--ws-url",
        ws,
        "--token-url",
        token,
        "--timeout",
        str(timeout),
        *args,
    ]
    full_env = dict(os.environ)
    full_env.pop("ASSEMBLYAI_API_KEY", None)
    full_env.update(env or {})
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        start_new_session=True,  # its own process group, as a terminal gives it
    )
    wp = WatchProcess(proc)
    wp.start_reading()
    wp.wait_line(lambda line: bool(URL_RE.search(line)))
    assert wp.url, wp.stderr_text
    return wp


def checks(report: dict[str, Any], cause: str | None = None) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if cause is None or c["cause"] == cause]


def problems(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if c["status"] in ("warn", "fail", "error")]


# --- audio --------------------------------------------------------------------------------


def speech(speech_s: float = 0.8, silence_s: float = 1.3, seed: int = 9) -> np.ndarray:
    """float samples at 24 kHz: lead-in, voice-like speech, enough silence to end the turn."""
    x = np.concatenate(
        [
            np.zeros(2400, np.int16),
            synth_voice(speech_s, seed=seed),
            np.zeros(round(silence_s * RATE), np.int16),
        ]
    )
    return x.astype(np.float32) / 32768.0


def pcm16(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def chunked(data: bytes, chunk_bytes: int) -> list[bytes]:
    return [data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes)]


# --- the app's side -----------------------------------------------------------------------


class App:
    """A small app over raw websockets: what a user's code does, with knobs for mistakes."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []
        self.reply_pcm: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self._waiters: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
        self.reader = asyncio.ensure_future(self._read())
        self.closed = asyncio.Event()

    @classmethod
    async def open(cls, url: str, *, api_key: str | None = None, token: str | None = None) -> App:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        full = f"{url}?token={token}" if token else url
        ws = await connect(
            full, additional_headers=headers, proxy=None, open_timeout=10, max_size=2**24
        )
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                self.received.append(msg)
                if msg.get("type") == "reply.audio":
                    pcm = base64.b64decode(msg["data"])
                    self.reply_pcm.put_nowait((asyncio.get_running_loop().time(), pcm))
                for type_, fut in list(self._waiters):
                    if type_ == msg.get("type") and not fut.done():
                        fut.set_result(msg)
        except Exception:
            pass
        finally:
            self.closed.set()
            for _, fut in self._waiters:
                if not fut.done():
                    fut.set_exception(ConnectionError("closed"))

    async def wait(self, type_: str, timeout: float = 20.0) -> dict[str, Any]:
        for msg in self.received:
            if msg.get("type") == type_:
                return msg
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((type_, fut))
        return await asyncio.wait_for(fut, timeout)

    async def wait_new(self, type_: str, timeout: float = 20.0) -> dict[str, Any]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((type_, fut))
        return await asyncio.wait_for(fut, timeout)

    async def send(self, msg: dict[str, Any] | str) -> None:
        await self.ws.send(msg if isinstance(msg, str) else json.dumps(msg))

    async def start(self, session: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.send({"type": "session.update", "session": session or {}})
        return await self.wait("session.ready")

    async def stream(self, chunks: list[bytes], interval_s: float = CHUNK_MS / 1000) -> None:
        """One chunk per interval on a real-time schedule (what a microphone loop does)."""
        t0 = time.monotonic()
        for i, c in enumerate(chunks):
            await self.send({"type": "input.audio", "audio": base64.b64encode(c).decode()})
            delay = t0 + (i + 1) * interval_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the app's stream, not synchronisation

    async def end(self) -> None:
        await self.send({"type": "session.end"})
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
            await self.wait("session.ended", 10)
        await self.ws.close()
        await self.closed.wait()


def stop_on_signal(wp: WatchProcess) -> tuple[int, str]:
    return wp.finish(sig=signal.SIGINT)


def here() -> Path:
    return Path(__file__).parent


def watch_run(
    sb: ThreadedSandbox,
    app: Callable[[WatchProcess], Awaitable[Any]],
    *args: str,
    connections: int = 1,
) -> tuple[dict[str, Any], WatchProcess]:
    """Start watch, run the app against it, wait for the report (after N connections)."""
    wp = start_watch(sb, "--sessions", str(connections), "--json", *args)
    try:
        run(app(wp))
    except BaseException:
        wp.finish(sig=signal.SIGINT, timeout=30)
        raise
    rc, out = wp.finish()
    assert out.strip(), f"no report (exit {rc}); stderr:\n{wp.stderr_text}"
    report = assert_valid_report(json.loads(out))
    assert rc == (1 if any(c["status"] in ("fail", "error") for c in report["checks"]) else 0)
    return report, wp


def causes(report: dict[str, Any]) -> set[str]:
    return {c["cause"] for c in problems(report)}


def one(report: dict[str, Any], cause: str) -> dict[str, Any]:
    found = checks(report, cause)
    assert found, f"no {cause} in {[(c['id'], c['cause']) for c in problems(report)]}"
    return found[0]


async def mint(wp: WatchProcess, api_key: str) -> str:
    """A temporary token, minted through the relay's token face (as an app's backend does)."""
    import httpx

    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(
            wp.token_url, params={"expires_in_seconds": 60}, headers={"Authorization": api_key}
        )
    answer.raise_for_status()
    return str(answer.json()["token"])


def relay_evidence(check: dict[str, Any]) -> dict[str, Any]:
    """What the relay saw of a problem: its own result's evidence, or the `relay` part it
    added to the session analysis's result for the same problem."""
    ev = check["evidence"]
    return dict(ev.get("relay") or ev) | {"session_id": ev.get("session_id")}


async def raw_tcp(port: int, data: bytes, read: bool = True) -> bytes:
    """Send raw bytes to the relay (a client that is not a WebSocket) and read its answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = b""
    if read:
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
            answer = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return answer


async def open_talking(wp: WatchProcess, api_key: str) -> App:
    """An app that has said its first sentence, with barge-in off so that the agent's
    replies play whole: where the echo apps start feeding the agent back."""
    a = await App.open(wp.url, api_key=api_key)
    await a.start({"input": {"turn_detection": {"interrupt_response": False}}})
    await a.stream(chunked(pcm16(speech(0.8, 1.3)), 2400))
    return a
