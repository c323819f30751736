"""The relay thread's scheduler slice: short, so that a frame arriving finds it running soon.

Linux's fair scheduler (EEVDF, 6.6+) lets a task that is running keep the CPU for its slice
(0.75 ms x (1 + log2 CPUs) by default) before a task that just woke may take it, unless the
woken one asks for a shorter slice (6.12+: sched_setattr's `sched_runtime` for SCHED_OTHER,
allowed without privilege). The relay sleeps between frames and runs for tens of
microseconds per frame: with a 0.1 ms slice it takes the core from whatever else runs
there (other processes, its own worker) when a frame arrives, instead of waiting for that
one's slice to end. It gets no more CPU than before: only sooner.

The thread keeps its policy and nice value (sched_setattr sets both: they are read first
and passed back), and nothing is asked of a thread under another policy (idle, real time).
"""

from __future__ import annotations

import contextlib
import os
import platform
import struct
import sys

RELAY_SLICE_NS = 100_000  # the kernel's minimum
# (sched_setattr, sched_getattr) by machine
_SYSCALLS = {"x86_64": (314, 315), "aarch64": (274, 275)}
_ATTR = struct.Struct("IIQiIQQQII")  # struct sched_attr (version 1, 56 bytes)
_RESET_ON_FORK = 0x40000000  # or'd into the policy sched_getscheduler reports
_FLAG_RESET_ON_FORK = 0x01  # the same, as sched_attr's flag


def short_slice(slice_ns: int = RELAY_SLICE_NS) -> bool:
    """Ask for `slice_ns` for the calling thread (and the threads it starts later); True
    only if the kernel then reports a slice (it clamps to 0.1-100 ms). False where the
    system has no such thing (not Linux, a kernel before 6.12 that takes the call and
    ignores it, another policy, a nice value the process may not set again)."""
    numbers = _SYSCALLS.get(platform.machine())
    if not sys.platform.startswith("linux") or numbers is None:
        return False
    with contextlib.suppress(Exception):  # best effort: never a reason to stop the relay
        import ctypes

        raw = os.sched_getscheduler(0)
        policy = raw & ~_RESET_ON_FORK
        if policy not in (os.SCHED_OTHER, os.SCHED_BATCH):
            return False
        flags = _FLAG_RESET_ON_FORK if raw & _RESET_ON_FORK else 0  # kept as it was
        nice = os.getpriority(os.PRIO_PROCESS, 0)  # this thread's (Linux: per thread)
        libc = ctypes.CDLL(None, use_errno=True)
        fields = (_ATTR.size, policy, flags, nice, 0, slice_ns, 0, 0, 0, 0)
        attr = ctypes.create_string_buffer(_ATTR.pack(*fields))
        if libc.syscall(numbers[0], 0, attr, 0) != 0:
            return False
        return bool(current_slice_ns())  # 0: ignored; else applied (clamped to 0.1-100 ms)
    return False


def current_slice_ns() -> int | None:
    """The calling thread's `sched_runtime` as the kernel reports it (0 before 6.12)."""
    numbers = _SYSCALLS.get(platform.machine())
    if not sys.platform.startswith("linux") or numbers is None:
        return None
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(_ATTR.size)
        if libc.syscall(numbers[1], 0, buf, _ATTR.size, 0) != 0:
            return None
        return int(_ATTR.unpack(buf.raw)[5])
    return None
