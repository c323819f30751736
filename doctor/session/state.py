"""What one session's events add up to: replies, user turns, tool calls, errors, audio.

The collector keeps facts, not events, so an hour-long session costs a few thousand small
records whatever the log's size; the findings modules judge these facts afterwards.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import Any

from doctor.json_numbers import finite
from doctor.session.b64 import b64decode_strict
from doctor.session.events import (
    CLIENT_FIELDS,
    CLIENT_TYPES,
    KNOWN_TYPES,
    META_AUDIBLE,
    META_CLOSE,
    META_CONFIG,
    META_ENDED,
    META_OPEN,
    OLD_FIELDS,
    OLD_SESSION_FIELDS,
    Event,
)
from doctor.session.levels import audible
from doctor.session.secrets import scrub, secrets_in
from doctor.session.words import join_deltas

PCM_BYTES_PER_S = 48000  # 24 kHz PCM16 mono
RESUME_CODES = frozenset({"session_not_found", "session_forbidden", "session_expired"})


@dataclass
class UserTurn:
    started_t: float | None = None
    stopped_t: float | None = None
    text: str | None = None
    during_reply: str | None = None  # the reply that was playing when the user started


@dataclass
class Reply:
    reply_id: str
    started_t: float | None = None  # reply.started: creation, not sound
    first_chunk_t: float | None = None
    audible_t: float | None = None
    audible_from: str | None = None
    audible_known: bool = False  # the log can tell sound from silence for this reply
    text: str | None = None
    deltas: list[str] = field(default_factory=list)
    status: str | None = None
    interrupted: bool = False
    cut_t: float | None = None
    done_t: float | None = None
    answers: UserTurn | None = None  # the user turn just before it
    tool_calls: list[str] = field(default_factory=list)
    audio_bytes: int = 0
    next_user_text: str | None = None  # the user's words after a cut
    last_word_end_ms: int | None = None  # the deltas' largest end_ms (from the audible start)
    estimated_audible_t: float | None = None  # transcript.agent time minus that (§6.3)
    trigger: str | None = None
    text_unknown: bool = False  # the log never keeps this reply's words (a harness report)

    @property
    def spoken(self) -> str:
        return self.text if self.text is not None else join_deltas(self.deltas)


@dataclass
class ToolCall:
    call_id: str
    name: str
    t: float | None
    reply_id: str | None
    result_t: float | None = None  # None when unanswered or answered on an untimed line
    answered: bool = False  # a tool.result was seen, with or without a time
    timed_out: bool | None = None  # the vendor's own flag (timeline)
    interrupted_after: bool = False


@dataclass
class SessionError:
    t: float | None
    code: str
    message: str
    param: Any
    cause: dict[str, Any] | None  # the app's message that probably caused it


@dataclass
class Close:
    t: float | None
    code: int | None
    reason: str | None
    by: str | None


@dataclass
class AppAudio:
    """The app's input.audio: sizes, pacing against its own clock, and the PCM for the core."""

    chunks: int = 0
    bytes: int = 0
    invalid: int = 0
    before_ready: int = 0
    first_t: float | None = None
    last_t: float | None = None
    max_gap_s: float = 0.0
    max_ahead_s: float = 0.0
    sizes: list[int] = field(default_factory=list)  # first few thousand chunk sizes
    kept_pcm: bool = False


