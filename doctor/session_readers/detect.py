"""Which input is this, and the reader for it: a folder of vendor artifacts, an app's JSON
array or JSON lines, a capture, a timeline, a recording, or not a session log at all.

`analyze_path` is the one entry point the commands use (`analyze`, `session`): it says
which shape it found through `note` and returns the findings of every session inside.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import sys
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from doctor.json_numbers import bad_numbers_note
from doctor.session.analyzer import SessionAnalyzer, SessionFindings, Source
from doctor.session.app_artifact import artifact_session, is_app_artifact
from doctor.session.events import Event
from doctor.session.harness import harness_sessions, is_harness_report
from doctor.session.recording import RecordingSummary, align
from doctor.session.timeline import agent_spans, timeline_events
from doctor.session_readers.applog import (
    bad_times,
    is_session_type,
    looks_like_protocol,
    to_event,
    unread_times,
)
from doctor.session_readers.capture import capture_events
from doctor.session_readers.jsonstream import Note, array_elements, json_lines
from doctor.session_readers.offsets import parse_go_duration, with_offsets
from doctor.session_readers.recording import read_recording

SNIFF_BYTES = 8192
WHOLE_JSON_LIMIT = 64 << 20
AUDIO_MAGIC = (b"OggS", b"RIFF", b"fLaC")
NOT_SESSION_AFTER = 200
"""Entries read without one Voice Agent event: the file is some other log (§7.4)."""

Progress = Callable[[float], None]
SHAPE_SAMPLE = 20
"""Entries the log's shape (nesting, receive time, direction marker) is read from."""
MAX_BAD_TIME_NOTES = 20
"""Entries whose bad time fields are named one by one; the rest are counted."""
MAX_UNREAD_TIME_NOTES = 3
"""Entries whose unreadable receive time is named (a logger writes every line alike)."""


def _sniff(path: str) -> tuple[str, bytes]:
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if head.startswith(AUDIO_MAGIC):
        return "recording", head
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        return "empty", head
    if text[:1] == b"[":
        return "array", head
    if text[:1] == b"{":
        first = text.split(b"\n", 1)[0]
        try:
            obj = json.loads(first)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return "document", head
        except RecursionError:
            return "jsonl", head  # one deep line: the line reader skips it with a note
        if isinstance(obj, dict) and obj.get("capture") == "agent-doctor":
            return "capture", head
        if isinstance(obj, dict) and (
            "turns" in obj
            or "channel_layout" in obj
            or is_harness_report(obj)
            or is_app_artifact(obj)
        ):
            return "document", head
        return "jsonl", head
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head[:2048])
    if printable < 0.9 * min(len(head), 2048):
        return "binary", head
    return "jsonl", head


def _region(url: str) -> str | None:
    host = urllib.parse.urlsplit(url).hostname or ""
    if not host:
        return None
    return "eu" if ".eu." in host else "us" if host.endswith("assemblyai.com") else host


class _Counter:
    def __init__(self) -> None:
        self.entries = 0
        self.events = 0
        self.other = 0
        self.keys: list[str] = []
        self.sample: list[dict[str, Any]] = []  # the first SHAPE_SAMPLE such entries
        self.lines = False  # JSON lines: a line may hold a batch (an array) of events
        self.bad_times = 0  # entries with a time that is not a finite number
        self.unread_times = 0  # entries with a receive time that is not a time we know


