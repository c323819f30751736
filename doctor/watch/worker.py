"""The worker process: writes the capture and runs the relay-only analysis, off the relay.

It runs below the relay, so under load the relay's forwarding wins the CPU: SCHED_BATCH
(the feed waking it never preempts the relay), its reader thread, which writes the
capture, at nice 5 (the capture must keep up: the relay buffers a bounded amount for it,
then drops and counts `capture_dropped`), and the analysis thread at nice 15 (Linux sets
priorities per thread), fed through a queue bounded in bytes and pausing while the reader
is behind (both share the interpreter). When the analysis falls behind, audio frames are
skipped for the analysis only and counted (`analysis_behind`), while every other record
(open/close, session.update, session.end, tool results) is analysed, or its absence would
become a false finding. Control records have a bound of their own, far above what any app
sends: past it the analysis stops rather than judge from a partial stream
(`analysis_behind`, with no relay findings; the capture goes on). When the analysis
raises, it stops and says so (`analysis_crashed`).
Notes and the final findings go back to the relay as JSON messages on a pipe.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import queue
import select
import signal
import threading
import time
from typing import Any

from doctor.capture.format import (
    AUDIO_FIELDS,
    ConnEvent,
    Frame,
    Header,
    audio_summary,
    encode,
    frame_from_message,
)
from doctor.watch.feed import KIND_OPEN, Item, Unpacker

AUDIO_QUEUE_BYTES = 8 * 1024 * 1024  # ~40 s of one session's audio both ways, or 2 s of 20
CONTROL_QUEUE_BYTES = 32 * 1024 * 1024  # past this the analysis stops (never reached by apps)
CAPTURE_NICE = 5  # the worker process and its reader thread, which writes the capture
# the analysis thread, this much nicer than the worker (relative, so a relay started with
# `nice -n 12` still keeps the analysis below its capture writer): what the others leave.
# Not SCHED_IDLE: an idle thread holding the interpreter starves the capture writer behind
# any busy process, and an unprivileged thread may not leave SCHED_IDLE again (RLIMIT_NICE)
ANALYSIS_NICER = 10
READ_BYTES = 1 << 20
CAPTURE_FIRST_S = 0.001  # the analysis's pause per record while the capture is behind
_STOP = object()


def for_capture(frame: Frame, audio: str) -> Frame:
    """The capture's copy of a frame whose audio was kept: summarised when asked."""
    if audio != "summary" or frame.msg is None:
        return frame
    field = AUDIO_FIELDS.get(str(frame.msg.get("type")))
    if not field or field not in frame.msg:
        return frame
    msg = dict(frame.msg)
    summary = audio_summary(msg.pop(field))
    summary["field"] = field
    return dataclasses.replace(frame, msg=msg, audio=summary)


# `json.dumps` with these options builds a new encoder per call (about half its time on a
# frame's line): one, made once, as `encode` in doctor.capture.format is configured
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def capture_line(record: Frame | ConnEvent, audio: str) -> str:
    """`encode(for_capture(record, audio))` without the intermediate frame: the same line,
    made once per frame on the worker's busiest path."""
    obj: dict[str, Any]
    if not isinstance(record, Frame):
        obj = {"t": record.t, "wall": record.wall, "conn": record.conn, "event": record.event}
        obj.update(record.details)
        return _ENCODE(obj)
    obj = {"t": record.t, "wall": record.wall, "conn": record.conn, "dir": record.dir}
    msg = record.msg
    field = AUDIO_FIELDS.get(str(msg.get("type"))) if msg is not None else None
    if (
        audio != "summary"
        or msg is None
        or not field
        or field not in msg
        or record.audio is not None
    ):
        for key in ("msg", "text", "length", "binary", "audio"):
            value = getattr(record, key)
            if value is not None:
                obj[key] = value
        return _ENCODE(obj)
    msg = dict(msg)
    summary = audio_summary(msg.pop(field))
    summary["field"] = field
    obj["msg"] = msg
    for key in ("text", "length", "binary"):
        value = getattr(record, key)
        if value is not None:
            obj[key] = value
    obj["audio"] = summary
    return _ENCODE(obj)


