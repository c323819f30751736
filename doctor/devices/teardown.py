"""Closing PortAudio without waiting forever on a sound server that stopped answering.

A PulseAudio (or PipeWire) server that freezes or dies mid-stream leaves the ALSA `pulse`
plugin waiting for it with no timeout: `Stream.stop()` never returns, and neither does
sounddevice's own atexit handler (stop + close of the last stream, then `Pa_Terminate`),
so the CLI hung after printing its report and ignored Ctrl-C (the main thread was in C).
Both calls run here in a daemon thread with a deadline; past it the thread is abandoned
(the kernel closes the sockets when the process exits).
"""

from __future__ import annotations

import atexit
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")

EXIT_DEADLINE_S = 3.0


class Stuck(Exception):
    """A call into the audio stack did not return within its deadline."""


def call_within(fn: Callable[[], T], seconds: float, name: str) -> T:
    """`fn()` in a daemon thread: its value or its exception, or `Stuck` past `seconds`
    (the thread is abandoned, blocked where it is)."""
    box: list[Any] = []
    finished = threading.Event()

    def work() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:  # handed to the caller
            box.append((False, exc))
        finally:
            finished.set()

    threading.Thread(target=work, name=f"doctor-{name}", daemon=True).start()
    if not finished.wait(seconds):
        raise Stuck(f"{name} did not return within {seconds:g} s")
    ok, value = box[0]
    if not ok:
        raise value
    return cast(T, value)


def within(fn: Callable[[], Any], seconds: float, name: str) -> bool:
    """True when `fn()` returned or raised within `seconds`; Ctrl-C stops the wait."""
    try:
        call_within(fn, seconds, name)
    except (Stuck, KeyboardInterrupt):
        return False
    except Exception:  # it returned: a failed close is still a close
        pass
    return True


def _bounded_exit_handler() -> None:
    sd = sys.modules.get("sounddevice")
    handler = getattr(sd, "_exit_handler", None)
    if handler is None:
        return
    if not within(handler, EXIT_DEADLINE_S, "portaudio-exit"):
        sys.stderr.write(
            "agent-doctor: the sound server did not answer; left without closing the audio device\n"
        )
        sys.stderr.flush()


def bound_portaudio_exit() -> None:
    """Replace sounddevice's atexit handler (if it is loaded) by the bounded one; idempotent."""
    sd = sys.modules.get("sounddevice")
    handler = getattr(sd, "_exit_handler", None)
    if handler is None:
        return
    atexit.unregister(handler)
    atexit.unregister(_bounded_exit_handler)
    atexit.register(_bounded_exit_handler)
