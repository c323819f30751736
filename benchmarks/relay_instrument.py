"""Run `python -m doctor ...` with the benchmark's instruments (for A/B runs of bench_relay):

    python benchmarks/relay_instrument.py GC_LOG SLICE_US -- watch ...

GC_LOG ("-" for none): the relay process's garbage-collector pauses (gc.callbacks), written
as JSON at exit. SLICE_US: the relay's scheduler slice (Linux 6.12+, sched_setattr's
sched_runtime for SCHED_OTHER) from its start, to see whether a shorter slice lets it
preempt what runs on its core when a frame arrives; 0: as the relay sets it itself
(doctor/watch/sched.py); -1: the relay's own request turned off (an A/B run's "before").
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
    from doctor.watch.sched import short_slice

    if not short_slice(us * 1000):
        return "sched_setattr failed or was ignored (kernel before 6.12, another policy)"
    return None


def log_gc(path: str) -> None:
    """Every collection as [monotonic start (s), generation, pause (ms)], written at exit:
    the benchmark keeps those inside its own window (CLOCK_MONOTONIC is system-wide)."""
    pauses: list[list[float]] = []
    start = [0.0]

    def cb(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            start[0] = time.monotonic()
        else:
            ms = (time.monotonic() - start[0]) * 1000
            pauses.append([start[0], int(info["generation"]), round(ms, 4)])

    gc.callbacks.append(cb)

    def dump() -> None:
        with open(path, "w") as fh:
            json.dump(pauses, fh)

    atexit.register(dump)


def main() -> None:
    gc_log, slice_us, sep, *rest = sys.argv[1:]
    assert sep == "--"
    if gc_log != "-":
        log_gc(gc_log)
    if int(slice_us) < 0:  # "before": the relay's own short-slice request turned off
        import doctor.watch.run

        doctor.watch.run.short_slice = lambda *_: False  # type: ignore[assignment]
    elif int(slice_us):
        import doctor.watch.run

        why = set_slice(int(slice_us))
        if why:
            print(f"relay_instrument: {why}", file=sys.stderr)
        # the relay asks for its own slice once its loop runs: that request gets ours
        doctor.watch.run.short_slice = lambda *_: set_slice(int(slice_us)) is None  # type: ignore[assignment]
    sys.argv = ["doctor", *rest]
    runpy.run_module("doctor", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