class Worker:
    """State of the worker process (also usable in-process, for tests and offline runs)."""

    def __init__(
        self,
        header: Header,
        capture_path: str | None,
        send: Any,
        echo: bool = True,
        analysis_nicer: int | None = None,
    ):
        from doctor.watch.observe import RelayObserver

        self.header = header
        self.send = send  # callable(dict): to the relay
        self.send_lock = threading.Lock()
        self.observer = RelayObserver(echo=echo)
        # issue 15's core, for its live lines only: one per open connection (one for all
        # looked a connection's segment up among every session's, per frame); None once it
        # failed
        self.sessions: dict[int, Any] | None = {}
        # bounded in bytes, counted on each side by its only writer (no lock needed):
        # audio is skipped past `audio_limit_bytes`, the analysis stops past
        # `control_limit_bytes`
        self.queue: queue.Queue[Any] = queue.Queue()
        self.audio_limit_bytes = AUDIO_QUEUE_BYTES
        self.control_limit_bytes = CONTROL_QUEUE_BYTES
        self.queued_bytes_in = 0  # written by handle() only
        self.queued_bytes_out = 0  # written by the analysis thread only
        self.max_queued_bytes = 0
        self.dropped = 0
        self.analysed = 0
        self.capture_behind = False  # set by the reader: more records are waiting
        self.skipped = 0  # written by the analysis thread only
        self.overrun = False  # control records had to be dropped: the analysis stopped
        self.crashed: str | None = None
        self.capture_failed: str | None = None  # apart from the analysis: it goes on
        self.capture = open(capture_path, "w", encoding="utf-8") if capture_path else None  # noqa: SIM115
        if self.capture is not None:
            self.capture.write(encode(header) + "\n")
        self.analysis_nicer = analysis_nicer
        self.thread = threading.Thread(target=self._analyse, name="analysis", daemon=True)
        self.thread.start()

    def _emit(self, obj: dict[str, Any]) -> None:
        with self.send_lock, contextlib.suppress(OSError, ValueError):
            self.send(obj)

    def handle(self, item: Item) -> None:
        t = item.t - self.header.started_mono
        record: Frame | ConnEvent
        raw = None
        if item.details is not None:
            event = "open" if item.kind == KIND_OPEN else "close"
            record = ConnEvent(t, item.wall, item.conn, event, item.details)  # type: ignore[arg-type]
        else:
            assert item.data is not None
            record = frame_from_message(t, item.wall, item.conn, item.direction, item.data, "keep")  # type: ignore[arg-type]
            raw = item.data if isinstance(item.data, str) else None
        # a refused upgrade is in the capture as its open event with `upstream_status`; a
        # close event with no code would read as a 1006 drop to the session analysis
        refused_close = (
            isinstance(record, ConnEvent)
            and record.event == "close"
            and bool(record.details.get("upstream_refused"))
        )
        if self.capture is not None and not refused_close:
            try:
                self.capture.write(capture_line(record, self.header.audio) + "\n")
            except OSError as exc:
                self._capture_failed(exc)
        if self.crashed:
            return
        if self.overrun:
            self.dropped += 1
            return
        self._enqueue(item.conn, record, raw, len(item.data) if item.data is not None else 256)

    def _enqueue(self, conn: int, record: Frame | ConnEvent, raw: str | None, size: int) -> None:
        """Hand a record to the analysis thread, within the queue's byte bounds."""
        queued = self.queued_bytes_in - self.queued_bytes_out
        self.max_queued_bytes = max(self.max_queued_bytes, queued)
        audio = isinstance(record, Frame) and str((record.msg or {}).get("type")) in AUDIO_FIELDS
        if audio and queued + size > self.audio_limit_bytes:
            self.dropped += 1
            if self.dropped == 1:
                self._emit(
                    {
                        "kind": "note",
                        "conn": conn,
                        "cause": "analysis_behind",
                        "level": "warn",
                        "text": "the analysis is behind: some audio frames are "
                        "forwarded and captured but not analysed (counted in the report)",
                    }
                )
            return
        if not audio and queued + size > self.control_limit_bytes:
            self.overrun = True  # judging from a stream with holes would invent findings
            self.dropped += 1
            self._emit(
                {
                    "kind": "note",
                    "conn": conn,
                    "cause": "analysis_behind",
                    "level": "warn",
                    "text": "the analysis fell too far behind and stopped: frames still "
                    "flow and are captured; the end report comes from the capture",
                }
            )
            return
        if audio:
            raw = None  # the parsed message holds the same text: keep one copy queued
        self.queued_bytes_in += size
        self.queue.put((record, raw, size))

    def _capture_failed(self, exc: OSError) -> None:
        """A capture that cannot be written (full disk...) stops; the analysis and the
        forwarding go on, and the report says the capture is incomplete."""
        self.capture_failed = (exc.strerror or type(exc).__name__)[:200]
        capture, self.capture = self.capture, None
        with contextlib.suppress(OSError, ValueError):
            if capture is not None:
                capture.close()
        self._emit(
            {
                "kind": "note",
                "conn": 0,
                "cause": "capture_failed",
                "level": "warn",
                "text": f"the capture stopped ({self.capture_failed}): the capture file is "
                "incomplete; frames still flow and the analysis goes on",
            }
        )

    def _analyse(self) -> None:
        if self.analysis_nicer:
            with contextlib.suppress(AttributeError, OSError):  # Linux: nice is per thread
                tid = threading.get_native_id()
                now = os.getpriority(os.PRIO_PROCESS, tid)
                os.setpriority(os.PRIO_PROCESS, tid, min(19, now + self.analysis_nicer))
        while True:
            got = self.queue.get()
            if got is _STOP:
                return
            record, raw, size = got
            self.queued_bytes_out += size
            if self.capture_behind:
                time.sleep(CAPTURE_FIRST_S)  # the capture's thread gets the interpreter
            if self.crashed:
                continue
            if self.overrun:
                self.skipped += 1  # queued before the stop: not analysed either
                continue
            try:
                notes = self.observer.feed(record, raw)
            except Exception as exc:  # the analysis must never stop the relay
                self.crashed = f"{type(exc).__name__}: {exc}"[:300]
                self._emit(
                    {
                        "kind": "note",
                        "conn": getattr(record, "conn", 0),
                        "cause": "analysis_crashed",
                        "level": "warn",
                        "text": f"the analysis stopped ({self.crashed}); frames still flow",
                    }
                )
                continue
            self.analysed += 1
            for note in notes:
                self._emit({"kind": "note", **note.to_dict()})
            self._session_notes(record)

    def _session_notes(self, record: Any) -> None:
        """The session analysis's live lines that the relay does not print itself (an
        interrupted reply and how far into it); its results come from the capture later."""
        sessions = self.sessions
        if sessions is None:
            return
        if isinstance(record, Frame) and (record.msg or {}).get("type") == "input.audio":
            return  # nothing live comes of it (see _session_analyzer)
        conn = getattr(record, "conn", 0)
        session = sessions.get(conn)
        if session is None:
            session = sessions[conn] = _session_analyzer()
            if session is None:
                self.sessions = None
                return
        try:
            texts = session.feed(record)
        except Exception:  # its failure costs only these lines; the end report says more
            self.sessions = None
            return
        if isinstance(record, ConnEvent) and record.event == "close":
            del sessions[conn]  # its live lines are over
        for text in texts:
            if text.startswith("reply interrupted"):
                label = self.observer.conns[conn].label if conn in self.observer.conns else ""
                self._emit(
                    {
                        "kind": "note",
                        "conn": conn,
                        "cause": "interruption",
                        "level": "info",
                        "text": f"{label or f'conn {conn}'}: {text}",
                    }
                )

    def finish(self) -> dict[str, Any]:
        self.queue.put(_STOP)
        self.thread.join()
        findings: list[dict[str, Any]] = []
        if not self.crashed and not self.overrun:
            try:
                findings = [dataclasses.asdict(f) for f in self.observer.finish()]
            except Exception as exc:
                self.crashed = f"{type(exc).__name__}: {exc}"[:300]
        if self.capture is not None:
            try:
                self.capture.close()
            except OSError as exc:
                self._capture_failed(exc)
        stats = self.observer.stats()
        stats.update(
            {
                "analysis_dropped_frames": self.dropped + self.skipped,
                "analysis_stopped_behind": self.overrun,
                "analysis_queue_peak_bytes": self.max_queued_bytes,
                "analysed_records": self.analysed,
                "analysis_crashed": self.crashed,
                "capture_failed": self.capture_failed,
            }
        )
        return {"kind": "results", "findings": findings, "stats": stats}


