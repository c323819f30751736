"""The relay's scheduler requests (doctor/watch/sched.py), on this machine's real kernel."""

from __future__ import annotations

import os
import threading

from doctor.watch.sched import idle_thread

_SYS_SCHED_GETATTR = {"x86_64": 315, "aarch64": 275}


def _in_thread(fn: object) -> list[object]:
    """Run `fn` in a new thread (the requests are per thread: this one stays as it is)."""
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(fn()))  # type: ignore[operator]
    t.start()
    t.join(30)
    return out


def test_a_thread_goes_idle_and_back_to_batch() -> None:
    def switch() -> tuple[bool, int, bool, int]:
        idle = idle_thread()
        first = os.sched_getscheduler(0)
        back = idle_thread(0, idle=False)
        return idle, first, back, os.sched_getscheduler(0)

    assert _in_thread(switch) == [(True, os.SCHED_IDLE, True, os.SCHED_BATCH)]
