"""Real clients for the sandbox, well-behaved and misbehaving, over real sockets.

Each one streams microphone-like PCM at real-time pace (20 ms chunks) and logs what it
received as apps do (server events with a receive time), so a test can run a session the
way an app would and then read the artifacts the sandbox wrote about it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from doctor.sandbox.audio import synth_voice
from doctor.sandbox.threaded import ThreadedSandbox

RATE = 24000
TICK_S = 0.02
TICK = round(RATE * TICK_S)
# Deadlines that only bound a failing test: the sandbox runs in this process, and on a
# loaded CI machine (load 12 on 2 cores) 10 s for the end of a session ran out.
WAIT_S = 60.0
SESSION_WAIT_S = 180.0


def session_config(tools: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A short-turn session: turns end after 300 ms of silence so tests stay quick."""
    config: dict[str, Any] = {
        "system_prompt": "You are a test agent.",
        "greeting": "Hello! How can I help?",
        "input": {
            "format": {"encoding": "audio/pcm", "sample_rate": 24000},
            "turn_detection": {"min_silence": 300},
        },
        "output": {"voice": "jane", "format": {"encoding": "audio/pcm", "sample_rate": 24000}},
    }
    if tools:
        config["tools"] = tools
    config.update(extra)
    return config


LOOKUP_TOOL = {
    "type": "function",
    "name": "lookup",
    "description": "Look up an order",
    "parameters": {"type": "object", "properties": {"order": {"type": "string"}}},
    "timeout_seconds": 1,
}


@dataclass
class Script:
    """What the client does. Times are seconds after `session.ready`."""

    speech: list[tuple[float, float]] = field(default_factory=list)  # (at, length) utterances
    echo_gain: float = 0.0  # feed the agent's audio back at this gain (0: a headset)
    echo_delay_s: float = 0.12
    answer_tools: bool = True
    end: str = "session.end"  # "session.end", "close" (frame, no session.end), "drop" (TCP)
    duration_s: float = 4.0  # when to end, after ready
    audio_before_ready: bool = False


@dataclass
class ClientRun:
    session_id: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)  # {"received_at", "event"}
    close_code: int | None = None
    # the app's own log, both ways, as JSON lines apps write (session-formats §7.2)
    log: list[dict[str, Any]] = field(default_factory=list)

    def sent(self, message: dict[str, Any]) -> str:
        self.log.append({"received_at": time.time(), "direction": "sent", "event": message})
        return json.dumps(message)

    def received(self, message: dict[str, Any]) -> None:
        entry = {"received_at": time.time(), "direction": "received", "event": message}
        self.log.append(entry)
        self.events.append({"received_at": entry["received_at"], "event": message})

    def write_log(self, path: str) -> str:
        with open(path, "w", encoding="utf-8") as fh:
            for entry in self.log:
                fh.write(json.dumps(entry) + "\n")
        return path

    def types(self) -> list[str]:
        return [e["event"]["type"] for e in self.events]


def user_voice(length_s: float, seed: int) -> np.ndarray[Any, Any]:
    """Another speaker than the agent: the sandbox's voice 1.6x faster and higher
    (f0 ~210 Hz), so no pitch contour of the user's lines lines up with the agent's."""
    from scipy import signal

    voice = synth_voice(length_s * 1.6, seed=seed).astype(np.float64)
    return np.asarray(signal.resample_poly(voice, 5, 8))[: round(length_s * RATE)]


def _speech_track(script: Script) -> np.ndarray[Any, Any]:
    total = round((script.duration_s + 1) * RATE)
    # a microphone's noise floor (-66 dBFS): never digital silence, far below speech
    track = np.random.default_rng(7).normal(0.0, 16.0, total)
    for n, (at, length) in enumerate(script.speech):
        voice = user_voice(length, seed=100 + n)
        start = round(at * RATE)
        end = min(total, start + len(voice))
        track[start:end] += voice[: end - start]
    return track


async def _open(sb: ThreadedSandbox) -> ClientConnection:
    return await connect(
        sb.ws_url, additional_headers={"Authorization": sb.api_key}, proxy=None, open_timeout=10
    )