def _flatten(values: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """A line that is a JSON array (a batch of events) counts as its elements."""
    for line, obj in values:
        if isinstance(obj, list):
            for item in obj:
                yield line, item
        else:
            yield line, obj


def _log_events(values: Iterator[tuple[int, Any]], c: _Counter, note: Note) -> Iterator[Event]:
    """Voice Agent events, and messages the service would not know that the core judges
    (unknown_message): whatever the app marked as sent, and dotted lower-case types once the
    log has shown it is a session log (until then they wait, so other logs stay skipped)."""
    waiting: list[Event] = []
    for line, obj in with_offsets(_flatten(values) if c.lines else values, note):
        c.entries += 1
        ev = to_event(obj, line)
        bad = bad_times(obj) if ev is not None and isinstance(obj, dict) else []
        if bad:
            c.bad_times += 1
            if c.bad_times <= MAX_BAD_TIME_NOTES:
                where = f"line {line}" if c.lines else f"element {line}"
                note(f"{where}: {', '.join(bad)}: not a finite number; dropped")
            elif c.bad_times == MAX_BAD_TIME_NOTES + 1:
                note("more entries have times that are not finite numbers; not listing them")
        # only when no receive time was read: a time parsed once per entry, not twice
        unread = (
            unread_times(obj)
            if ev is not None and ev.recv_t is None and isinstance(obj, dict)
            else []
        )
        if unread:
            c.unread_times += 1
            if c.unread_times <= MAX_UNREAD_TIME_NOTES:
                where = f"line {line}" if c.lines else f"element {line}"
                note(
                    f"{where}: {', '.join(unread)}: not a time this reader knows (ISO 8601, "
                    "epoch s, ms, µs or ns); read as no receive time"
                )
        known = ev is not None and is_session_type(ev.type)
        if ev is not None and not known and ev.direction == "app":
            known = True  # the app says it sent this: an unknown or mistyped message
        if ev is not None and not known and looks_like_protocol(ev.type):
            if c.events:
                known = True
            elif len(waiting) < NOT_SESSION_AFTER:
                waiting.append(ev)
                continue
        if ev is None or not known:
            c.other += 1
            if not c.keys and isinstance(obj, dict):
                c.keys = [json.dumps(k, ensure_ascii=True)[:30] for k in sorted(obj)[:8]]
            if c.events == 0 and c.entries >= NOT_SESSION_AFTER:
                c.other += len(waiting)
                return
            continue
        if waiting:
            c.events += len(waiting)
            yield from waiting
            waiting = []
        c.events += 1
        if ev.direction != "meta" and isinstance(obj, dict) and len(c.sample) < SHAPE_SAMPLE:
            c.sample.append(obj)
        yield ev
    c.other += len(waiting)


def _describe_log(kind: str, sample: list[dict[str, Any]]) -> str:
    """The log's shape from its first entries (a first line may lack what later ones have)."""
    if not sample:
        return kind
    first: dict[str, Any] = {}
    for entry in reversed(sample):  # the earliest entry's keys win, the others fill in
        first.update(entry)
    nested = next(
        (
            k
            for k in ("event", "message", "msg", "data", "payload")
            if isinstance(first.get(k), dict)
        ),
        None,
    )
    tkey = next(
        (k for k in ("received_at", "at", "sent_at", "logged_at", "ts", "time") if k in first), None
    )
    dkey = next((k for k in ("direction", "dir", "from", "source", "side") if k in first), None)
    parts = [f"event under '{nested}'" if nested else "events inline"]
    if tkey:
        parts.append(f"receive time '{tkey}'")
    elif parse_go_duration(first.get("offset")) is not None:
        parts.append("receive time from 'offset' (Go duration)")
    else:
        parts.append("no receive time")
    if tkey and "offset" in first:
        parts.append("offset")
    parts.append(f"direction '{dkey}'" if dkey else "no direction marker")
    return f"{kind} ({', '.join(parts)})"


class _Progress:
    """Bytes read to a fraction, reported every 1/1000 of the file (not per line)."""

    def __init__(self, total: int, report: Progress | None) -> None:
        self.total, self.done, self.report = max(1, total), 0, report
        self.step = max(1, self.total // 1000)
        self.next_at = 0

    def __call__(self, n: int) -> None:
        self.done += n
        if self.report is not None and (self.done >= self.next_at or not n):
            self.next_at = self.done + self.step
            self.report(min(1.0, self.done / self.total))


def _named(path: str, note: Note) -> Note:
    """The reader's notes with the file name in front: with several inputs, a bare
    "line 4: not JSON" names no file."""

    def named(line: str) -> None:
        note(line if line.startswith(path + ":") else f"{path}: {line}")

    return named


def _run_log(path: str, kind: str, note: Note, progress: Progress | None) -> list[SessionFindings]:
    note = _named(path, note)
    size = os.path.getsize(path)
    prog = _Progress(size, progress)
    counter = _Counter()
    with open(path, "rb") as fh:
        values: Iterator[tuple[int, Any]]
        if kind == "array":
            text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace")
            values = array_elements(text, note, prog)
            label = "JSON array of events"
        else:
            values = json_lines(fh, note, prog)
            label = "JSON lines"
            counter.lines = True
        analyzer = SessionAnalyzer(Source(shape=label, path=path))
        for ev in _log_events(values, counter, note):
            analyzer.feed(ev)
    shape = analyzer.source.shape = _describe_log(label, counter.sample)
    if counter.events == 0:
        keys = f" (entries have {', '.join(counter.keys)})" if counter.keys else ""
        note(f"{path}: not a session log: no Voice Agent events{keys}")
        return []
    note(f"{path}: {shape}, {counter.events} events")
    if counter.unread_times > MAX_UNREAD_TIME_NOTES:
        note(f"{path}: {counter.unread_times} entries in all have a receive time it cannot read")
    if counter.other:
        note(f"{path}: {counter.other} entries are not Voice Agent events; skipped")
    for line in analyzer.notes:
        note(line)
    return analyzer.finish()


def _run_capture(path: str, note: Note, progress: Progress | None) -> list[SessionFindings]:
    note = _named(path, note)
    prog = _Progress(os.path.getsize(path), progress)
    with open(path, "rb") as fh:
        header, events = capture_events(fh, note, prog)
        if header is None:
            return []
        shape = f"capture v{header.version} (audio {header.audio})"
        analyzer = SessionAnalyzer(
            Source(shape=shape, path=path, region=_region(header.upstream), sent_logged=True)
        )
        n = 0
        for ev in events:
            analyzer.feed(ev)
            n += 1
    note(f"{path}: {shape}, {n} records")
    return analyzer.finish()


class _ExtraData(Exception):
    """More JSON after the first value: JSON lines whose first line outgrew the sniff."""


def _load_document(path: str, note: Note, lines_ok: bool = False) -> dict[str, Any] | None:
    if os.path.getsize(path) > WHOLE_JSON_LIMIT:
        note(f"{path}: a single JSON document over 64 MB: not a timeline or metadata file")
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        if lines_ok and isinstance(exc, json.JSONDecodeError) and exc.msg == "Extra data":
            raise _ExtraData from None
        why = "nested too deeply to read" if isinstance(exc, RecursionError) else exc
        note(f"{path}: not valid JSON ({why}); skipped")
        return None
    if not isinstance(doc, dict):
        note(f"{path}: a JSON document that is not a timeline or metadata; skipped")
        return None
    bad = bad_numbers_note(doc)
    if bad is not None:
        note(f"{path}: {bad}")
    return doc


def analyze_artifacts(
    timeline: dict[str, Any] | None,
    metadata: dict[str, Any] | None,
    recording: RecordingSummary | None,
    path: str,
    note: Note,
) -> list[SessionFindings]:
    """One vendor session from its artifacts (any of them may be missing)."""
    have = [
        n
        for n, x in (("timeline", timeline), ("metadata", metadata), ("recording", recording))
        if x is not None
    ]
    shape = "vendor artifacts (" + ", ".join(have) + ")"
    dropped = metadata.get("dropped_chunks") if metadata else None
    if isinstance(dropped, int) and not isinstance(dropped, bool) and dropped > 0:
        note(
            f"{path}: the recording lost {dropped} upload chunk(s) (metadata dropped_chunks): "
            "its gaps are the upload's, not the call's"
        )
    analyzer = SessionAnalyzer(
        Source(shape=shape, path=path, vendor_artifacts=True, sent_logged=timeline is not None)
    )
    if recording is not None and recording.echo is not None:
        analyzer.add_echo(recording.echo)
    events = timeline_events(timeline) if timeline is not None else []
    if timeline is None:
        sid = metadata.get("session_id") if metadata else None
        note(f"{path}: no timeline: only the recording's echo measurement is possible")
        from doctor.session.events import make_event

        events = [make_event({"type": "session.ready", "session_id": sid}, "service", None)]
    for ev in events:
        analyzer.feed(ev)
    found = analyzer.finish()
    if timeline is None:  # a recording alone tells about echo, nothing else
        for f in found:
            f.results = [r for r in f.results if r.id == "session-echo"]
    if recording is not None and timeline is not None:
        audible = [r.audible_t for f in found for r in f.segment.replies if r.audible_t]
        shift = align(recording.agent_onsets_s, audible)
        for f in found:
            f.recording, f.recording_offset_s = recording, shift
    elif recording is not None:
        for f in found:
            f.recording = recording
    return found


def analyze_harness(doc: dict[str, Any], path: str, note: Note) -> list[SessionFindings]:
    """Every session of an app's test-harness report (§7.3 (a)): client-clock events, and
    the checks such a report cannot show named as not judged."""
    found: list[SessionFindings] = []
    sessions = harness_sessions(doc)
    for hs in sessions:
        found += _client_clock_findings(
            f"harness report ({hs.variant})",
            path,
            hs.cannot_judge,
            hs.events,
            [f"{path}: {hs.session_id or 'a session'}: {line}" for line in hs.notes],
        )
    n = len(sessions)
    note(
        f"{path}: harness report ({sessions[0].variant if sessions else 'empty'}), "
        f"{n} session{'' if n == 1 else 's'}; no audio or close codes: the latency to audible "
        "speech and the app's audio are not judged"
    )
    return found


def analyze_app_artifact(doc: dict[str, Any], path: str, note: Note) -> list[SessionFindings]:
    """An app's own session artifact (§7.3 (b)): its turn events on the app's clock."""
    art = artifact_session(doc)
    shape = "app session artifact"
    found = _client_clock_findings(
        shape, path, art.cannot_judge, art.events, [f"{path}: {line}" for line in art.notes]
    )
    note(
        f"{path}: {shape}, {len(art.events)} events; no audio, errors or vendor session id: "
        "latency, the app's audio, errors and billing are not judged"
    )
    return found


def _client_clock_findings(
    shape: str, path: str, cannot_judge: Any, events: Any, notes: list[str]
) -> list[SessionFindings]:
    """One session's findings from a report the app wrote itself (sends logged, no end)."""
    analyzer = SessionAnalyzer(
        Source(
            shape=shape, path=path, sent_logged=True, end_logged=False, cannot_judge=cannot_judge
        )
    )
    for ev in events:
        analyzer.feed(ev)
    for line in notes:
        analyzer.note(line)
    return analyzer.finish()


Roles = dict[str, str]


def _classify_folder(
    path: str, note: Note, seen: set[str] | None = None
) -> tuple[list[tuple[str, Roles]], list[str]]:
    """The sessions in a folder tree and the logs beside them. Each folder that directly
    holds a timeline or metadata is one session; a folder holding only a recording belongs
    to the folder above when that one has a timeline or metadata (the vendor's
    <id>/recording/audio.ogg), else it is a session of its own (a recording alone)."""
    seen = set() if seen is None else seen
    seen.add(os.path.realpath(path))
    roles: Roles = {}
    others: list[str] = []
    subdirs: list[str] = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if os.path.isdir(full):
            real = os.path.realpath(full)
            if real in seen:  # a link back up (`ln -s . self`) or to a sibling: read once
                note(f"{full}: a link to a folder already read; skipped")
                continue
            seen.add(real)
            subdirs.append(full)
            continue
        special = _special_kind(full)
        if special is not None:  # opening a FIFO blocks until a writer comes: never
            note(f"{full}: {special}, not a regular file; skipped")
            continue
        try:
            kind, _head = _sniff(full)
        except OSError as exc:
            note(f"{full}: cannot read it ({exc.strerror})")
            continue
        if kind == "recording":
            roles.setdefault("recording", full)
        elif kind == "document":
            doc = _load_document(full, note)
            if doc is not None and (is_harness_report(doc) or is_app_artifact(doc)):
                others.append(full)
            elif doc is not None and "turns" in doc:
                roles.setdefault("timeline", full)
            elif doc is not None and "channel_layout" in doc:
                roles.setdefault("metadata", full)
        elif kind in ("array", "jsonl", "capture"):
            others.append(full)
    sessions: list[tuple[str, Roles]] = []
    owner = "timeline" in roles or "metadata" in roles
    for sub in subdirs:
        found, more = _classify_folder(sub, note, seen)
        others.extend(more)
        for folder, r in found:
            if owner and set(r) == {"recording"} and "recording" not in roles:
                roles["recording"] = r["recording"]
            else:
                sessions.append((folder, r))
    if roles:
        sessions.insert(0, (path, roles))
    return sessions, others


def _session_ids_differ(tl: dict[str, Any] | None, md: dict[str, Any] | None) -> bool:
    a = tl.get("session_id") if tl else None
    b = md.get("session_id") if md else None
    return bool(a and b and a != b)


def _analyze_folder_session(
    folder: str, roles: Roles, note: Note, progress: Progress | None, echo: bool
) -> list[SessionFindings]:
    tl = _load_document(roles["timeline"], note) if "timeline" in roles else None
    md = _load_document(roles["metadata"], note) if "metadata" in roles else None
    if _session_ids_differ(tl, md):
        assert tl is not None and md is not None
        note(
            f"{folder}: the timeline is of {tl.get('session_id')}, the metadata of "
            f"{md.get('session_id')}; the metadata is ignored"
        )
        md = None
    rec = (
        read_recording(roles["recording"], note, progress, echo, agent_spans(tl) if tl else None)
        if "recording" in roles
        else None
    )
    if tl is None and rec is None:
        return []
    note(f"{folder}: vendor artifacts: {', '.join(sorted(roles))}")
    return analyze_artifacts(tl, md, rec, folder, note)


def analyze_path(
    path: str, note: Note, progress: Progress | None = None, echo: bool = True
) -> list[SessionFindings]:
    """Every session in `path` (a file, a folder, a pipe, or `-` for stdin), with problems
    as one-line notes."""
    if path == "-" or (os.path.exists(path) and _is_stream(path)):
        return _analyze_stream(path, note, progress, echo)
    if not os.path.exists(path):
        note(f"{path}: no such file or folder")
        return []
    if os.path.isdir(path):
        sessions, others = _classify_folder(path, note)
        found: list[SessionFindings] = []
        for folder, roles in sessions:
            found += _analyze_folder_session(folder, roles, note, progress, echo)
        for other in others:
            found += analyze_path(other, note, progress, echo)
        if not sessions and not others:
            note(f"{path}: no session files in this folder")
        return found
    try:
        kind, _ = _sniff(path)
    except OSError as exc:
        note(f"{path}: cannot read it ({exc.strerror})")
        return []
    if kind == "empty":
        note(f"{path}: empty file")
        return []
    if kind == "binary":
        note(f"{path}: binary data, not a session log")
        return []
    if kind == "recording":
        rec = read_recording(path, note, progress, echo)
        return [] if rec is None else analyze_artifacts(None, None, rec, path, note)
    if kind == "capture":
        return _run_capture(path, note, progress)
    if kind == "document":
        try:
            doc = _load_document(path, note, lines_ok=True)
        except _ExtraData:
            note(f"{path}: its first line is over {SNIFF_BYTES} bytes; read as JSON lines")
            return _run_log(path, "jsonl", note, progress)
        if doc is None:
            return []
        if is_harness_report(doc):
            return analyze_harness(doc, path, note)
        if is_app_artifact(doc):
            return analyze_app_artifact(doc, path, note)
        if "turns" in doc:
            note(f"{path}: vendor timeline")
            return analyze_artifacts(doc, None, None, path, note)
        if "channel_layout" in doc:
            note(f"{path}: vendor metadata alone: pass the folder with the timeline and recording")
            return []
        note(f"{path}: a JSON document that is not a session log; skipped")
        return []
    return _run_log(path, kind, note, progress)


def _special_kind(path: str) -> str | None:
    """What a folder entry is when it is not a regular file (a FIFO, a socket, a device),
    None for a regular file or one that cannot be stat'ed (its read then says why). Only
    a path named on the command line is read as a stream."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), "a special file")


def _is_stream(path: str) -> bool:
    """A pipe, a FIFO or a device (`/dev/stdin`, `<(zcat log.gz)`): it can be read once only,
    and the readers sniff its head and then open it again."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _analyze_stream(
    path: str, note: Note, progress: Progress | None, echo: bool
) -> list[SessionFindings]:
    """Spool a stream to a temporary file (removed afterwards) and read that, named as the
    stream: sniffing the head and reopening would lose it."""
    name = "stdin" if path == "-" else path
    if path == "-" and sys.stdin is None:  # started with stdin closed (`<&-`)
        note("stdin: it is closed; pipe a log into `analyze -`, or give its path")
        return []
    with tempfile.TemporaryDirectory(prefix="agent-doctor-") as tmp:
        spool = os.path.join(tmp, "input")
        try:
            src = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
            with src, open(spool, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except OSError as exc:
            note(f"{name}: cannot read it ({exc.strerror or exc})")
            return []

        def named(line: str) -> None:
            note(line.replace(spool, name))

        found = analyze_path(spool, named, progress, echo)
    for f in found:
        if f.source.path == spool:
            f.source.path = name
    return found