def _session_analyzer() -> Any:
    """Issue 15's core for its live lines only: its results come from the capture at the
    end, so it gets no app audio here (the validate-audio core it feeds would hold the
    app's audio for the rate estimate: ~3 MB and 0.3 s of CPU per session)."""
    try:
        cls, source = _live_session()
        return cls(source())
    except Exception:
        return None


@functools.cache
def _live_session() -> tuple[Any, Any]:
    from doctor.session.analyzer import SessionAnalyzer, Source

    class LiveSession(SessionAnalyzer):
        def _new(self, conn: int | None) -> Any:
            seg, col = super()._new(conn)
            col.audio_sink = None
            return seg, col

    return LiveSession, functools.partial(Source, shape="capture v1 (relay)")


def _handle_all(worker: Worker, unpacker: Unpacker, chunk: bytes) -> Exception | None:
    """Hand every whole record of `chunk` to the worker. One that fails (to parse or to be
    handled) is skipped and the records after it are still handled now, not held until the
    next read (the last read has none: a close event would be lost). The first error."""
    first: Exception | None = None
    while True:
        try:
            for item in unpacker.feed(chunk):
                worker.handle(item)
            return first
        except Exception as exc:  # each pass gets past at least the record that failed
            first = first or exc
            chunk = b""


def _more_waiting(fd: int) -> bool:
    """Whether the feed has more to read right now (the reader is behind)."""
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return False


