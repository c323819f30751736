"""SessionAnalyzer: events in (in time order, one at a time), findings out.

    analyzer = SessionAnalyzer(Source(shape="capture v1", region="us"))
    for record in records:                 # capture Records or Events, in time order
        for note in analyzer.feed(record): # live notes worth printing now (often none)
            print(note)
    analyzer.add_echo(evidence)            # optional: the recording's echo measurement
    sessions = analyzer.finish()           # list[SessionFindings], one per session seen

`feed` accepts frames whose audio is kept (a relay) or summarised (a capture written with
`--audio summary`). The analyzer splits the stream into sessions (a connection, or a new
`session.ready`/first message after an end) and judges each in `finish`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from doctor.capture.format import ConnEvent, Frame
from doctor.result import Result, Status, skipped
from doctor.session.convert import from_capture
from doctor.session.events import META_OPEN, Event
from doctor.session.findings import Extras, judge
from doctor.session.secrets import scrub
from doctor.session.state import RESUME_CODES, Collector, Segment

AUDIO_BLOCK_BYTES = 48000  # feed the validate-audio core one second at a time
QUIET_DBFS = -45.0


OPEN_ERRORS = frozenset({"invalid_format", "invalid_audio"})
"""Errors before session.ready that leave the connection open (field-facts §4): a
session.updated after one is the same connection, not a new session."""


@dataclass
class Source:
    """What the reader knows about its input: its shape, and facts the events cannot give."""

    shape: str = "events"
    path: str = ""
    region: str | None = None
    vendor_artifacts: bool = False
    sent_logged: bool | None = None  # None: decide from the events
    end_logged: bool = True  # a sent session.end would be in the log (not so in a harness report)
    cannot_judge: dict[str, str] = field(default_factory=dict)
    """Check id -> why this input cannot show it: reported as not judged, unless the check
    found a problem anyway."""


@dataclass
class SessionFindings:
    """One session's results, and the few facts the report and the plot show."""

    session_id: str | None
    source: Source
    results: list[Result]
    segment: Segment
    notes: list[str] = field(default_factory=list)
    recording: Any = None  # doctor.session.recording.RecordingSummary, for the plot
    recording_offset_s: float | None = None  # server time of the recording's zero

    def summary(self) -> dict[str, Any]:
        seg = self.segment
        return {
            "session_id": self.session_id,
            "input": self.source.path,
            "shape": self.source.shape,
            "started_at": _iso(seg.first_t),
            "duration_s": None
            if seg.first_t is None or seg.last_t is None
            else round(seg.last_t - seg.first_t, 2),
            "replies": len(seg.replies),
            "user_turns": len(seg.users),
            "tool_calls": len(seg.tools),
            "errors": len(seg.errors),
            "notes": self.notes,
        }


