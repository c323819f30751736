"""The relay thread's scheduler slice: short, so that a frame arriving finds it running soon.

Linux's fair scheduler (EEVDF, 6.6+) lets a task that is running keep the CPU for its slice
(0.75 ms x (1 + log2 CPUs) by default) before a task that just woke may take it, unless the
woken one asks for a shorter slice (6.12+: sched_setattr's `sched_runtime` for SCHED_OTHER,
allowed without privilege). The relay sleeps between frames and runs for tens of
microseconds per frame: with a 0.1 ms slice it takes the core from whatever else runs
there (other processes, its own worker) when a frame arrives, instead of waiting for that
one's slice to end. It gets no more CPU than before: only sooner.
"""

from __future__ import annotations

import contextlib
import platform
import struct
import sys

RELAY_SLICE_NS = 100_000  # the kernel's minimum
_SYS_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}
_ATTR = struct.Struct("IIQiIQQQII")  # struct sched_attr (version 1, 56 bytes)


def short_slice(slice_ns: int = RELAY_SLICE_NS) -> bool:
    """Ask for `slice_ns` for the calling thread (and the threads it starts later); False
    where the system has no such thing (not Linux, an older kernel, another policy)."""
    number = _SYS_SCHED_SETATTR.get(platform.machine())
    if not sys.platform.startswith("linux") or number is None:
        return False
    with contextlib.suppress(Exception):  # best effort: never a reason to stop the relay
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        attr = ctypes.create_string_buffer(_ATTR.pack(_ATTR.size, 0, 0, 0, 0, slice_ns, 0, 0, 0, 0))
        return bool(libc.syscall(number, 0, attr, 0) == 0)
    return False
