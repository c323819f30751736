"""Leave the process as soon as the report is out, without the interpreter's teardown.

Once `all` or `check` has printed its report, the verdict is given; what is left is
freeing every module (numpy, scipy, httpx...). On a busy machine that took 0.2-0.85 s
(issue 13: every verdict within `--timeout` + 2 s, and `all --timeout 3` against a silent
endpoint in under 5 s, start-up and exit included). The atexit handlers still run
(logging, `weakref.finalize`, coverage), and a live non-daemon thread keeps the normal
exit, which waits for it. Only the program itself exits this way (`main()` with no
arguments), never a caller that runs the CLI in-process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading

_report_out = False


def report_is_out() -> None:
    """The report is printed and written: nothing the user needs remains to be done."""
    global _report_out
    _report_out = True


def exit_now_if_done(code: object) -> None:
    """`os._exit(code)` after the atexit handlers, when the report is out and no
    non-daemon thread is alive; otherwise return (the caller re-raises its SystemExit)."""
    if not _report_out:
        return
    main = threading.main_thread()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not main):
        return
    exit_now(code if isinstance(code, int) else 0 if code is None else 1)


def exit_now(code: int) -> None:
    """The atexit handlers, the streams flushed, then `os._exit(code)`. Also for Ctrl-C:
    a daemon thread blocked reading stdin holds its lock, and the interpreter's teardown
    then aborts ("could not acquire lock for <stdin>", exit 134 instead of 130). PortAudio's
    own teardown gets a deadline: a frozen sound server would hold it forever."""
    from doctor.devices.teardown import bound_portaudio_exit

    bound_portaudio_exit()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