@dataclass
class Segment:
    """One session (one connection, or what a log without connections shows as one)."""

    index: int
    session_id: str | None = None
    conn: int | None = None
    first_t: float | None = None
    last_t: float | None = None
    ready_t: float | None = None
    opened_t: float | None = None
    update_t: float | None = None
    resume_of: str | None = None
    resume_answer: str | None = None  # "ready" or an error code
    config: dict[str, Any] = field(default_factory=dict)
    replies: list[Reply] = field(default_factory=list)
    users: list[UserTurn] = field(default_factory=list)
    tools: dict[str, ToolCall] = field(default_factory=dict)
    errors: list[SessionError] = field(default_factory=list)
    closes: list[Close] = field(default_factory=list)
    ended_event: dict[str, Any] | None = None
    ended_meta: dict[str, Any] | None = None
    ended_meta_t: float | None = None  # the vendor's end: start + duration_seconds
    sent_end_t: float | None = None  # None also when sent on an untimed line: see sent_end
    sent_end: bool = False  # the app sent session.end (seen-ness never depends on a time)
    app_messages: int = 0
    service_messages: int = 0
    unknown_types: dict[str, int] = field(default_factory=dict)
    unknown_service_types: dict[str, int] = field(default_factory=dict)  # newer than us?
    old_fields: dict[str, str] = field(default_factory=dict)
    unknown_fields: dict[str, int] = field(default_factory=dict)
    conversation_messages: int = 0
    text_frames: int = 0
    binary_frames: int = 0
    audio: AppAudio = field(default_factory=AppAudio)
    endpoint: str | None = None  # the URL or region the app's log names
    has_recv_time: bool = False
    has_server_time: bool = False
    secrets: set[str] = field(default_factory=set)  # tokens the log carries: never printed

    @property
    def ended(self) -> bool:
        return self.ended_event is not None or bool(self.closes) or self.ended_meta is not None


AUDIO_TYPES = frozenset({"input.audio", "reply.audio"})
AUDIO_KEYS = frozenset({"type", "audio", "data", "reply_id", "item_id", "timestamp", "event_id"})