async def run_client(
    sb: ThreadedSandbox, script: Script, config: dict[str, Any], run: ClientRun | None = None
) -> ClientRun:
    """One session as `script` says; returns what the app would have logged (`run`: go on
    logging into an earlier connection's log, as one app does)."""
    run = run or ClientRun()
    ws = await _open(sb)
    await ws.send(run.sent({"type": "session.update", "session": config}))
    if script.audio_before_ready:
        silence = base64.b64encode(bytes(TICK * 2)).decode()
        await ws.send(run.sent({"type": "input.audio", "audio": silence}))
    track = _speech_track(script)
    echo = np.zeros_like(track)
    ready = asyncio.Event()
    t_ready = [0.0]
    playing = [0]  # where the speaker's next sample goes

    async def reader() -> None:
        try:
            async for raw in ws:
                event = json.loads(raw)
                run.received(event)
                kind = event.get("type")
                if kind == "session.ready":
                    run.session_id = event.get("session_id")
                    t_ready[0] = time.monotonic()
                    ready.set()
                elif kind == "reply.audio" and script.echo_gain and ready.is_set():
                    # a speaker: chunks play back to back from a small jitter buffer,
                    # and the microphone hears them `echo_delay_s` later
                    pcm = np.frombuffer(base64.b64decode(event["data"]), "<i2")
                    at = round((time.monotonic() - t_ready[0] + script.echo_delay_s) * RATE)
                    start = playing[0] if at - playing[0] <= RATE // 10 else at
                    end = min(len(echo), start + len(pcm))
                    if start < end:
                        echo[start:end] += pcm[: end - start] * script.echo_gain
                    playing[0] = start + len(pcm)
                elif kind == "tool.call" and script.answer_tools:
                    await ws.send(
                        run.sent(
                            {
                                "type": "tool.result",
                                "call_id": event["call_id"],
                                "result": json.dumps({"status": "shipped"}),
                            }
                        )
                    )
        except ConnectionClosed:
            pass

    reading = asyncio.ensure_future(reader())
    try:
        await asyncio.wait_for(ready.wait(), WAIT_S)
        position = 0
        end = round(script.duration_s * RATE)
        while position < end:
            due = t_ready[0] + position / RATE
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            piece = track[position : position + TICK] + echo[position : position + TICK]
            pcm = np.clip(np.round(piece), -32768, 32767).astype("<i2").tobytes()
            await ws.send(
                run.sent({"type": "input.audio", "audio": base64.b64encode(pcm).decode()})
            )
            position += TICK
        if script.end == "session.end":
            await ws.send(run.sent({"type": "session.end"}))
            await asyncio.wait_for(reading, WAIT_S)
        elif script.end == "close":
            await ws.close(1000)
        else:
            ws.transport.abort()
    finally:
        reading.cancel()
        with contextlib.suppress(BaseException):
            await reading
        with contextlib.suppress(Exception):
            await ws.close()
    run.close_code = ws.close_code
    return run


async def resume(sb: ThreadedSandbox, session_id: str, run: ClientRun) -> list[dict[str, Any]]:
    """A `session.resume` on a new connection: every frame until the server closes."""
    ws = await _open(sb)
    await ws.send(run.sent({"type": "session.resume", "session_id": session_id}))
    seen: list[dict[str, Any]] = []
    try:
        while True:
            event = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
            run.received(event)
            seen.append(event)
    except ConnectionClosed:
        return seen


def converse(
    sb: ThreadedSandbox,
    script: Script,
    config: dict[str, Any] | None = None,
    run: ClientRun | None = None,
) -> ClientRun:
    coro = run_client(sb, script, config or session_config(), run)
    return asyncio.run(asyncio.wait_for(coro, SESSION_WAIT_S))


def resume_after_drop(sb: ThreadedSandbox, retries: int, fresh: bool) -> ClientRun:
    """An app whose socket dropped: it resumes (`retries` times), then maybe starts fresh."""
    run = converse(sb, Script(duration_s=0.5, end="drop"))
    assert run.session_id is not None
    for _ in range(retries):
        asyncio.run(asyncio.wait_for(resume(sb, run.session_id, run), SESSION_WAIT_S))
    if fresh:
        converse(sb, Script(duration_s=0.5), run=run)
    return run


def session_cli(
    sb: ThreadedSandbox, *args: str, key: str | None = None, tmp: str | None = None
) -> tuple[int, dict[str, Any], str, str]:
    """Run `agent-doctor session ... --json` against `sb`; (exit code, report, out, err)."""
    from clirun import assert_valid_report, cli_env, run_cli

    extra = {"ASSEMBLYAI_API_KEY": key or sb.api_key}
    if sb.ca_file:
        extra["SSL_CERT_FILE"] = sb.ca_file
    if tmp is not None:
        extra["TMPDIR"] = tmp
    target = ["--token-url", sb.token_url, "--ws-url", sb.ws_url]
    proc = run_cli("session", *args, *target, "--json", env=cli_env(extra))
    report = assert_valid_report(json.loads(proc.stdout)) if proc.stdout.strip() else {}
    return proc.returncode, report, proc.stdout, proc.stderr


def ended(sb: ThreadedSandbox, script: Script | None = None, **kw: Any) -> str:
    """Run a session and wait until the sandbox has written its artifacts; its id."""
    run = converse(sb, script or Script(duration_s=0.6), **kw)
    assert run.session_id is not None
    sb.wait_for("artifacts.written", session_id=run.session_id, timeout=30)
    return run.session_id