def _iso(t: float | None) -> str | None:
    from datetime import datetime, timezone

    if t is None or t < 1e8:  # a clock relative to the app's start (offsets only)
        return None
    try:
        dt = datetime.fromtimestamp(t, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _AppAudio:
    """The validate-audio core fed the app's PCM in one-second blocks (bounded memory).

    Leading quiet seconds (room noise while the greeting plays) are skipped: the core
    decides the sample format from the first bytes, and faint noise there reads as "noise
    in every format". If the whole stream is quiet, the last quiet block is judged."""

    def __init__(self) -> None:
        from doctor.audio.format.analyze import PcmStage
        from doctor.audio.format.findings import Validation
        from doctor.audio.format.inputs import Layered

        self.v = Validation()
        self.stage = PcmStage(self.v, Layered())
        self.buf = bytearray()
        self.fed = 0
        self.started = False
        self.skipped = 0
        self.held = b""

    def __call__(self, pcm: bytes) -> None:
        self.buf += pcm
        if len(self.buf) >= AUDIO_BLOCK_BYTES:
            self._block(bytes(self.buf))
            self.buf.clear()

    def _block(self, block: bytes) -> None:
        if not self.started:
            if _quiet(block):
                self.skipped += len(self.held)
                self.held = block
                return
            self.started = True
        self.stage.feed(block)
        self.fed += len(block)

    def result(self) -> Result | None:
        from doctor.audio.format.outcome import validation_result

        if self.buf:
            self._block(bytes(self.buf))
            self.buf.clear()
        if not self.fed and self.held:
            self.stage.feed(self.held)
            self.fed += len(self.held)
        if not self.fed:
            return None
        self.stage.finish()
        r = validation_result(self.v)
        r.evidence["skipped_leading_quiet_s"] = round(self.skipped / 48000, 1)
        return r


def _quiet(block: bytes) -> bool:
    """Read as PCM16, is this block below QUIET_DBFS? (other formats read as loud noise)."""
    import numpy as np

    n = len(block) // 2
    if n == 0:
        return True
    x = np.frombuffer(block[: n * 2], dtype="<i2").astype(np.float64) / 32768.0
    power = float(np.mean(x * x))
    return power <= 10 ** (QUIET_DBFS / 10)


_SEGMENT_TYPES = frozenset(
    {
        "session.update",
        "session.resume",
        "session.error",
        "error",
        "session.ready",
        "session.updated",
    }
)
"""The only types `_segment_for` may start a new session on (without a connection id)."""


class SessionAnalyzer:
    """Streaming analysis of one log (one or more sessions); see the module docstring."""

    def __init__(self, source: Source | None = None) -> None:
        self.source = source or Source()
        self.segments: list[tuple[Segment, Collector, _AppAudio]] = []
        self.notes: list[str] = []
        self.echo: dict[str, Any] | None = None
        self._conn_seen: set[int] = set()
        self._announced: set[str] = set()  # interrupted replies already noted live

    # -- input -----------------------------------------------------------------------------
    def feed(self, item: Event | Frame | ConnEvent) -> list[str]:
        """Add one record (in time order); returns live notes worth printing now."""
        ev = from_capture(item) if isinstance(item, (Frame, ConnEvent)) else item
        seg, col = self._segment_for(ev)
        before = (len(seg.errors), len(seg.closes))
        col.feed(ev)
        return self._live(seg, ev, before)

    def add_echo(self, evidence: dict[str, Any]) -> None:
        """The recording's echo measurement (evidence of doctor.audio.echo), for every session."""
        self.echo = evidence

    def note(self, line: str) -> None:
        """A reader's one-line problem (a skipped line, a truncated file)."""
        if len(self.notes) < 200:
            self.notes.append(line)

    # -- sessions --------------------------------------------------------------------------
    def _new(self, conn: int | None) -> tuple[Segment, Collector]:
        seg = Segment(index=len(self.segments), conn=conn)
        audio = _AppAudio()
        col = Collector(seg, audio)
        self.segments.append((seg, col, audio))
        return seg, col

    def _segment_for(self, ev: Event) -> tuple[Segment, Collector]:
        if not self.segments:
            return self._new(ev.conn)
        seg, col, _ = self.segments[-1]
        if ev.conn is not None:
            if ev.conn != seg.conn and ev.conn not in self._conn_seen:
                self._conn_seen.add(ev.conn)
                if seg.conn is None and seg.first_t is None:
                    seg.conn = ev.conn
                    return seg, col
                return self._new(ev.conn)
            self._conn_seen.add(ev.conn)
            for s, c, _ in reversed(self.segments):
                if s.conn == ev.conn:
                    return s, c
            return seg, col
        if ev.type == META_OPEN and ev.direction == "meta":
            # the app's own "open" line: a new connection once the last one was closed or
            # became a session (a reconnect); else it opens the session being read
            if seg.ended or seg.closes or seg.ready_t is not None or seg.session_id:
                return self._new(None)
            return seg, col
        if ev.type not in _SEGMENT_TYPES:
            return seg, col  # most events (audio, transcripts) never open a session
        starts = ev.type in ("session.update", "session.resume") and ev.direction == "app"
        code = str(ev.payload.get("code", "")).lower()
        if (
            ev.type in ("session.error", "error")
            and code in ("session_not_found", "session_forbidden")
            and seg.ready_t is not None
            and seg.resume_of is None
        ):
            return self._new(None)  # a resume answered on a new connection the log omits
        if ev.type == "session.ready" and seg.ready_t is not None:
            sid = ev.payload.get("session_id")
            if sid != seg.session_id or seg.ended:
                return self._new(None)
        if ev.type == "session.updated" and (
            seg.ended
            or (seg.ready_t is None and any(e.code not in OPEN_ERRORS for e in seg.errors))
        ):
            return self._new(None)  # a fatal first-update error closed that connection
        if starts and (seg.ended or (seg.resume_answer and seg.resume_answer != "ready")):
            return self._new(None)
        if ev.type == "session.ready" and seg.ended:
            return self._new(None)
        return seg, col

    def _live(self, seg: Segment, ev: Event, before: tuple[int, int]) -> list[str]:
        notes = []
        if len(seg.errors) > before[0]:
            e = seg.errors[-1]
            notes.append(f"session.error {e.code}: {e.message}")
        if len(seg.closes) > before[1]:
            c = seg.closes[-1]
            notes.append(
                f"connection closed: {c.code if c.code is not None else 'no close frame'}"
                f" {c.reason or ''}".rstrip()
            )
        if ev.type not in ("reply.done", "transcript.agent"):
            return notes
        rid = ev.payload.get("reply_id")
        if rid not in self._announced:
            r = next((x for x in reversed(seg.replies) if x.reply_id == rid), None)
            if r is not None and r.interrupted:
                self._announced.add(r.reply_id)
                start = r.audible_t if r.audible_t is not None else r.started_t
                into = "" if start is None or r.cut_t is None else f" {r.cut_t - start:.1f} s in"
                notes.append(f"reply interrupted{into}")
        return notes

    # -- output ----------------------------------------------------------------------------
    def finish(self) -> list[SessionFindings]:
        """Judge every session seen; an empty log gives an empty list."""
        out = []
        segs = [
            s
            for s, _, _ in self.segments
            if s.first_t is not None or s.app_messages or s.service_messages
        ]
        for seg, _col, audio in self.segments:
            if seg not in segs:
                continue
            for e in seg.errors:  # a token seen after the error was recorded
                e.message = scrub(e.message, seg.secrets) or ""
            for c in seg.closes:
                c.reason = scrub(c.reason, seg.secrets)
            lacks_sent = (
                not self.source.sent_logged
                if self.source.sent_logged is not None
                else not any(s.app_messages for s in segs)
            )
            ex = Extras(
                shape=self.source.shape,
                vendor_artifacts=self.source.vendor_artifacts,
                region=self.source.region,
                echo=self.echo,
                audio_result=audio.result(),
                lacks_sent=lacks_sent,
                lacks_end=not self.source.end_logged,
                resumed_later=_resumed_later(segs, seg),
            )
            fresh, retried = _after_resume(segs, seg)
            results = not_judged(judge(seg, ex, fresh, retried), seg, self.source.cannot_judge)
            out.append(
                SessionFindings(
                    seg.session_id or seg.resume_of,
                    self.source,
                    results,
                    seg,
                    self.notes if seg is segs[0] else [],
                )
            )
        return out


def not_judged(results: list[Result], seg: Segment, why: dict[str, str]) -> list[Result]:
    """Checks the input cannot show become skips that say why; a problem found stays."""
    from doctor.session.findings import TITLES

    if not why:
        return results
    out = []
    for r in results:
        reason = why.get(r.id)
        if reason is not None and r.status in (Status.PASS, Status.SKIP):
            r = _not_judged(r.id, reason, r.evidence)
        out.append(r)
    have = {r.id for r in results}
    out += [
        _not_judged(i, why[i], {"session_id": seg.session_id})
        for i in TITLES
        if i in why and i not in have
    ]
    return out


def _not_judged(check_id: str, reason: str, evidence: dict[str, Any]) -> Result:
    from doctor.session.findings import TITLES

    r = skipped("log_incomplete", f"Not judged: {reason}", evidence)
    return r.with_meta(check_id, TITLES[check_id], 0)


def _resumed_later(segs: list[Segment], seg: Segment) -> bool:
    """Whether a later connection resumed this session and got session.ready for it (a
    ready naming another session is a fresh one: this one was not resumed)."""
    return seg.session_id is not None and any(
        later.resume_of == seg.session_id
        and later.resume_answer == "ready"
        and later.session_id in (None, seg.session_id)
        for later in segs[segs.index(seg) + 1 :]
    )


def _after_resume(segs: list[Segment], seg: Segment) -> tuple[bool, int]:
    """After a refused resume: did a fresh session follow, and how many resumes were retried."""
    if seg.resume_of is None or seg.resume_answer in (None, "ready"):
        return False, 0
    retried = 0
    for later in segs[segs.index(seg) + 1 :]:
        if later.resume_of is not None:
            retried += 1
            continue
        if later.ready_t is not None or later.update_t is not None:
            return True, retried
    return False, retried


__all__ = ["RESUME_CODES", "SessionAnalyzer", "SessionFindings", "Source"]


def share_recordings(found: list[SessionFindings]) -> None:
    """Give a log's session the echo measurement of the same session's recording.

    `analyze artifacts/ app.log`: the vendor's recording holds the audio evidence, the
    app's log the messages; the log's echo verdict should weigh both.
    """
    from dataclasses import replace

    from doctor.session.findings import TITLES, echo_result, interruption_rows

    recorded = {
        f.session_id: f
        for f in found
        if f.session_id and f.recording is not None and f.recording.echo is not None
    }
    for f in found:
        donor = recorded.get(f.session_id) if f.session_id else None
        if donor is None or donor is f or f.recording is not None:
            continue
        rows = interruption_rows(f.segment)
        ex = Extras(shape=f.source.shape, echo=donor.recording.echo)
        new = echo_result(f.segment, ex, rows).with_meta("session-echo", TITLES["session-echo"], 0)
        new = replace(new, evidence={**new.evidence, "recording_from": donor.source.path})
        f.results = [new if r.id == "session-echo" else r for r in f.results]
        f.recording, f.recording_offset_s = donor.recording, donor.recording_offset_s
