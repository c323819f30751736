"""doctor/watch/sched.py: the relay thread asks for a short scheduler slice, best effort."""

from __future__ import annotations

import ctypes
import platform
import struct
import sys
import threading

import pytest

from doctor.watch import sched


def _slice_of_this_thread() -> int:
    number = {"x86_64": 315, "aarch64": 275}[platform.machine()]  # sched_getattr
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(56)
    assert libc.syscall(number, 0, buf, 56, 0) == 0
    return int(struct.unpack("IIQiIQQQII", buf.raw)[5])


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "aarch64"),
    reason="sched_setattr is Linux's",
)
def test_the_calling_thread_gets_the_short_slice_and_others_do_not() -> None:
    got: dict[str, object] = {}

    def run() -> None:  # a thread of its own: the test runner's thread keeps its slice
        before = _slice_of_this_thread()
        got["ok"] = sched.short_slice()
        got["before"], got["after"] = before, _slice_of_this_thread()

    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    if not got["ok"]:  # a kernel before 6.12 takes the call but keeps its own slice
        pytest.skip("this kernel has no per-task slice")
    assert got["after"] == sched.RELAY_SLICE_NS
    assert got["before"] != sched.RELAY_SLICE_NS
    assert _slice_of_this_thread() != sched.RELAY_SLICE_NS


def test_never_raises_where_the_call_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sched.platform, "machine", lambda: "sparc")
    assert sched.short_slice() is False
