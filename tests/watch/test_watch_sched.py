"""doctor/watch/sched.py: the relay thread asks for a short scheduler slice, best effort."""

from __future__ import annotations

import ctypes
import os
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


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "aarch64"),
    reason="sched_setattr is Linux's",
)
def test_the_thread_keeps_its_nice_value() -> None:
    """sched_setattr sets the nice value too: a relay started under `nice -n 10` stays at
    10 (it used to be put back to 0 as root, or refused the slice when unprivileged)."""
    got: dict[str, object] = {}

    def run() -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 7)  # this thread only
        got["ok"] = sched.short_slice()
        got["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        got["slice"] = sched.current_slice_ns()

    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    assert got["nice"] == 7
    if not got["ok"]:  # a kernel before 6.12 takes the call but keeps its own slice
        pytest.skip("this kernel has no per-task slice")
    assert got["slice"] == sched.RELAY_SLICE_NS


def test_a_thread_under_another_policy_is_left_alone() -> None:
    """An idle-policy relay (`chrt -i`) is not switched to the normal policy for a slice."""
    got: dict[str, object] = {}

    def run() -> None:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        got["ok"] = sched.short_slice()
        got["policy"] = os.sched_getscheduler(0)

    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    assert got == {"ok": False, "policy": os.SCHED_IDLE}