def worker_main(
    feed_conn: Any, out_conn: Any, header: dict[str, Any], capture_path: str | None, echo: bool
) -> None:
    """Entry point of the worker process: read until the relay closes the feed."""
    # Ctrl-C on a terminal reaches the whole process group: the relay decides when to stop
    # (it closes the feed), the worker must not die with a traceback and lose the results.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(CAPTURE_NICE)
    # SCHED_BATCH (Linux): the worker never preempts the relay when the feed wakes it; it
    # runs when the relay waits. The analysis thread inherits it.
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    from doctor.capture.format import decode_header

    def send(obj: dict[str, Any]) -> None:
        out_conn.send_bytes(json.dumps(obj, default=str).encode())

    try:
        worker = Worker(decode_header(header), capture_path, send, echo, ANALYSIS_NICER)
    except OSError as exc:
        send(
            {
                "kind": "results",
                "findings": [],
                "stats": {"capture_failed": f"cannot write the capture: {exc.strerror or exc}"},
            }
        )
        return
    unpacker = Unpacker()
    fd = feed_conn.fileno()
    while True:
        try:
            chunk = os.read(fd, READ_BYTES)
        except OSError:
            break
        if not chunk:
            break
        # a full read means more is waiting: the analysis thread yields to this one (both
        # share the interpreter; a capture behind loses frames, an analysis behind skips
        # audio and says so)
        worker.capture_behind = len(chunk) == READ_BYTES
        failed = _handle_all(worker, unpacker, chunk)
        if failed is None:
            worker.capture_behind = _more_waiting(fd)  # not left set while the reader waits
        elif worker.crashed is None:  # a bad record or a full disk: say so, keep draining
            worker.crashed = f"{type(failed).__name__}: {failed}"[:300]
            send(
                {
                    "kind": "note",
                    "conn": 0,
                    "cause": "analysis_crashed",
                    "level": "warn",
                    "text": f"the capture/analysis stopped ({worker.crashed}); frames still flow",
                }
            )
    worker.capture_behind = False  # the feed ended: the analysis has the interpreter
    result = worker.finish()
    with contextlib.suppress(OSError):
        send(result)
