"""The relay's scheduler requests (doctor/watch/sched.py), on this machine's real kernel."""

from __future__ import annotations

import ctypes
import os
import platform
import threading

import pytest

from doctor.watch.sched import _ATTR, RELAY_SLICE_NS, idle_thread, short_slice

_SYS_SCHED_GETATTR = {"x86_64": 315, "aarch64": 275}


def _slice_ns() -> int:
    """The calling thread's requested slice (sched_attr.sched_runtime)."""
    buf = ctypes.create_string_buffer(_ATTR.size)
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(_SYS_SCHED_GETATTR[platform.machine()], 0, buf, _ATTR.size, 0) == 0
    return int(_ATTR.unpack(buf.raw)[5])


def _in_thread(fn: object) -> list[object]:
    """Run `fn` in a new thread (the requests are per thread: this one stays as it is)."""
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(fn()))  # type: ignore[operator]
    t.start()
    t.join(30)
    return out


def _kernel_has_custom_slices() -> bool:
    major, minor = (int(x) for x in platform.release().split(".")[:2])
    return (major, minor) >= (6, 12)


@pytest.mark.skipif(
    platform.machine() not in _SYS_SCHED_GETATTR or not _kernel_has_custom_slices(),
    reason="custom EEVDF slices need Linux 6.12+ on x86_64 or aarch64",
)
def test_the_relay_thread_gets_the_short_slice_it_asks_for_and_keeps_its_nice() -> None:
    nicer = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 1)  # raising it needs no privilege

    def ask() -> tuple[bool, int, int]:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nicer)
        done = short_slice()
        return done, _slice_ns(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert _in_thread(ask) == [(True, RELAY_SLICE_NS, nicer)]
    assert _slice_ns() != RELAY_SLICE_NS  # the caller's thread is unchanged


def test_a_thread_goes_idle_and_back_to_batch() -> None:
    def switch() -> tuple[bool, int, bool, int]:
        idle = idle_thread()
        first = os.sched_getscheduler(0)
        back = idle_thread(0, idle=False)
        return idle, first, back, os.sched_getscheduler(0)

    assert _in_thread(switch) == [(True, os.SCHED_IDLE, True, os.SCHED_BATCH)]