class Collector:
    """Feeds one Segment from events in time order; `audio_sink` receives the app's PCM."""

    def __init__(self, seg: Segment, audio_sink: Any = None) -> None:
        self.seg = seg
        self.audio_sink = audio_sink
        self._replies: dict[str, Reply] = {}
        self._playing: Reply | None = None
        self._user: UserTurn | None = None
        self._last_app: dict[str, Any] | None = None
        self._last_audio_msg: dict[str, Any] | None = None
        self._await_user_after_cut: Reply | None = None
        self._out_encoding = "audio/pcm"
        self._answered: set[int] = set()  # ids of user turns a reply answers

    # -- helpers ---------------------------------------------------------------------------
    def reply(self, reply_id: str, t: float | None) -> Reply:
        r = self._replies.get(reply_id)
        if r is None:
            r = Reply(reply_id, started_t=t, answers=self._answerable_user())
            if r.answers is not None:
                self._answered.add(id(r.answers))
            self._replies[reply_id] = r
            self.seg.replies.append(r)
        return r

    def _answerable_user(self) -> UserTurn | None:
        """The latest user turn, unless a reply already answers it."""
        users = self.seg.users
        if not users or id(users[-1]) in self._answered:
            return None
        return users[-1]

    # -- feed ------------------------------------------------------------------------------
    def feed(self, ev: Event) -> None:
        seg = self.seg
        if ev.t is not None:
            seg.first_t = ev.t if seg.first_t is None else min(seg.first_t, ev.t)
            seg.last_t = ev.t if seg.last_t is None else max(seg.last_t, ev.t)
        if ev.recv_t is not None and ev.direction != "meta":
            seg.has_recv_time = True
        if ev.server_t is not None:
            seg.has_server_time = True
        if not (ev.type in AUDIO_TYPES and ev.payload.keys() <= AUDIO_KEYS):
            seg.secrets.update(secrets_in(ev.payload))  # audio messages (most) carry none
        if ev.direction == "meta":
            self._meta(ev)
        elif ev.direction == "app":
            seg.app_messages += 1
            self._app(ev)
        else:
            seg.service_messages += 1
            self._service(ev)

    def _meta(self, ev: Event) -> None:
        p, seg = ev.payload, self.seg
        if ev.type == META_OPEN:
            seg.opened_t = ev.t
            where = p.get("region") or p.get("url") or p.get("path")
            if isinstance(where, str) and where:
                seg.endpoint = where
        elif ev.type == META_CLOSE:
            code = p.get("code")
            seg.closes.append(
                Close(
                    ev.t,
                    code if isinstance(code, int) else None,
                    scrub(p["reason"], seg.secrets) if isinstance(p.get("reason"), str) else None,
                    p.get("by"),
                )
            )
        elif ev.type == META_AUDIBLE:
            rid = p.get("reply_id")
            if isinstance(rid, str) and ev.t is not None:
                r = self.reply(rid, None)
                if r.audible_t is None:
                    r.audible_t, r.audible_from = ev.t, str(p.get("source", "timeline"))
        elif ev.type == META_ENDED:
            seg.ended_meta, seg.ended_meta_t = dict(p), ev.t
        elif ev.type == META_CONFIG and isinstance(p.get("config"), dict):
            self._config(p["config"])

    def _config(self, cfg: dict[str, Any]) -> None:
        self.seg.config.update(cfg)
        out = cfg.get("output")
        if isinstance(out, dict) and isinstance(out.get("format"), dict):
            self._out_encoding = str(out["format"].get("encoding") or "audio/pcm")

    def _app(self, ev: Event) -> None:
        seg, p, kind = self.seg, ev.payload, ev.type
        if kind == "":
            if p.get("_text") is not None:
                seg.text_frames += 1
            elif p.get("_binary") is not None:
                seg.binary_frames += 1
            else:
                seg.unknown_types["(no type)"] = seg.unknown_types.get("(no type)", 0) + 1
            return
        if kind not in CLIENT_TYPES:
            seg.unknown_types[kind] = seg.unknown_types.get(kind, 0) + 1
        else:
            allowed = CLIENT_FIELDS[kind]
            for key in p:
                if key in allowed:
                    continue
                if (kind, key) in OLD_FIELDS:
                    seg.old_fields[f"{kind}.{key}"] = OLD_FIELDS[(kind, key)]
                elif not key.startswith("_"):
                    name = f"{kind}.{key}"
                    seg.unknown_fields[name] = seg.unknown_fields.get(name, 0) + 1
            cfg = p.get("session") if kind == "session.update" else None
            for key in cfg if isinstance(cfg, dict) else ():
                if key in OLD_SESSION_FIELDS:
                    seg.old_fields[f"session.update.session.{key}"] = OLD_SESSION_FIELDS[key]
        if kind == "input.audio":
            self._last_audio_msg = {"type": kind, "line": ev.line}
            self._input_audio(ev)
            return
        self._last_app = {k: v for k, v in p.items() if k != "audio"}
        if ev.line is not None:
            self._last_app["_line"] = ev.line
        if kind == "session.update":
            first = seg.update_t is None
            if first:
                seg.update_t = ev.t
            sess = p.get("session")
            if isinstance(sess, dict):
                # agent_id counts in the first update only: the service refuses a later one
                # (`agent_id_not_first`, field-facts §3) and keeps the session's agent
                self._config(sess if first else {k: v for k, v in sess.items() if k != "agent_id"})
        elif kind == "session.resume":
            sid = p.get("session_id")
            seg.resume_of = sid if isinstance(sid, str) else "?"
            if seg.update_t is None:
                seg.update_t = ev.t
        elif kind == "session.end":
            if not seg.sent_end:
                seg.sent_end, seg.sent_end_t = True, ev.t
        elif kind == "conversation.message":
            seg.conversation_messages += 1
        elif kind == "tool.result":
            cid = p.get("call_id")
            if isinstance(cid, str):
                call = seg.tools.get(cid)
                if call is None:
                    call = seg.tools[cid] = ToolCall(cid, "?", None, None)
                if not call.answered:
                    call.answered, call.result_t = True, ev.t
                if p.get("_timed_out") is True:
                    call.timed_out = True

    def _input_audio(self, ev: Event) -> None:
        a, seg = self.seg.audio, self.seg
        a.chunks += 1
        if seg.ready_t is None:
            a.before_ready += 1
        info = ev.audio
        n: int | None = None
        pcm: bytes | None = None
        if info is not None:
            n, pcm = info.size, info.pcm
            if not info.valid_base64:
                a.invalid += 1
        else:
            raw = ev.payload.get("audio")
            if isinstance(raw, str):
                try:
                    pcm = b64decode_strict(raw)
                    n = len(pcm)
                except (binascii.Error, ValueError):
                    a.invalid += 1
            else:
                a.invalid += 1
        if n:
            a.bytes += n
            if len(a.sizes) < 5000:
                a.sizes.append(n)
        if pcm:
            a.kept_pcm = True
            if self.audio_sink is not None:
                self.audio_sink(pcm)
        t = ev.recv_t if ev.recv_t is not None else ev.t
        if t is not None:
            if a.last_t is not None:
                a.max_gap_s = max(a.max_gap_s, t - a.last_t)
            if a.first_t is None:
                a.first_t = t
            a.last_t = t
            ahead = a.bytes / PCM_BYTES_PER_S - (t - a.first_t)
            a.max_ahead_s = max(a.max_ahead_s, ahead)

    def _service(self, ev: Event) -> None:
        seg, p, kind, t = self.seg, ev.payload, ev.type, ev.t
        if kind == "error":  # an older or proxied shape of session.error
            self._error(ev)
            return
        if kind not in KNOWN_TYPES:
            seg.unknown_service_types[kind] = seg.unknown_service_types.get(kind, 0) + 1
            return
        if kind == "session.ready":
            seg.ready_t = t
            sid = p.get("session_id")
            if isinstance(sid, str) and sid:
                seg.session_id = sid
            if seg.resume_of is not None and seg.resume_answer is None:
                seg.resume_answer = "ready"
            if isinstance(p.get("config"), dict):
                self._config(p["config"])
        elif kind == "session.updated":
            if isinstance(p.get("config"), dict):
                self._config(p["config"])
        elif kind == "session.error":
            self._error(ev)
        elif kind == "session.ended":
            seg.ended_event = dict(p)
        elif kind == "input.speech.started":
            u = UserTurn(started_t=t)
            if self._playing is not None and self._playing.done_t is None:
                u.during_reply = self._playing.reply_id
            self._user = u
            seg.users.append(u)
        elif kind == "input.speech.stopped":
            if self._user is None or self._user.stopped_t is not None:
                self._user = UserTurn()
                seg.users.append(self._user)
            self._user.stopped_t = t
        elif kind == "transcript.user":
            text = p.get("text")
            if self._user is None or self._user.text is not None:
                self._user = UserTurn(started_t=None, stopped_t=None)
                seg.users.append(self._user)
            self._user.text = text if isinstance(text, str) else ""
            cut = self._await_user_after_cut
            if cut is not None and cut.next_user_text is None:
                cut.next_user_text = self._user.text
                self._await_user_after_cut = None
        elif kind in ("reply.started", "reply.audio", "transcript.agent.delta"):
            self._reply_event(ev)
        elif kind in ("transcript.agent", "reply.done"):
            self._reply_end(ev)
        elif kind == "tool.call":
            cid = p.get("call_id")
            if isinstance(cid, str):
                rid = self._playing.reply_id if self._playing is not None else None
                call = seg.tools.get(cid)
                if call is None:
                    seg.tools[cid] = ToolCall(cid, str(p.get("name", "?")), t, rid)
                else:  # the result was logged first (clock skew): keep both
                    call.name, call.t, call.reply_id = str(p.get("name", "?")), t, rid
                if self._playing is not None:
                    self._playing.tool_calls.append(cid)

    def _reply_event(self, ev: Event) -> None:
        p, t = ev.payload, ev.t
        rid = p.get("reply_id")
        if not isinstance(rid, str):
            return
        r = self.reply(rid, t)
        if ev.type == "reply.started":
            r.started_t = r.started_t if r.started_t is not None else t
            r.audible_known = r.audible_known or p.get("_audible_known") is True
            r.text_unknown = r.text_unknown or p.get("_text_unknown") is True
            self._playing = r
            return
        if ev.type == "transcript.agent.delta":
            d = p.get("delta")
            if isinstance(d, str) and len(r.deltas) < 2000:
                r.deltas.append(d)
            end_ms = p.get("end_ms")
            if isinstance(end_ms, int) and finite(end_ms) is not None:  # not a bool, not huge
                r.last_word_end_ms = max(end_ms, r.last_word_end_ms or 0)
            return
        if r.first_chunk_t is None:
            r.first_chunk_t = t
        info = ev.audio
        pcm = info.pcm if info is not None else None
        if info is not None and info.size:
            r.audio_bytes += info.size
        if pcm is None and info is None:
            data = p.get("data")
            if isinstance(data, str) and r.audible_t is not None:
                r.audio_bytes += len(data) * 3 // 4  # sound already found: size is enough
            elif isinstance(data, str) and data != "<redacted>":
                try:
                    pcm = b64decode_strict(data)
                    r.audio_bytes += len(pcm)
                except (binascii.Error, ValueError):
                    pcm = None
        if pcm:
            r.audible_known = True
            if r.audible_t is None and audible(pcm, self._out_encoding):
                r.audible_t, r.audible_from = t, "reply.audio"

    def _reply_end(self, ev: Event) -> None:
        p, t = ev.payload, ev.t
        rid = p.get("reply_id")
        if not isinstance(rid, str):
            return
        r = self.reply(rid, None)
        if ev.type == "transcript.agent":
            text = p.get("text")
            r.text = text if isinstance(text, str) else r.text
            if p.get("interrupted") is True:
                r.interrupted, r.cut_t = True, t
            elif t is not None and r.last_word_end_ms:
                r.estimated_audible_t = t - r.last_word_end_ms / 1000.0
        else:
            status = p.get("status")
            r.status = status if isinstance(status, str) else "completed"
            r.done_t = t
            if r.status == "interrupted":
                r.interrupted = True
                r.cut_t = r.cut_t if r.cut_t is not None else t
        if r.interrupted and self._await_user_after_cut is not r and r.next_user_text is None:
            self._await_user_after_cut = r
            for cid in r.tool_calls:
                call = self.seg.tools.get(cid)
                if call is not None and not call.answered:
                    call.interrupted_after = True

    def _error(self, ev: Event) -> None:
        p = ev.payload
        code = str(p.get("code") or p.get("error") or "unknown").lower()
        cause: dict[str, Any] | None = None
        if code == "invalid_audio" and self._last_audio_msg is not None:
            cause = self._last_audio_msg
        elif self._last_app is not None:
            cause = _short(self._last_app)
        if cause is not None:
            cause = {
                k: scrub(v, self.seg.secrets) if isinstance(v, str) else v for k, v in cause.items()
            }
        self.seg.errors.append(
            SessionError(
                ev.t,
                code,
                scrub(str(p.get("message", "")), self.seg.secrets) or "",
                p.get("param"),
                cause,
            )
        )
        if code in RESUME_CODES and self.seg.ready_t is None and self.seg.resume_of is None:
            self.seg.resume_of = "(id not in the log)"  # a log of received messages only
        if self.seg.resume_of is not None and self.seg.resume_answer is None:
            self.seg.resume_answer = code


def _short(msg: dict[str, Any]) -> dict[str, Any]:
    """The offending message for the report: credentials replaced, big values sized."""
    from doctor.capture.format import redact

    out: dict[str, Any] = {}
    for k, v in redact(msg).items():
        text = str(v)
        out[k] = v if len(text) <= 200 else f"<{len(text)} characters>"
    return out
