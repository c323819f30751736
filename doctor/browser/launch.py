"""Opening the page with `--browser CMD`, and noticing a command that fails.

A launcher that hands the address to a browser already running and exits 0 (xdg-open,
`chromium` joining an open window) is normal, so only a command that cannot start, or
that exits non-zero before any browser fetched the page, ends the wait early.
"""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import IO

POLL_S = 0.25
TAIL_LINES = 5
TAIL_BYTES = 4096


@dataclass(frozen=True)
class LaunchFailure:
    """Why `--browser CMD` did not open the page: it did not start, or it exited early."""

    command: str
    error: str | None = None  # the OSError when it could not be started
    exit_code: int | None = None  # negative: killed by that signal
    stderr_tail: list[str] = field(default_factory=list)
    after_page: bool = False  # it had opened the page (only a signal is a verdict then)

    @property
    def detail(self) -> str:
        if self.error is not None:
            return f"could not start {self.command!r}: {self.error}"
        code = self.exit_code
        how = (
            f"was killed by signal {-code}"
            if code is not None and code < 0
            else (f"exited with code {code}")
        )
        said = f"; it said: {' | '.join(self.stderr_tail)}" if self.stderr_tail else ""
        when = (
            "after it opened the page" if self.after_page else "before any browser opened the page"
        )
        return f"{self.command!r} {how} {when}{said}"


@dataclass
class Launched:
    """A running `--browser` command. Its stderr goes to an unlinked temporary file: a
    pipe nobody drains would block a browser that keeps logging once the CLI is done."""

    command: str
    proc: subprocess.Popen[bytes]
    stderr: IO[bytes]

    async def exit_code(self) -> int:
        """Wait for the command to exit (polled: it is the user's browser, never reaped by
        a watcher that would kill it when the loop closes)."""
        while (code := self.proc.poll()) is None:
            await asyncio.sleep(POLL_S)
        return code

    def failure(self, code: int, after_page: bool = False) -> LaunchFailure:
        return LaunchFailure(
            self.command, exit_code=code, stderr_tail=self.tail(), after_page=after_page
        )

    def tail(self) -> list[str]:
        """The last lines the command wrote on stderr, for the result's detail."""
        try:
            size = self.stderr.seek(0, 2)
            self.stderr.seek(max(0, size - TAIL_BYTES))
            text = self.stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return []
        lines = [line.strip()[:300] for line in text.splitlines() if line.strip()]
        return lines[-TAIL_LINES:]


def start(command: str, url: str) -> Launched | LaunchFailure:
    """Run `CMD URL` in its own session (it outlives the CLI, like any browser would)."""
    try:
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (the caller closes it when done)
    except OSError as exc:
        return LaunchFailure(command, error=f"no temporary file for its output: {exc}")
    try:
        proc = subprocess.Popen(
            [*shlex.split(command), url],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    except (OSError, ValueError) as exc:
        stderr.close()
        return LaunchFailure(command, error=str(exc) or type(exc).__name__)
    return Launched(command, proc, stderr)
