"""Scheduler requests that keep the relay's latency tail short on a busy machine (Linux).

Measured (benchmarks/bench_relay.py, per-probe /proc schedstat): the relay's slow frames
are frames during which its event-loop thread was runnable but waiting for the CPU, behind
its own worker or any other process on that core; its own receive-to-write time stays
under 0.5 ms. Linux 6.6+ schedules with EEVDF, where nice changes a task's share but hardly
its wake-up delay: the running task keeps the CPU until its slice (~1.4 ms here) ends. Two
requests, both allowed without privileges and both best effort (nothing happens elsewhere):

- the relay's thread asks for a short slice (`sched_setattr`, 6.12+): a waking task with a
  shorter slice than the running one preempts it at once;
- the analysis thread runs under SCHED_IDLE: any normal task waking on its core preempts it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import struct

RELAY_SLICE_NS = 100_000  # the kernel's lower bound (0.1 ms)
_SYS_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}
_ATTR = struct.Struct("IIQiIQQQII")  # struct sched_attr, SCHED_ATTR_SIZE_VER1 (56 bytes)


def short_slice(slice_ns: int = RELAY_SLICE_NS) -> bool:
    """Ask for a short EEVDF slice for the calling thread (its policy and nice kept).
    False where the kernel or the platform has no such request."""
    nr = _SYS_SCHED_SETATTR.get(platform.machine())
    if nr is None or not hasattr(os, "getpriority"):
        return False
    with contextlib.suppress(OSError, AttributeError, ValueError):
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            return False
        nice = os.getpriority(os.PRIO_PROCESS, 0)
        attr = ctypes.create_string_buffer(
            _ATTR.pack(_ATTR.size, 0, 0, nice, 0, slice_ns, 0, 0, 0, 0), _ATTR.size
        )
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.syscall(nr, 0, attr, 0) == 0)
    return False


def idle_thread(tid: int = 0, idle: bool = True) -> bool:
    """Run a thread (0: the calling one) under SCHED_IDLE, or back under SCHED_BATCH."""
    with contextlib.suppress(AttributeError, OSError):
        policy = os.SCHED_IDLE if idle else os.SCHED_BATCH
        os.sched_setscheduler(tid, policy, os.sched_param(0))
        return True
    return False
