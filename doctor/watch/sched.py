"""Scheduler requests that keep the relay's latency tail short on a busy machine (Linux).

Measured (benchmarks/bench_relay.py, per-probe /proc schedstat): the relay's slow frames
are frames during which its event-loop thread was runnable but waiting for the CPU, behind
its own worker or any other process on that core; its own receive-to-write time stays
under 0.5 ms. Linux 6.6+ schedules with EEVDF, where nice changes a task's share but hardly
its wake-up delay: the running task keeps the CPU until its slice (~1.4 ms here) ends. So
the analysis thread runs under SCHED_IDLE (allowed without privileges, best effort): any
normal task waking on its core, the relay first, preempts it at once. (A short EEVDF slice
for the relay's own thread, `sched_setattr` on 6.12+, was tried: 4 paired runs showed no
effect, so it is not asked for.)
"""

from __future__ import annotations

import contextlib
import os
import struct

RELAY_SLICE_NS = 100_000  # the kernel's lower bound (0.1 ms)
_SYS_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}
_ATTR = struct.Struct("IIQiIQQQII")  # struct sched_attr, SCHED_ATTR_SIZE_VER1 (56 bytes)


def idle_thread(tid: int = 0, idle: bool = True) -> bool:
    """Run a thread (0: the calling one) under SCHED_IDLE, or back under SCHED_BATCH."""
    with contextlib.suppress(AttributeError, OSError):
        policy = os.SCHED_IDLE if idle else os.SCHED_BATCH
        os.sched_setscheduler(tid, policy, os.sched_param(0))
        return True
    return False
