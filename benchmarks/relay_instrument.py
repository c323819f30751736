"""Run `python -m doctor ...` with the benchmark's instruments (for A/B runs of bench_relay):

    python benchmarks/relay_instrument.py GC_LOG SLICE_US -- watch ...

GC_LOG ("-" for none): the relay process's garbage-collector pauses (gc.callbacks), written
as JSON at exit: how many, their total and largest, per generation, and how many took over
0.5 ms. SLICE_US (0: the kernel's default): the relay's scheduler slice (Linux 6.12+,
sched_setattr's sched_runtime for SCHED_OTHER), to see whether a shorter slice lets it
preempt what runs on its core when a frame arrives.
"""

from __future__ import annotations

import atexit
import gc
import json
import runpy
import sys
import time
from typing import Any


def set_slice(us: int) -> str | None:
    """The calling thread's fair-scheduler slice; None, or why not."""
    import ctypes
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    attr = struct.pack("IIQiIQQQII", 56, 0, 0, 0, 0, us * 1000, 0, 0, 0, 0)
    buf = ctypes.create_string_buffer(attr)
    if libc.syscall(314, 0, buf, 0) != 0:  # SYS_sched_setattr on x86_64
        return f"sched_setattr failed (errno {ctypes.get_errno()})"
    return None


def log_gc(path: str) -> None:
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    start = [0.0]

    def cb(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            start[0] = time.perf_counter()
        else:
            pauses[int(info["generation"])].append((time.perf_counter() - start[0]) * 1000)

    gc.callbacks.append(cb)

    def dump() -> None:
        out = {
            str(g): {
                "n": len(p),
                "total_ms": round(sum(p), 3),
                "max_ms": round(max(p, default=0.0), 3),
                "over_0.5ms": sum(1 for x in p if x > 0.5),
            }
            for g, p in pauses.items()
        }
        with open(path, "w") as fh:
            json.dump(out, fh)

    atexit.register(dump)


def main() -> None:
    gc_log, slice_us, sep, *rest = sys.argv[1:]
    assert sep == "--"
    if gc_log != "-":
        log_gc(gc_log)
    if int(slice_us):
        why = set_slice(int(slice_us))
        if why:
            print(f"relay_instrument: {why}", file=sys.stderr)
    sys.argv = ["doctor", *rest]
    runpy.run_module("doctor", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
