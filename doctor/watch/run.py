"""One watch: the worker process, the relay, the stop conditions, and what came back.

The shell around the pure parts: it starts the worker (capture and analysis, at a lower
priority), the relay on the event loop, prints the live lines on stderr, stops on Ctrl-C,
after N connections or after a time, and returns the worker's findings and the relay's
figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from doctor import __version__
from doctor.capture.format import AudioMode, Header
from doctor.watch.feed import FeedWriter
from doctor.watch.relay import Relay, Upstream
from doctor.watch.sched import short_slice

RESULTS_TIMEOUT_S = 120.0


@dataclass
class WatchOutcome:
    findings: list[dict[str, Any]] = field(default_factory=list)
    worker_stats: dict[str, Any] = field(default_factory=dict)
    relay_stats: dict[str, Any] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    stopped_by: str = ""
    sessions: list[dict[str, Any]] = field(default_factory=list)  # the session analysis's
    input_notes: list[str] = field(default_factory=list)


class _WorkerHandle:
    """The worker process and the thread that reads what it says."""

    def __init__(
        self,
        header: Header,
        capture_path: str | None,
        echo: bool,
        on_note: Callable[[dict[str, Any]], None],
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        feed_r, self.feed_w = ctx.Pipe(duplex=False)
        self.out_r, out_w = ctx.Pipe(duplex=False)
        from doctor.watch.worker import worker_main

        self.proc = ctx.Process(
            target=worker_main,
            args=(feed_r, out_w, header.to_json(), capture_path, echo),
            name="agent-doctor-watch-analysis",
            daemon=True,
        )
        # The worker ignores SIGINT from its first instruction (an ignored signal stays
        # ignored across exec, and Python keeps it so): Ctrl-C reaches the whole process
        # group, and only the relay decides when the worker stops.
        try:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread: nothing to protect
            previous = None
        try:
            self.proc.start()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        feed_r.close()
        out_w.close()
        self.on_note = on_note
        self.result: dict[str, Any] | None = None
        self.done = threading.Event()
        self.reader = threading.Thread(target=self._read, name="watch-notes", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            while True:
                try:
                    raw = self.out_r.recv_bytes()
                except (EOFError, OSError):
                    return
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                if msg.get("kind") == "results":
                    self.result = msg
                elif msg.get("kind") == "note":
                    self.on_note(msg)
        finally:
            self.done.set()

    def feed_file(self) -> Any:
        """The feed's write end as a file object for the loop's write-pipe transport."""
        fd = os.dup(self.feed_w.fileno())
        self.feed_w.close()
        return os.fdopen(fd, "wb", buffering=0)

    def wait(self, timeout: float) -> dict[str, Any] | None:
        self.done.wait(timeout)
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        return self.result


async def watch(
    upstream: Upstream,
    *,
    port: int = 0,
    capture_path: str,
    audio: AudioMode = "keep",
    sessions: int | None = None,
    seconds: float | None = None,
    echo: bool = True,
    on_secret: Callable[[str, str], None] | None = None,
    line: Callable[[str], None] | None = None,
    on_ready: Callable[[Relay], None] | None = None,
) -> WatchOutcome:
    """Run the relay until Ctrl-C (SIGINT/SIGTERM), `sessions` closed connections or
    `seconds`; then collect the worker's findings."""
    out = WatchOutcome()
    say = line or (lambda text: print(text, file=sys.stderr, flush=True))
    t0 = time.monotonic()
    loop = asyncio.get_running_loop()

    lock = threading.Lock()

    def stamp(text: str) -> None:
        with lock:
            say(f"[{time.monotonic() - t0:7.1f}s] {text}")

    def on_note(msg: dict[str, Any]) -> None:  # on the note reader's thread
        out.notes.append(msg)
        stamp(str(msg.get("text")))

    header = Header(time.time(), time.monotonic(), audio, upstream.ws_url, __version__)
    worker = _WorkerHandle(header, capture_path, echo, on_note)
    feed = FeedWriter()
    await feed.attach(worker.feed_file())
    stop = asyncio.Event()

    def closed(n: int) -> None:
        if sessions is not None and n >= sessions:
            out.stopped_by = out.stopped_by or f"{n} connections closed"
            stop.set()

    relay = Relay(
        upstream, port=port, feed=feed, on_line=stamp, on_secret=on_secret, on_closed=closed
    )
    try:
        await relay.start()
    except OSError as exc:
        feed.close()
        worker.wait(10)
        raise WatchStartError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    out.port = relay.port
    # What exists now lives as long as the relay: out of the collector's sight, a full
    # collection (which pauses forwarding) walks only what the sessions allocate.
    gc.collect()
    gc.freeze()
    short_slice()  # this thread runs the event loop: a frame that arrives finds it sooner
    if on_ready is not None:
        on_ready(relay)
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, _stopper(stop, out, sig))
            installed.append(sig)
    try:
        if seconds is not None:
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)
            out.stopped_by = out.stopped_by or f"{seconds:g} s elapsed"
        else:
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await relay.stop()
        feed.close()
        out.relay_stats = relay.stats.to_dict(feed)
        result = await asyncio.get_running_loop().run_in_executor(
            None, worker.wait, RESULTS_TIMEOUT_S
        )
    if result is None:
        out.worker_stats = {
            "analysis_crashed": "the analysis process ended without results "
            f"(exit code {worker.proc.exitcode})"
        }
    else:
        out.findings = list(result.get("findings") or [])
        out.worker_stats = dict(result.get("stats") or {})
    return out


class WatchStartError(Exception):
    """The relay could not start (port in use...): one line for the user."""


def _stopper(stop: asyncio.Event, out: WatchOutcome, sig: int) -> Callable[[], None]:
    def fire() -> None:
        out.stopped_by = out.stopped_by or ("Ctrl-C" if sig == signal.SIGINT else "SIGTERM")
        stop.set()

    return fire
