"""ThreadedSandbox releases what it took when it cannot start (a port already in use)."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from doctor.sandbox.config import SandboxConfig
from doctor.sandbox.threaded import ThreadedSandbox


def open_paths() -> set[str]:
    """What this process's file descriptors point at."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue  # the listing's own descriptor, already closed
    return out


def test_failed_start_releases_thread_ca_folder_and_events_file(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = int(taken.getsockname()[1])
        threads = set(threading.enumerate())
        sb = ThreadedSandbox(SandboxConfig(port=port, events_path=str(events)))
        with pytest.raises(OSError):
            sb.start()
    assert set(threading.enumerate()) - threads == set()  # the loop thread is gone
    assert sb.ca_file is not None and not os.path.exists(os.path.dirname(sb.ca_file))
    assert str(events) not in open_paths()
    sb.stop()  # stopping again is harmless
