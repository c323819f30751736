"""Fixtures every area's tests reuse: a sandbox in a thread, and the real CLI as a process.

- `sandbox`: TLS sandbox (defaults), SSL_CERT_FILE pointed at its CA for the test.
- `sandbox_factory(**config)`: more sandboxes with given faults/grace/keys/switches.
- `sandbox_process`: `agent-doctor sandbox` as a subprocess, ready line parsed.
- `sandbox_process_factory(*args)`: the same with CLI arguments.
All of them stop at teardown. No sleeps: readiness is the server's own ready line/event.

The sandbox follows the live service (field-facts.md) unless told otherwise; a module or
test marked `@pytest.mark.sandbox_behaviour("documented")` gets protocol.md's version
from both factories (a `behaviour=` / `--behaviour` given explicitly still wins).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from doctor.sandbox.config import SandboxConfig
from doctor.sandbox.threaded import ThreadedSandbox

SandboxFactory = Callable[..., ThreadedSandbox]


MARKER = "sandbox_behaviour"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(name): the sandbox fixtures' default behaviour (field|documented)"
    )


def _marked_behaviour(request: pytest.FixtureRequest) -> str | None:
    marker = request.node.get_closest_marker(MARKER)
    return str(marker.args[0]) if marker is not None else None


@pytest.fixture
def sandbox_factory(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[SandboxFactory]:
    made: list[ThreadedSandbox] = []
    behaviour = _marked_behaviour(request)

    def make(trust: bool = True, **config: Any) -> ThreadedSandbox:
        if behaviour is not None:
            config.setdefault("behaviour", behaviour)
        sb = ThreadedSandbox(SandboxConfig(**config)).start()
        made.append(sb)
        if trust and sb.ca_file:
            monkeypatch.setenv("SSL_CERT_FILE", sb.ca_file)
        return sb

    try:
        yield make
    finally:
        for sb in made:
            sb.stop()


@pytest.fixture
def sandbox(sandbox_factory: SandboxFactory) -> ThreadedSandbox:
    return sandbox_factory()


@dataclass
class SandboxProcess:
    proc: subprocess.Popen[str]
    ready: dict[str, Any]
    events_path: Path
    stderr_lines: list[str] = field(default_factory=list)  # filled as they come (a thread)
    rest_of_stdout: str = ""  # whatever came after the ready line (should be nothing)
    _drain: threading.Thread | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # One event line per frame: a pipe nobody reads fills (~64 KiB) and then blocks
        # the server's next write, so stderr is read all the time, not only at stop.
        if self.proc.stderr is not None and self._drain is None:
            self._drain = threading.Thread(
                target=self._read_stderr, args=(self.proc.stderr,), daemon=True
            )
            self._drain.start()

    def _read_stderr(self, pipe: IO[str]) -> None:
        with contextlib.suppress(ValueError, OSError):  # closed under us at stop
            for line in pipe:
                self.stderr_lines.append(line.rstrip("\n"))

    @property
    def ws_url(self) -> str:
        return str(self.ready["ws_url"])

    @property
    def token_url(self) -> str:
        return str(self.ready["token_url"])

    @property
    def ca_file(self) -> str | None:
        ca = self.ready["ca_file"]
        return str(ca) if ca else None

    @property
    def api_keys(self) -> list[str]:
        return list(self.ready["api_keys"])

    @property
    def api_key(self) -> str:
        return self.api_keys[0]

    def events(self) -> list[dict[str, Any]]:
        if not self.events_path.exists():
            return []
        lines = self.events_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._drain is not None:
            self._drain.join(timeout)  # the process is gone: the pipe ends
        self.rest_of_stdout += (
            self.proc.stdout.read() if self.proc.stdout and not self.proc.stdout.closed else ""
        )
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return int(self.proc.returncode)


def _read_ready_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line, waited for with a deadline (the process may fail instead)."""
    assert proc.stdout is not None
    stdout: IO[str] = proc.stdout
    sel = selectors.DefaultSelector()
    sel.register(stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if sel.select(max(0.0, deadline - time.monotonic())):
                return stdout.readline()
    finally:
        sel.close()
    return ""


def start_sandbox_process(
    args: list[str], events_path: Path, env: dict[str, str] | None = None, timeout: float = 120.0
) -> SandboxProcess:
    cmd = [sys.executable, "-m", "doctor", "sandbox", "--events", str(events_path), *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or dict(os.environ)
    )
    line = _read_ready_line(proc, timeout)
    if not line.strip():
        proc.kill()
        _, err = proc.communicate()
        raise RuntimeError(f"agent-doctor sandbox did not become ready: {err.strip()[-2000:]}")
    return SandboxProcess(proc, json.loads(line), events_path)


@pytest.fixture
def sandbox_process_factory(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., SandboxProcess]]:
    made: list[SandboxProcess] = []
    behaviour = _marked_behaviour(request)

    def make(*args: str) -> SandboxProcess:
        given = list(args)
        if behaviour is not None and "--behaviour" not in given:
            given = ["--behaviour", behaviour, *given]
        sp = start_sandbox_process(given, tmp_path / f"sandbox-events-{len(made)}.jsonl")
        made.append(sp)
        return sp

    try:
        yield make
    finally:
        for sp in made:
            sp.stop()


@pytest.fixture
def sandbox_process(sandbox_process_factory: Callable[..., SandboxProcess]) -> SandboxProcess:
    return sandbox_process_factory()
