"""What only a relay can see, from the frames that crossed it (pure: records in, notes out).

`RelayObserver.feed(record)` takes capture records (doctor.capture.format: frames with
their audio kept, and connection open/close events) in the order the relay saw them and
returns the live notes worth a line at once; `finish()` returns the findings. It looks at
each `input.audio` frame as it comes (base64, bytes, chunk duration, a WAV header in the
frame), at the audio's content once a few seconds have arrived (the validate-audio
layers and the rate from content), at pacing against the relay's clock, at who closed
and how, at resumes across connections, at the agent's audio coming back (the echo core on
a running window), at latency, at tool results and at unknown message types.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from doctor.audio.format.messages import CLIENT_TYPES, SERVER_TYPES, check_message
from doctor.capture.format import ConnEvent, Frame, Record
from doctor.session.findings import (
    DEFAULT_TOOL_TIMEOUT_S,
    GRACE_S,
    owes_result,
    tool_timeouts,
)
from doctor.session.levels import audible

FIRST_CHECK_BYTES = 2 * 48_000  # ~2 s of 24 kHz PCM16: enough to tell the sample format
RATE_CHECK_BYTES = 12 * 48_000  # ~12 s: enough speech for the rate from content
BURST_LEAD_S = 1.0  # more than this much audio beyond real time within BURST_WINDOW_S
BURST_WINDOW_S = 0.5
GAP_S = 1.0  # a pause in the app's audio stream longer than this is a gap
CHUNK_MS_RANGE = (10.0, 250.0)  # the docs say about 50 ms; far outside this is flagged
ECHO_WINDOW_S = 20.0
ECHO_EVERY_S = 10.0  # a running echo measurement per this much of reply audio
RING_SLACK_S = 1.0  # audio kept beyond the window (a chunk straddling its start)
# One echo measurement of a 20 s window costs a few hundred ms of CPU (the coherent core, then
# the delay tracker when it says no: benchmarks/bench_echo_wander.py): at 50 sessions the
# running window alone would need more than a core. Measurements are rationed on the relay
# clock (a token bucket): a measurement that finds no token waits for the connection's next
# reply audio; a connection still unmeasured at its close is measured then, whatever the
# bucket holds. Only a connection the rings could not hold is left unmeasured, and named.
ECHO_PER_S = 0.5
ECHO_BURST = 4.0
# The rings hold the window of both directions (~2 MB of PCM a connection at 24 kHz, ~3 MB
# with Python's objects for 10 ms chunks, more for smaller ones: 1.9 MB per MB of PCM in
# 2.7 ms chunks): at most ECHO_MAX_CONNS open connections are echo-watched at once (~200 MB
# for 64 connections of the service's 10 ms replies), enough for every one of
# the 50 concurrent sessions the relay is built for (at 32, the first 32 to open took every
# slot and 18 of 50 went unmeasured); the others are named at their close as not measured.
RING_BYTES = int((ECHO_WINDOW_S + RING_SLACK_S + 1) * 48_000)
ECHO_MAX_CONNS = 64
# The echo core's own threshold (S 2.5) is set for a loudspeaker and a microphone; on the
# wire the reference is the exact samples handed to the app, and two different voices of
# the same speaker style reach S 2-3 by chance, so the relay asks for more before it says so.
WIRE_ECHO_S = 4.0
WANDER_MS = 2.0  # a loop found whose blocks' delays spread this much: its levels are tracked
# a chunk this much later than its stream's end starts a new run, at its arrival: a pause
# (push-to-talk, a stall, a new reply) is a pause, not audio dated before it arrived
MIC_SNAP_S = 0.1
PLAY_SNAP_S = 0.05
# a run's anchor moves back (a late chunk, then one on time) at most by the pause before the
# run plus this much; a burst further ahead of real time starts a new run instead of moving
# the audio already held (an unpaced clip in the middle of a session)
JITTER_S = 0.05
SLOW_REPLY_MS = 2500.0
CHUNK_SAMPLE = 2000  # the last chunk durations kept for the median (bounded per connection)
KEPT_ROWS = 200  # errors and late tool results kept per connection (the first ones)
KEPT_KEYS = 50  # distinct unknown message types counted per connection
OTHER_TYPES = "(other types)"
FORMATS = {"audio/pcm": (24_000, 2), "audio/pcmu": (8_000, 1), "audio/pcma": (8_000, 1)}
OLD_TYPES = {
    "input_audio_buffer.append": "the OpenAI Realtime name for input.audio",
    "conversation.item.create": "an OpenAI Realtime message",
    "response.create": "the OpenAI Realtime name for reply.create",
    "session.close": "not a Voice Agent message (session.end ends a session)",
}


@dataclass(frozen=True)
class Note:
    """One live line: what happened, on which connection, and the cause code it supports."""

    conn: int
    t: float
    cause: str
    text: str
    level: str = "warn"  # "info" for lines about the normal course of a session

    def to_dict(self) -> dict[str, Any]:
        return {
            "conn": self.conn,
            "t": round(self.t, 3),
            "cause": self.cause,
            "text": self.text,
            "level": self.level,
        }


@dataclass
class Finding:
    """One problem found on one connection (its session id in evidence when known)."""

    area: str  # audio, pacing, close, resume, echo, latency, tools, messages
    cause: str
    severity: str  # warn or fail
    summary: str
    evidence: dict[str, Any]
    guide: str
    detail: str = ""


@dataclass
class _AudioRing:
    """The last ECHO_WINDOW_S of one direction's audio, placed on the relay's clock.

    Chunks are held in runs: a run's chunks follow each other without a gap from the run's
    anchor, so a chunk is held as (run, offset in the run, samples) and placed by `placed`.
    """

    chunks: deque[tuple[int, float, bytes]] = field(default_factory=deque)
    anchors: dict[int, float] = field(default_factory=dict)  # run -> its start (relay clock)
    run: int = -1  # the current run
    run_s: float = 0.0  # the current run's length so far
    run_first: float = 0.0  # the current run's first arrival
    run_allow: float = 0.0  # how far back its anchor may move from there
    run_undo: float | None = None  # its anchor before the last chunk moved it back
    total_s: float = 0.0
    held_bytes: int = 0  # in `chunks`, never above RING_BYTES

    @property
    def end_s(self) -> float:
        """Where the previous chunk ended (-1 before any)."""
        return self.anchors[self.run] + self.run_s if self.run >= 0 else -1.0

    def add(self, t: float, pcm: bytes, mic: bool, keep: bool = True) -> None:
        """Each direction is a stream sent at real time (the service's replies: field-facts
        §7; the app's microphone), so a run is placed on its sender's clock: where its
        chunks fit without any starting after it arrived, i.e. anchored by the least delayed
        chunk, whatever the jitter of the others. Both directions are placed by this one
        rule, so a copy of one stream sent back as the other (a software loop) lands where
        it was sent, a few ms after the original; anchoring a run at a late chunk instead
        (a player that queues, a microphone continued from a backlog flushed at once)
        shifted one side by that lateness (180-245 ms read for a 1 ms loop). A stream
        that pauses longer than its snap starts a new run, and so does a burst whose run
        would move back further than the pause before it plus JITTER_S (what it already
        holds keeps its place). A trailing odd byte is dropped. `keep` False counts the audio
        without holding it (a connection the echo watch has no room for). A stream flushed
        far faster than real time lands in the past, so the time bound alone would hold it
        all: the bytes are bounded too.
        """
        pcm = pcm[: len(pcm) // 2 * 2]  # PCM16: an odd trailing byte is no sample
        dur = len(pcm) / 48_000
        end = self.end_s
        new = self.run < 0 or t > end + (MIC_SNAP_S if mic else PLAY_SNAP_S)
        if not new and t < end and self.run_first - (t - self.run_s) > self.run_allow:
            new = True  # ahead of its stream by more than the pause before the run
            if self.run_undo is not None:  # the burst's first chunk moved it: undo that
                self.anchors[self.run] = self.run_undo
        self.run_undo = None
        if new:
            gap = 0.0 if self.run < 0 else max(0.0, t - end)
            if self.run >= 0 and not (self.chunks and self.chunks[-1][0] == self.run):
                del self.anchors[self.run]  # no chunk of the previous run is held
            self.run += 1
            self.anchors[self.run] = t
            self.run_s = 0.0
            self.run_first = t
            self.run_allow = gap + JITTER_S
        elif t < end:
            self.run_undo = self.anchors[self.run]
            self.anchors[self.run] = t - self.run_s
        offset = self.run_s
        self.run_s += dur
        self.total_s += dur
        if not keep:
            return
        self.chunks.append((self.run, offset, pcm))
        self.held_bytes += len(pcm)
        chunks = self.chunks
        oldest = self.end_s - ECHO_WINDOW_S - RING_SLACK_S
        while chunks and (
            self.anchors[chunks[0][0]] + chunks[0][1] < oldest or self.held_bytes > RING_BYTES
        ):
            run, _, gone = chunks.popleft()
            self.held_bytes -= len(gone)
            if run != self.run and not (chunks and chunks[0][0] == run):
                del self.anchors[run]

    def placed(self) -> list[tuple[float, bytes]]:
        """The held chunks, each with where it starts on the relay's clock."""
        return [(self.anchors[run] + offset, pcm) for run, offset, pcm in self.chunks]

    def clear(self) -> None:
        """Free the audio (a closed connection keeps only its figures)."""
        self.chunks.clear()
        self.anchors = {self.run: self.anchors[self.run]} if self.run >= 0 else {}
        self.held_bytes = 0


@dataclass
class Conn:
    """Everything watched on one WebSocket."""

    conn: int
    opened_t: float
    details: dict[str, Any]
    app_frames: int = 0
    service_frames: int = 0
    first_type: str | None = None
    session_id: str | None = None
    resumed_id: str | None = None
    ready_t: float | None = None
    declared: dict[str, Any] = field(default_factory=dict)
    encoding: str = "audio/pcm"
    out_encoding: str = "audio/pcm"
    audio_frames: int = 0
    audio_bytes: int = 0
    audio_before_ready: int = 0
    first_before_ready: int | None = None
    bad: dict[str, dict[str, Any]] = field(default_factory=dict)  # code -> first frame
    head: bytearray = field(default_factory=bytearray)
    format_checked: bool = False
    rate_checked: bool = False
    content: list[dict[str, Any]] = field(default_factory=list)  # validate-audio findings
    content_stats: dict[str, Any] = field(default_factory=dict)
    first_audio_t: float | None = None
    last_audio_t: float | None = None
    audio_s: float = 0.0
    max_lead_s: float = 0.0
    lead_at_frame: int | None = None
    per_second: list[float] = field(default_factory=list)  # audio seconds per wall second
    recent: deque[tuple[float, float]] = field(default_factory=deque)
    bursts: int = 0
    in_burst: bool = False
    max_burst_s: float = 0.0
    burst_at_frame: int | None = None
    max_gap_s: float = 0.0
    gap_at_frame: int | None = None
    gaps: int = 0
    chunk_ms: deque[float] = field(default_factory=lambda: deque(maxlen=CHUNK_SAMPLE))
    session_end_t: float | None = None
    ended_t: float | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    close: dict[str, Any] | None = None
    tool_calls: dict[str, float] = field(default_factory=dict)
    tool_late: list[dict[str, Any]] = field(default_factory=list)
    tool_timeouts: dict[str, float] = field(default_factory=dict)  # session core's reading
    tool_names: dict[str, str] = field(default_factory=dict)  # call id -> tool, while open
    tool_unowed: set[str] = field(default_factory=set)  # calls the app may rightly leave
    stored_agent: bool = False  # the session names a stored agent (`agent_id`)
    updated: bool = False  # a session.update has been seen
    tool_late_timeout_s: float = 0.0  # the longest timeout a late result went past
    unknown: dict[str, int] = field(default_factory=dict)
    played: _AudioRing = field(default_factory=_AudioRing)
    heard: _AudioRing = field(default_factory=_AudioRing)
    echo_next_s: float = ECHO_EVERY_S
    echo_waiting: bool = False  # a due measurement is waiting for a token (counted once)
    echo_slot: bool | None = None  # whether its audio is held for the echo (None: no audio yet)
    echo: dict[str, Any] | None = None
    speech_stopped_t: float | None = None
    waiting_audible: bool = False
    latencies_ms: list[float] = field(default_factory=list)
    noted: set[str] = field(default_factory=set)

    @property
    def label(self) -> str:
        return f"conn {self.conn}" + (f" ({self.session_id})" if self.session_id else "")


class RelayObserver:
    """The relay-only analysis; feed records in order, then finish()."""

    def __init__(self, echo: bool = True) -> None:
        self.conns: dict[int, Conn] = {}
        self.order: list[Conn] = []
        self.echo_enabled = echo
        self.findings: list[Finding] = []
        self.echo_tokens = ECHO_BURST
        self.echo_clock: float | None = None  # the relay time the tokens were counted at
        self.echo_measured = 0
        self.echo_deferred = 0  # due measurements that waited for a token (once each)
        self.echo_unmeasured: list[int] = []  # closed without one (no token, or no slot)
        self.echo_slots = 0  # open connections whose audio the rings hold

    # --- feeding -----------------------------------------------------------------------
    def feed(self, record: Record, raw: str | None = None) -> list[Note]:
        """One record; `raw` is the frame's text when the caller still has it."""
        if isinstance(record, ConnEvent):
            if record.event == "open":
                return self._open(record)
            return self._close(record)
        c = self.conns.get(record.conn)
        if c is None:  # a frame without its open event (a capture cut at the start)
            c = self._new_conn(record.conn, record.t, {})
        if record.dir == "app":
            c.app_frames += 1
            return self._from_app(c, record, raw)
        c.service_frames += 1
        return self._from_service(c, record)

    def _new_conn(self, conn: int, t: float, details: dict[str, Any]) -> Conn:
        c = Conn(conn, t, details)
        self.conns[conn] = c
        self.order.append(c)
        return c

    def _open(self, ev: ConnEvent) -> list[Note]:
        c = self._new_conn(ev.conn, ev.t, {**ev.details, "wall": ev.wall})
        auth = {
            "header": "API key in the header",
            "query": "a token in the URL query",
            "none": "no credentials",
        }.get(str(ev.details.get("auth")), "?")
        return [Note(c.conn, ev.t, "open", f"{c.label}: the app connected ({auth})", "info")]

    def _note_once(self, c: Conn, key: str, t: float, cause: str, text: str) -> list[Note]:
        if key in c.noted:
            return []
        c.noted.add(key)
        return [Note(c.conn, t, cause, f"{c.label}: {text}")]

    # --- what the app sends ------------------------------------------------------------
    def _from_app(self, c: Conn, f: Frame, raw: str | None) -> list[Note]:
        notes: list[Note] = []
        if f.msg is None:
            what = "a binary frame" if f.binary is not None else "a text frame that is not JSON"
            _count(c.unknown, what)
            return self._note_once(
                c,
                what,
                f.t,
                "unknown_message",
                f"frame {c.app_frames} is {what}: the service expects JSON text messages",
            )
        mtype = f.msg.get("type")
        if c.first_type is None:
            c.first_type = str(mtype)
        if mtype == "input.audio":
            return self._audio(c, f, raw)
        if mtype == "session.update":
            self._declare(c, f.msg)
        elif mtype == "session.resume":
            c.resumed_id = str(f.msg.get("session_id") or "") or None
            c.updated = True  # a resumed session keeps its agent: a later agent_id is refused
        elif mtype == "session.end":
            if c.session_end_t is None:
                c.session_end_t = f.t
        elif mtype == "tool.result":
            call_id = str(f.msg.get("call_id"))
            called = c.tool_calls.pop(call_id, None)
            name = c.tool_names.pop(call_id, "")
            c.tool_unowed.discard(call_id)
            limit = c.tool_timeouts.get(name, DEFAULT_TOOL_TIMEOUT_S)
            if called is not None and f.t - called > limit:
                c.tool_late_timeout_s = max(c.tool_late_timeout_s, limit)
                late = {"call_id": call_id, "after_s": round(f.t - called, 1)}
                if len(c.tool_late) < KEPT_ROWS:
                    c.tool_late.append(late)
                notes += self._note_once(
                    c,
                    f"late:{call_id}",
                    f.t,
                    "tool_result_late",
                    f"tool.result for {call_id} came {late['after_s']} s after the call "
                    f"(tool timeout {limit:g} s)",
                )
        elif not isinstance(mtype, str) or mtype not in CLIENT_TYPES:
            shown = json.dumps(mtype)[:60]
            if _count(c.unknown, shown) == OTHER_TYPES:
                return notes  # counted; the first types were each said once
            why = OLD_TYPES.get(mtype, "") if isinstance(mtype, str) else ""
            notes += self._note_once(
                c,
                f"type:{shown}",
                f.t,
                "unknown_message",
                f"frame {c.app_frames} has type {shown}, which the service does not know"
                + (f" ({why})" if why else ""),
            )
        return notes

    def _declare(self, c: Conn, msg: dict[str, Any]) -> None:
        first, c.updated = not c.updated, True
        session = msg.get("session")
        if not isinstance(session, dict):
            if "config" in msg:
                c.unknown["session.update.config"] = 1
            return
        for side in ("input", "output"):
            part = session.get(side)
            fmt = part.get("format") if isinstance(part, dict) else None
            if isinstance(fmt, dict):
                c.declared[side] = dict(fmt)
                enc = str(fmt.get("encoding") or "audio/pcm")
                if side == "input":
                    c.encoding = enc
                else:
                    c.out_encoding = enc
        tools = session.get("tools")
        if isinstance(tools, list) and tools:  # a new list replaces the old one
            c.tool_timeouts = tool_timeouts(tools)
        if first and session.get("agent_id"):  # a later one is refused (agent_id_not_first)
            c.stored_agent = True

    def _bytes_per_s(self, c: Conn) -> int:
        rate, width = FORMATS.get(c.encoding, (24_000, 2))
        declared_rate = c.declared.get("input", {}).get("sample_rate")
        if isinstance(declared_rate, int) and declared_rate > 0:
            rate = declared_rate
        return rate * width

    def _audio(self, c: Conn, f: Frame, raw: str | None) -> list[Note]:
        notes: list[Note] = []
        c.audio_frames += 1
        n = c.audio_frames
        where = f"frame {c.app_frames} (input.audio #{n})"
        if c.ready_t is None:
            c.audio_before_ready += 1
            if c.first_before_ready is None:
                c.first_before_ready = c.app_frames
                notes += self._note_once(
                    c,
                    "before_ready",
                    f.t,
                    "audio_before_ready",
                    f"{where} was sent before session.ready (the service drops or refuses it)",
                )
        pcm = self._decode(c, f, raw, where, notes)
        if pcm is None:
            return notes
        bps = self._bytes_per_s(c)
        dur = len(pcm) / bps
        c.audio_bytes += len(pcm)
        c.chunk_ms.append(dur * 1000)
        if pcm[:4] == b"RIFF" and pcm[8:12] == b"WAVE":
            notes += self._bad(
                c,
                "container_wav",
                where,
                f.t,
                "starts with a WAV header: send raw PCM16 samples, no header",
            )
        self._pacing(c, f.t, dur, where, notes)
        if c.encoding == "audio/pcm" and not c.rate_checked:
            if len(c.head) < RATE_CHECK_BYTES:
                c.head += pcm[: RATE_CHECK_BYTES - len(c.head)]
            if not c.format_checked and len(c.head) >= FIRST_CHECK_BYTES:
                notes += self._content(c, f.t, final=False)
            elif len(c.head) >= RATE_CHECK_BYTES:
                notes += self._content(c, f.t, final=True)
        if self.echo_enabled and c.encoding == "audio/pcm" and not c.content:
            c.heard.add(f.t, pcm, mic=True, keep=self._echo_slot(c))
        return notes

    def _decode(
        self, c: Conn, f: Frame, raw: str | None, where: str, notes: list[Note]
    ) -> bytes | None:
        assert f.msg is not None
        audio = f.msg.get("audio")
        if isinstance(audio, str) and not audio.startswith("data:"):
            try:
                pcm = base64.b64decode(audio, validate=True)
            except (binascii.Error, ValueError):
                pcm = None
            if pcm is not None and pcm and (len(pcm) % 2 == 0 or c.encoding != "audio/pcm"):
                return pcm
        if audio is None and f.audio is not None:  # a summarised capture
            return None
        text = raw if raw is not None else json.dumps(f.msg)
        checked = check_message(text, c.app_frames)
        problems = [
            p
            for p in checked.problems
            if not (p.code == "odd_byte_length" and c.encoding != "audio/pcm")
        ]
        for p in problems:
            notes += self._bad(c, p.code, where, f.t, p.message)
        return checked.audio if not problems else None

    def _bad(self, c: Conn, code: str, where: str, t: float, message: str) -> list[Note]:
        if code in c.bad:
            c.bad[code]["frames"] += 1
            return []
        c.bad[code] = {
            "first_frame": c.app_frames,
            "first_audio_frame": c.audio_frames,
            "message": message,
            "frames": 1,
        }
        return self._note_once(c, f"bad:{code}", t, code, f"{where}: {message}")

    def _pacing(self, c: Conn, t: float, dur: float, where: str, notes: list[Note]) -> None:
        if c.first_audio_t is None:
            c.first_audio_t = t
        elif c.last_audio_t is not None:
            gap = t - c.last_audio_t
            if gap > GAP_S and c.session_end_t is None:
                c.gaps += 1
                if gap > c.max_gap_s:
                    c.max_gap_s, c.gap_at_frame = gap, c.app_frames
                notes += self._note_once(
                    c,
                    "gap",
                    t,
                    "audio_pacing",
                    f"{where} came after {gap:.1f} s without audio (a gap in the stream: "
                    "the service hears silence, turn detection may end the turn)",
                )
        c.last_audio_t = t
        c.audio_s += dur
        second = int(t - c.first_audio_t)
        while len(c.per_second) <= second:
            c.per_second.append(0.0)
        c.per_second[second] += dur
        c.recent.append((t, dur))
        while c.recent and c.recent[0][0] < t - BURST_WINDOW_S:
            c.recent.popleft()
        in_window = sum(d for _, d in c.recent)
        lead = c.audio_s - (t - c.first_audio_t) - dur
        if lead > c.max_lead_s:
            c.max_lead_s, c.lead_at_frame = lead, c.app_frames
        if in_window - BURST_WINDOW_S > BURST_LEAD_S:
            if not c.in_burst:
                c.bursts += 1
                c.in_burst = True
            if in_window > c.max_burst_s:
                c.max_burst_s, c.burst_at_frame = in_window, c.app_frames
            notes += self._note_once(
                c,
                "burst",
                t,
                "audio_pacing",
                f"at {where} the app sent {in_window:.1f} s of audio within "
                f"{BURST_WINDOW_S:g} s (a burst faster than real time: send about 50 ms of "
                "audio every 50 ms)",
            )
        elif c.recent and t - c.recent[0][0] >= BURST_WINDOW_S * 0.5:
            c.in_burst = False
        if len(c.per_second) >= 4 and "rate_pacing" not in c.noted:
            implied = self.implied_rate(c)
            if implied is not None:
                c.noted.add("rate_pacing")
                notes.append(
                    Note(
                        c.conn,
                        t,
                        "sample_rate_mismatch",
                        f"{c.label}: the app sends {implied['ratio']:.2f} s of audio (at the "
                        f"declared {implied['declared_hz']} Hz) per second: its audio is "
                        f"{implied['looks_like']}",
                    )
                )

    @staticmethod
    def implied_rate(c: Conn) -> dict[str, Any] | None:
        """The steady real-time ratio (median of whole seconds) when it points at another
        sample rate or sample width: an app at 48 kHz sends 2 s of '24 kHz' audio a second."""
        full = c.per_second[1:-1]
        if len(full) < 2:
            return None
        ratio = sorted(full)[len(full) // 2]
        declared = c.declared.get("input", {}).get("sample_rate")
        rate = declared if isinstance(declared, int) and declared > 0 else 24_000
        if abs(ratio - 1) < 0.06:
            return None
        for hz in (8_000, 16_000, 22_050, 32_000, 44_100, 48_000):
            if hz != rate and abs(ratio - hz / rate) < 0.06 * hz / rate:
                looks = f"{hz} Hz audio labelled {rate} Hz"
                if hz == 2 * rate:
                    looks += " (or stereo, or 32-bit samples)"
                return {"ratio": ratio, "declared_hz": rate, "implied_hz": hz, "looks_like": looks}
        return None

    def _content(self, c: Conn, t: float, final: bool) -> list[Note]:
        """validate-audio's layers on the first seconds: format now, rate once enough came."""
        from doctor.audio.format.analyze import validate

        v = validate([bytes(c.head)], kind="raw")
        c.format_checked = True
        if final:
            c.rate_checked = True
            c.head = bytearray()
        notes: list[Note] = []
        rate = v.stats.get("rate") or {}
        c.content_stats = {
            "detected": v.detected.to_dict(),
            "estimated_rate_hz": rate.get("estimated_rate_hz"),
            "rate_confidence": rate.get("confidence"),
            "checked_bytes": v.stats.get("audio_bytes"),
        }
        seen = {d["code"] for d in c.content}
        for finding in v.sorted_findings():
            if finding.severity not in ("error", "warning") or finding.code in seen:
                continue
            if finding.code == "sample_rate_mismatch" and not final:
                continue
            c.content.append(
                {
                    "code": finding.code,
                    "severity": finding.severity,
                    "message": finding.message,
                    "guide": finding.guide,
                    "detail": finding.detail,
                }
            )
            notes += self._note_once(
                c,
                f"content:{finding.code}",
                t,
                finding.code,
                f"the audio from input.audio #1 on: {finding.message}",
            )
        return notes

    # --- what the service sends ----------------------------------------------------------
    def _from_service(self, c: Conn, f: Frame) -> list[Note]:
        msg = f.msg
        if msg is None:
            return []
        mtype = msg.get("type")
        notes: list[Note] = []
        if mtype == "reply.audio":
            self._reply_audio(c, f, msg, notes)
        elif mtype == "session.ready":
            if c.ready_t is None:
                c.ready_t = f.t
                sid = msg.get("session_id")
                c.session_id = str(sid) if sid else c.session_id
                ms = (f.t - c.opened_t) * 1000
                verb = "resumed" if c.first_type == "session.resume" else "ready"
                notes.append(
                    Note(
                        c.conn,
                        f.t,
                        "ready",
                        f"{c.label}: session {verb} {ms:.0f} ms after connect",
                        "info",
                    )
                )
        elif mtype == "input.speech.stopped":
            c.speech_stopped_t = f.t
            c.waiting_audible = True
        elif mtype == "session.ended":
            c.ended_t = f.t
        elif mtype in ("session.error", "error"):
            err = {k: msg.get(k) for k in ("code", "message", "param")}
            err["frame"] = c.service_frames
            err["after_app_frame"] = c.app_frames
            if len(c.errors) < KEPT_ROWS:
                c.errors.append(err)
            notes.append(
                Note(
                    c.conn,
                    f.t,
                    "session_error",
                    f"{c.label}: session.error {err['code']}: {err['message']}",
                )
            )
        elif mtype == "tool.call":
            name = str(msg.get("name", ""))
            if f"http:{name}" not in c.tool_timeouts:  # the service calls an http tool itself
                call_id = str(msg.get("call_id"))
                c.tool_calls[call_id] = f.t
                c.tool_names[call_id] = name
                if not owes_result(c.tool_timeouts, name, c.stored_agent):
                    c.tool_unowed.add(call_id)  # a late answer is still judged; none is not
        elif isinstance(mtype, str) and mtype not in SERVER_TYPES:
            shown = f"service:{mtype}"
            _count(c.unknown, shown)
        return notes

    def _reply_audio(self, c: Conn, f: Frame, msg: dict[str, Any], notes: list[Note]) -> None:
        data = msg.get("data")
        if not isinstance(data, str) or c.out_encoding != "audio/pcm":
            return
        try:
            pcm = base64.b64decode(data)
        except (binascii.Error, ValueError):
            return
        if c.waiting_audible and c.speech_stopped_t is not None and audible(pcm):
            c.waiting_audible = False
            ms = (f.t - c.speech_stopped_t) * 1000
            c.latencies_ms.append(ms)
            if ms > SLOW_REPLY_MS:
                notes += self._note_once(
                    c,
                    "slow",
                    f.t,
                    "slow_replies",
                    f"the agent's first audible audio came {ms:.0f} ms after the user "
                    "stopped speaking",
                )
        if not self.echo_enabled:
            return
        c.played.add(f.t, pcm, mic=False, keep=self._echo_slot(c))
        if c.echo_slot and c.played.total_s >= c.echo_next_s and c.heard.total_s > 2.0:
            if not self._echo_token(f.t):
                if not c.echo_waiting:
                    c.echo_waiting = True
                    self.echo_deferred += 1
                return
            c.echo_waiting = False
            c.echo_next_s = c.played.total_s + ECHO_EVERY_S
            self._measure_echo(c)
            notes += self._echo_note(c, f.t)

    def _echo_slot(self, c: Conn) -> bool:
        """Whether the rings hold this connection's audio (decided at its first chunk)."""
        if c.echo_slot is None:
            c.echo_slot = self.echo_slots < ECHO_MAX_CONNS
            self.echo_slots += c.echo_slot
        return c.echo_slot

    def _echo_token(self, t: float) -> bool:
        """Whether the echo budget allows a measurement now (it is spent if so)."""
        if self.echo_clock is not None and t > self.echo_clock:
            gained = (t - self.echo_clock) * ECHO_PER_S
            self.echo_tokens = min(ECHO_BURST, self.echo_tokens + gained)
        self.echo_clock = t if self.echo_clock is None else max(self.echo_clock, t)
        if self.echo_tokens < 1.0:
            return False
        self.echo_tokens -= 1.0
        self.echo_measured += 1
        return True

    def _echo_note(self, c: Conn, t: float) -> list[Note]:
        if not c.echo or c.echo.get("verdict") != "echo":
            return []
        return self._note_once(
            c,
            "echo",
            t,
            "echo_loop",
            "the agent's audio comes back in input.audio "
            f"({c.echo.get('delay_ms')} ms later, ERL {c.echo.get('erl_db')} dB): "
            + (
                "within one input chunk of being handed over, too soon for a speaker and "
                "a microphone: the app sends what it receives"
                if c.echo.get("software_loop")
                else "the app plays the agent into its own microphone"
            ),
        )

    def _measure_echo(self, c: Conn) -> None:
        """The echo core on the last ECHO_WINDOW_S of both directions, on the relay clock
        (`_echo_window`: when the coherent core says no, a delay tracker on the same window)."""
        import numpy as np

        end = max(c.played.end_s, c.heard.end_s)
        start = end - ECHO_WINDOW_S
        n = int(ECHO_WINDOW_S * 24_000)
        played = np.zeros(n, dtype=np.int16)
        heard = np.zeros(n, dtype=np.int16)
        for ring, out in ((c.played, played), (c.heard, heard)):
            for s, pcm in ring.placed():
                x = np.frombuffer(pcm, dtype="<i2")
                i = round((s - start) * 24_000)
                if i + len(x) <= 0 or i >= n:
                    continue
                lo = max(0, -i)
                hi = min(len(x), n - i)
                out[i + lo : i + hi] = x[lo:hi]
        best = _echo_window(played, heard, ECHO_WINDOW_S)
        if best.get("verdict") == "echo" and c.chunk_ms:
            best = _software_loop_by_chunk(best, statistics.median(c.chunk_ms))
        c.echo = best

    # --- closes ----------------------------------------------------------------------------
    def _close(self, ev: ConnEvent) -> list[Note]:
        c = self.conns.get(ev.conn) or self._new_conn(ev.conn, ev.t, {})
        d = ev.details
        c.close = {"t": ev.t, **d}
        by = d.get("by")
        code = d.get("code")
        shown = f"code {code}" if code is not None else "no close frame (1006)"
        notes: list[Note] = []
        if d.get("upstream_refused"):
            return [
                Note(
                    c.conn,
                    ev.t,
                    "upstream_refused",
                    f"{c.label}: the service refused the connection: {d.get('reason')}",
                )
            ]
        if by == "app" and c.ready_t is not None and c.session_end_t is None:
            notes.append(
                Note(
                    c.conn,
                    ev.t,
                    "no_session_end",
                    f"{c.label}: the app closed ({shown}) without session.end: the session may "
                    f"stay billed for up to {GRACE_S:.0f} s more",
                )
            )
        elif code is None and by in ("app", "service"):
            who = "the app" if by == "app" else "the service"
            notes.append(
                Note(
                    c.conn,
                    ev.t,
                    "abrupt_close",
                    f"{c.label}: {who} dropped the connection without a close frame",
                )
            )
        else:
            who = {"app": "the app", "service": "the service"}.get(str(by), "the relay")
            tail = " after session.end" if c.session_end_t is not None else ""
            notes.append(
                Note(c.conn, ev.t, "close", f"{c.label}: closed by {who} ({shown}){tail}", "info")
            )
        if self.echo_enabled and c.echo is None and c.played.total_s > 1 and c.heard.total_s > 1:
            # a connection's last chance, taken whatever the ration says: a close comes once
            # per connection, and an echo loop left unmeasured would read as a clean pass
            if c.echo_slot:
                self.echo_measured += 1
                self._measure_echo(c)
                notes += self._echo_note(c, ev.t)
            else:
                self.echo_unmeasured.append(c.conn)
        c.played.clear()
        c.heard.clear()
        if c.echo_slot:
            self.echo_slots -= 1
            c.echo_slot = False  # a frame after the close event (none expected) is not held
        for call_id, t in c.tool_calls.items():
            if call_id in c.tool_unowed:  # not a finding either (findings._tools)
                notes.append(
                    Note(
                        c.conn,
                        ev.t,
                        "tool_result_missing",
                        f"{c.label}: tool.call {call_id} ({c.tool_names.get(call_id)}) got "
                        "no tool.result: right if it is one of the stored agent's HTTP tools",
                        "info",
                    )
                )
                continue
            notes += self._note_once(
                c,
                f"missing:{call_id}",
                ev.t,
                "tool_result_missing",
                f"tool.call {call_id} got no tool.result ({ev.t - t:.1f} s before the close)",
            )
        return notes

    # --- the end ---------------------------------------------------------------------------
    def finish(self) -> list[Finding]:
        """Findings per connection, and across connections for resumes."""
        from doctor.watch.findings import conn_findings, resume_findings, silent_reuses

        out: list[Finding] = []
        resumed = {c.resumed_id for c in self.order if c.resumed_id}
        reused = silent_reuses(self.order)
        for c in self.order:
            if (
                c.audio_frames
                and c.encoding == "audio/pcm"
                and not c.rate_checked
                and (len(c.head) >= FIRST_CHECK_BYTES // 2)
            ):
                self._content(c, c.last_audio_t or 0.0, final=True)
            out += conn_findings(c, resumed, reused)
        out += resume_findings(self.order)
        self.findings = out
        return out

    def stats(self) -> dict[str, Any]:
        return {
            "conns": [_summary(c) for c in self.order],
            "watched_connections": len(self.order),
            "sessions": sorted({c.session_id for c in self.order if c.session_id}),
            "app_frames": sum(c.app_frames for c in self.order),
            "service_frames": sum(c.service_frames for c in self.order),
            "echo_measurements": self.echo_measured,
            "echo_deferred": self.echo_deferred,
            "echo_unmeasured_connections": list(self.echo_unmeasured),
        }


def _count(counts: dict[str, int], key: str) -> str:
    """Count one of `key`, or of OTHER_TYPES once KEPT_KEYS keys are in use (an app sending
    ever new types would grow it without bound); returns the key counted."""
    if key not in counts and len(counts) >= KEPT_KEYS - 1:
        key = OTHER_TYPES
    counts[key] = counts.get(key, 0) + 1
    return key


def _echo_window(played: Any, heard: Any, window_s: float) -> dict[str, Any]:
    """One run of the echo core, with the relay's stricter threshold applied; when that
    says no, the delay tracker on the same signals. An app's player that receives the
    agent's chunks late inserts a gap (the relay places them on the service's clock), so
    the loop's delay wanders over a reply (322 -> 363 ms seen), and one coherent pass over the
    window smears it below the threshold; a send schedule that slipped once does too."""
    from doctor.audio.echo.analysis import analyse_prepared, prepare
    from doctor.audio.echo.wander import block_range, software_loop, track_prepared

    try:
        p = prepare(played, 24_000, heard, 24_000)
        a = analyse_prepared(p)
    except Exception as exc:  # the core refuses odd input; the relay goes on
        return {"verdict": "error", "error": f"{type(exc).__name__}: {exc}"[:200]}
    ev = a.evidence()
    verdict = getattr(a.verdict, "value", str(a.verdict))
    score = ev.get("score_s")
    if verdict == "echo" and (not isinstance(score, (int, float)) or score < WIRE_ECHO_S):
        verdict = "inconclusive"
    out = {
        "verdict": verdict,
        "threshold_s": WIRE_ECHO_S,
        "delay_ms": _round(ev.get("delay_ms")),
        "erl_db": _round(ev.get("erl_db")),
        "drift_ppm": _round(ev.get("drift_ppm")),
        "score_s": score,
        "window_s": window_s,
    }
    if verdict == "echo" and isinstance(ev.get("delay_ms"), (int, float)):
        # a match a few ms after playback is no loop through a player and a microphone: the
        # app sends back what it receives (still the agent hearing itself)
        out["software_loop"] = software_loop(ev["delay_ms"])
        out |= block_range(ev.get("delay_track") or [], ev["delay_ms"])
        span = out.get("delay_range_ms")
        if span and span[1] - span[0] >= WANDER_MS:  # one coherent ERL reads a wander low
            with contextlib.suppress(Exception):
                t = track_prepared(p).evidence()
                if t["verdict"] == "echo":
                    out |= {k: t[k] for k in ("erl_db", "delay_range_ms", "drift_ms")}
        return out
    if verdict in ("echo", "mic_silent", "insufficient_reference"):
        return out
    try:
        t = track_prepared(p).evidence()
    except Exception as exc:  # as above: a tracker that fails leaves the core's answer
        return out | {
            "tracked": {"verdict": "error", "error": f"{type(exc).__name__}: {exc}"[:200]}
        }
    if t["verdict"] != "echo":
        return out | {"tracked": t}
    return {
        "verdict": "echo",
        "method": "delay_tracker",
        "threshold_s": t["threshold_s"],
        "delay_ms": t["delay_ms"],
        "delay_range_ms": t["delay_range_ms"],
        "drift_ms": t["drift_ms"],
        "erl_db": t["erl_db"],
        "software_loop": t["software_loop"],
        "score_s": t["score_s"],
        "blocks": t["blocks"],
        "window_s": window_s,
        "coherent_score_s": score,
    }


def _software_loop_by_chunk(echo: dict[str, Any], chunk_ms: float) -> dict[str, Any]:
    """Whether a loop is the app sending back what it receives (`software_loop`), judged on
    the delay less one input chunk: a microphone sends a chunk once captured, so a copy sent
    back as it is received but regrouped into input-sized chunks reads up to one chunk late
    (41 ms for 50 ms chunks: it lost its wording before). The delay itself is reported as
    measured, counted from each input chunk's arrival (a 200 ms acoustic loop heard in 50 ms
    chunks reads 250), as the relay has always reported it."""
    from doctor.audio.echo.wander import software_loop

    out = dict(echo, input_chunk_ms=_round(chunk_ms))
    delay = out.get("delay_ms")
    if isinstance(delay, (int, float)):
        out["software_loop"] = software_loop(max(0.0, delay - chunk_ms))
    return out


def _summary(c: Conn) -> dict[str, Any]:
    """What the report's support block keeps of one connection."""
    close = c.close or {}
    end = close.get("t")
    return {
        "conn": c.conn,
        "session_id": c.session_id,
        "auth": c.details.get("auth"),
        "opened_wall": c.details.get("wall"),
        "duration_s": None if end is None else round(float(end) - c.opened_t, 3),
        "close_code": close.get("code"),
        "close_reason": close.get("reason"),
        "closed_by": close.get("by"),
        "ended_cleanly": c.ended_t is not None or c.session_end_t is not None,
    }


def _round(v: Any) -> Any:
    return round(v, 1) if isinstance(v, float) and math.isfinite(v) else v
