"""Keep the C audio libraries' messages off the user's terminal, and count them.

ALSA, PortAudio and JACK print straight to file descriptor 2 (`ALSA lib pcm.c:8570:
(snd_pcm_recover) underrun occurred`, `Expression '...' failed in 'pa_linux_alsa.c'`,
`Cannot connect to server socket`), past Python's `sys.stderr`. Around PortAudio calls fd 2
is pointed at a pipe; a reader thread counts the library's lines (an underrun during the
echo probe is evidence worth having) and passes every other line on to the real stderr at
once, so the CLI's own messages from other threads still reach the user.

Nested and concurrent uses share one redirection: each `quiet_libraries()` block sees the
library lines written while it is open.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

LIBRARY_LINE = re.compile(
    r"^(ALSA lib |ALSA: |Expression '.*' failed in |PaAlsa|PaUnix|"
    r"Cannot connect to server|jack server|JackShm|Jack[A-Z]\w+|jack_client_|"
    r"connect\(2\) call to |attempt to connect to server failed|Cannot lock down|"
    r"bt_audio_service_open)"
)
# a library line glued to the end of a progress line that was redrawn in place
# (`\r\x1b[2Krunning: ...` has no newline of its own)
GLUED_LIBRARY_LINE = re.compile(LIBRARY_LINE.pattern[1:])
UNDERRUN = re.compile(r"underrun|overrun|xrun", re.IGNORECASE)
SAMPLES_KEPT = 3


@dataclass(eq=False)  # listeners are told apart by identity
class Chatter:
    """What the libraries said while one block was open."""

    lines: int = 0
    underruns: int = 0
    samples: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines += 1
        if UNDERRUN.search(line):
            self.underruns += 1
        if len(self.samples) < SAMPLES_KEPT and line not in self.samples:
            self.samples.append(line[:200])

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {"library_messages": self.lines, "alsa_underruns": self.underruns}
        if self.samples:
            out["library_message_samples"] = list(self.samples)
        return out


def is_library_line(line: str) -> bool:
    return bool(LIBRARY_LINE.match(line.strip()))


def split_library_line(line: str) -> tuple[str, str]:
    """(what to show, the library line): a whole library line, or one glued onto a
    progress line that was redrawn with a carriage return and never ended."""
    if is_library_line(line):
        return "", line.strip()
    cr = line.rfind("\r")
    if cr < 0:
        return line, ""
    m = GLUED_LIBRARY_LINE.search(line, cr)
    if m is None:
        return line, ""
    return line[: m.start()], line[m.start() :].strip()


class _Redirect:
    """fd 2 -> pipe -> reader thread, for as long as anyone listens."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # the listeners
        self.life = threading.Lock()  # setting up and tearing down the redirection
        self.listeners: list[Chatter] = []
        self.syncs: dict[bytes, threading.Event] = {}
        self.saved: int | None = None
        self.reader: threading.Thread | None = None

    def _pump(self, read_fd: int, out_fd: int) -> None:
        pending = b""
        while True:
            try:
                data = os.read(read_fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            pending += data
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                self._line(raw, out_fd)
        if pending:  # a progress line left unended: shown as it was, no newline added
            self._line(pending, out_fd, end=b"")
        os.close(read_fd)

    def _line(self, raw: bytes, out_fd: int, end: bytes = b"\n") -> None:
        if raw.startswith(_SYNC):
            with self.lock:
                done = self.syncs.pop(raw, None)
            if done is not None:
                done.set()
            return
        text = raw.decode("utf-8", "replace")
        show, library = split_library_line(text)
        if library:
            with self.lock:
                for chatter in self.listeners:
                    chatter.add(library)
            if not show:
                return
            raw, end = show.encode("utf-8", "replace"), b""  # the unended progress line
        with contextlib.suppress(OSError):
            os.write(out_fd, raw + end)

    def start(self, chatter: Chatter) -> None:
        with self.life:
            with self.lock:
                self.listeners.append(chatter)
            if self.saved is not None:
                return
            try:
                sys.stderr.flush()
                saved = os.dup(2)
                read_fd, write_fd = os.pipe()
                os.dup2(write_fd, 2)
                os.close(write_fd)
            except OSError:  # no fd 2, or no pipes: leave the terminal as it is
                return
            self.saved = saved
            self.reader = threading.Thread(
                target=self._pump, args=(read_fd, saved), name="doctor-lib-stderr", daemon=True
            )
            self.reader.start()

    def stop(self, chatter: Chatter) -> None:
        with self.life:
            with self.lock:
                last = self.listeners == [chatter]
            if not last and self.saved is not None:
                self._sync()
            if last and self.saved is not None:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                os.dup2(self.saved, 2)  # drops the pipe's last write end: the reader ends
                if self.reader is not None:
                    self.reader.join(timeout=2.0)
                os.close(self.saved)
                self.saved = self.reader = None
            with self.lock:
                if chatter in self.listeners:
                    self.listeners.remove(chatter)

    def _sync(self) -> None:
        """Wait until the reader has handled every line written so far (a marker line
        through the same pipe), so a block counts all it caused and nothing later."""
        marker = _SYNC + f"{id(self)}-{threading.get_ident()}-{os.urandom(4).hex()}".encode()
        done = threading.Event()
        with self.lock:
            self.syncs[marker] = done
        with contextlib.suppress(OSError):
            os.write(2, marker + b"\n")
            done.wait(1.0)
        with self.lock:
            self.syncs.pop(marker, None)


_SYNC = b"\x00doctor-chatter-sync-"
_REDIRECT = _Redirect()


@contextlib.contextmanager
def quiet_libraries() -> Iterator[Chatter]:
    """Library lines written to fd 2 inside the block are counted, not shown."""
    chatter = Chatter()
    _REDIRECT.start(chatter)
    try:
        yield chatter
    finally:
        _REDIRECT.stop(chatter)
