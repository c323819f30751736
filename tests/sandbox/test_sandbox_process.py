"""The real `agent-doctor sandbox` command as a subprocess: ready line, options, event
output, signals, and bad options (one line, exit 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sandbox_wire import chunks, run, utterance

from doctor.net.agent_api import AgentConnection, SessionError, mint_token
from doctor.sandbox.pytest_plugin import SandboxProcess

Factory = Callable[..., SandboxProcess]


async def conversation(sp: SandboxProcess, **auth: Any) -> str:
    async with AgentConnection.open(sp.ws_url, ca_bundle=sp.ca_file, **auth) as c:
        await c.start_session({})
        for chunk in chunks(utterance()):
            await c.send_audio(chunk)
        await c.wait_for("reply.done", "reply")
        await c.end()
        assert c.session_id
        return c.session_id


def test_ready_line_is_one_json_object(sandbox_process: SandboxProcess) -> None:
    ready = sandbox_process.ready
    assert set(ready) == {"ws_url", "token_url", "ca_file", "api_keys"}
    assert ready["ws_url"].startswith("wss://127.0.0.1:") and ready["ws_url"].endswith("/v1/ws")
    assert ready["token_url"].startswith("https://") and ready["token_url"].endswith("/v1/token")
    assert Path(ready["ca_file"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert len(ready["api_keys"]) == 1 and len(ready["api_keys"][0]) >= 16
    assert sandbox_process.stop() == 0
    assert sandbox_process.rest_of_stdout == ""  # nothing after the ready line


def test_no_tls_serves_ws_without_a_ca(sandbox_process_factory: Factory) -> None:
    sp = sandbox_process_factory("--no-tls", "--reply-seconds", "0.1")
    assert sp.ws_url.startswith("ws://") and sp.token_url.startswith("http://")
    assert sp.ready["ca_file"] is None
    assert run(conversation(sp, api_key=sp.api_key)).startswith("sess_")


def test_api_key_repeated(sandbox_process_factory: Factory) -> None:
    keys = ["first-key-0123456789abcdef", "second-key-0123456789abcde"]
    sp = sandbox_process_factory("--api-key", keys[0], "--api-key", keys[1], "--no-tls")

    async def go() -> None:
        for key in keys:
            async with AgentConnection.open(sp.ws_url, api_key=key) as c:
                await c.start_session({})
                await c.end()
        with pytest.raises(SessionError):
            async with AgentConnection.open(sp.ws_url, api_key="third-key-0123456789abcd") as c:
                await c.start_session({})

    assert sp.api_keys == keys
    run(go())


def test_events_file_and_stderr_lines_match(sandbox_process_factory: Factory) -> None:
    sp = sandbox_process_factory("--reply-seconds", "0.2")

    async def go() -> tuple[str, str]:
        minted = await mint_token(sp.token_url, sp.api_key, 60, ca_bundle=sp.ca_file)
        assert minted.token
        await conversation(sp, token=minted.token)
        return await conversation(sp, api_key=sp.api_key), minted.token

    sid, token = run(go())
    assert sp.stop() == 0
    events = sp.events()
    lines = [line for line in sp.stderr_lines if line.strip()]
    assert len(lines) == len(events) > 20  # one stderr line per event, nothing else
    for event, line in zip(events, lines, strict=True):
        assert f" {event['type']}" in line
    directions = {e["direction"] for e in events}
    assert directions == {"in", "out", "server"}
    types = {(e["direction"], e["type"]) for e in events}
    for expected in [
        ("in", "session.update"),
        ("in", "input.audio"),
        ("in", "session.end"),
        ("out", "session.ready"),
        ("out", "reply.audio"),
        ("out", "session.ended"),
        ("server", "token.minted"),
        ("server", "sandbox.stopped"),
    ]:
        assert expected in types
    assert any(e.get("session_id") == sid for e in events)
    everything = "\n".join(lines) + sp.events_path.read_text()
    assert sp.api_key not in everything and token not in everything


def test_more_stderr_than_a_pipe_holds_does_not_stall_the_server(
    sandbox_process_factory: Factory,
) -> None:
    """A pipe holds ~64 KiB; the fixture reads stderr as it comes, so the server still
    answers after far more event lines than that."""
    sp = sandbox_process_factory("--no-tls")
    silence = bytes(480)  # 10 ms: one short event line each, and no turn

    async def go() -> dict[str, Any] | None:
        async with AgentConnection.open(sp.ws_url, api_key=sp.api_key, timeout=20) as c:
            await c.start_session({})
            for _ in range(1500):
                await c.send_audio(silence)
            return await c.end()

    ended = run(go())
    assert ended is not None and ended["audio_duration_seconds"] is None  # field-facts §12
    assert sp.stop() == 0
    assert sum(len(line) + 1 for line in sp.stderr_lines) > 2 * 65536
    assert sum(" input.audio" in line for line in sp.stderr_lines) == 1500


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stops_cleanly_on_a_signal(sandbox_process_factory: Factory, sig: int) -> None:
    sp = sandbox_process_factory("--no-tls")

    async def open_session() -> AgentConnection:
        c = await AgentConnection.open(sp.ws_url, api_key=sp.api_key)
        await c.start_session({})
        return c

    async def go() -> AgentConnection:
        c = await open_session()
        sp.proc.send_signal(sig)  # with a live session: it must still stop cleanly
        await c._wait_closed(10)
        return c

    c = run(go())
    assert sp.proc.wait(10) == 0  # exits by itself after the one signal
    sp.stop()  # collects stderr
    assert c.closed and c.close_code == 1001  # going away
    stderr = "\n".join(sp.stderr_lines)
    assert "Traceback" not in stderr and "Error" not in stderr
    assert sp.events()[-1]["type"] == "sandbox.stopped"


def _run_bad(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "doctor", "sandbox", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ),
    )


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--fault", "nope"], "--fault"),
        (["--fault", "slow-ready=abc"], "--fault"),
        (["--fault", "handshake-reject=3"], "--fault"),
        (["--grace", "-1"], "--grace"),
        (["--port", "99999"], "--port"),
        (["--auth-failure", "maybe"], "--auth-failure"),
        (["--events", "/nonexistent-dir/events.jsonl"], "/nonexistent-dir"),
        # not writable even for root: a /proc file, a /sys folder, a folder itself
        (["--events", "/proc/version"], "/proc/version"),
        (["--events", "/sys/kernel/agent-doctor-events.jsonl"], "/sys/kernel/agent-doctor"),
        (["--events", "/"], "--events"),
        # checked at start, not failed per session (artifacts.failed) once it serves
        (["--artifacts-dir", "/proc/agent-doctor-artifacts"], "/proc/agent-doctor-artifacts"),
        (["--artifacts-dir", "/proc/version/x"], "choose a writable folder for --artifacts-dir"),
    ],
)
def test_bad_option_is_one_line_and_exit_2(args: list[str], names: str) -> None:
    proc = _run_bad(*args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agent-doctor: error:")
    assert names in lines[0] and "Traceback" not in proc.stderr


def test_port_in_use_is_one_line_and_exit_2(sandbox_process_factory: Factory) -> None:
    sp = sandbox_process_factory("--no-tls")
    port = sp.ws_url.rsplit(":", 1)[1].split("/")[0]
    proc = _run_bad("--no-tls", "--port", port)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f":{port}" in lines[0] and "--port" in lines[0]


def test_faults_and_switches_from_the_command_line(sandbox_process_factory: Factory) -> None:
    sp = sandbox_process_factory(
        "--no-tls", "--fault", "at-capacity", "--auth-failure", "http", "--quiet"
    )

    async def go() -> SessionError:
        with pytest.raises(SessionError) as info:
            async with AgentConnection.open(sp.ws_url, api_key=sp.api_key) as c:
                await c.start_session({})
        return info.value

    err = run(go())
    assert (err.error_code, err.close_code) == ("server_error", 1008)
    assert sp.stop() == 0
    assert sp.stderr_lines == []  # --quiet
    started = sp.events()[0]
    assert started["type"] == "sandbox.started" and started["faults"] == {"at-capacity": None}


def test_help_lists_every_fault() -> None:
    from doctor.sandbox.config import FAULTS

    proc = _run_bad("--help")
    assert proc.returncode == 0
    for name in FAULTS:
        assert name in proc.stdout
    assert json.loads('"ok"') == "ok"


def test_rate_limit_wait_and_its_form_from_the_command_line(
    sandbox_process_factory: Factory,
) -> None:
    sp = sandbox_process_factory(
        "--no-tls", "--fault", "token-rate-limited=5", "--retry-after-form", "date", "--quiet"
    )
    result = run(mint_token(sp.token_url, sp.api_key, 60))
    assert (result.status, result.retry_after_s) == (429, 5.0)
    assert sp.stop() == 0
    assert sp.events()[0]["faults"] == {"token-rate-limited": 5.0}
    response = [e for e in sp.events() if e["type"] == "http.response"][-1]
    assert response["status"] == 429


def test_a_bad_retry_after_form_is_one_line_and_exit_2() -> None:
    proc = _run_bad("--retry-after-form", "minutes")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "--retry-after-form" in proc.stderr
