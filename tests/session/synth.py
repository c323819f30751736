"""Synthetic sessions as the live service sends them (session-formats §6), for the core's tests.

`Script` writes events on the server clock: each reply has a silent lead-in of 10 ms
chunks before its first audible chunk, deltas in one burst, `transcript.agent` at the
audible end and `reply.done` 0.3 s later; a barge-in emits its events together (§6.2).
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

import numpy as np

from doctor.session.events import Event, make_event, meta

T0 = 1_800_000_000.0
_ids = itertools.count(1)
SILENT = base64.b64encode(b"\x00\x00" * 240).decode()
_tone = (np.sin(np.arange(240) * 0.3) * 8000).astype("<i2").tobytes()
LOUD = base64.b64encode(_tone).decode()


def rid() -> str:
    return f"resp_{next(_ids):032x}"


class Script:
    def __init__(
        self,
        *,
        session_id: str = "sess_" + "a" * 32,
        audio: bool = True,
        sent: bool = True,
        recv_skew: float = 0.05,
    ) -> None:
        self.events: list[Event] = []
        self.t = T0
        self.sid = session_id
        self.audio = audio
        self.sent = sent
        self.skew = recv_skew

    def svc(self, kind: str, t: float, **fields: Any) -> None:
        self.events.append(
            make_event({"type": kind, "timestamp": t, **fields}, "service", t + self.skew)
        )

    def app(self, kind: str, t: float, **fields: Any) -> None:
        if self.sent:
            self.events.append(make_event({"type": kind, **fields}, "app", t))

    def open(
        self,
        tools: list[dict[str, Any]] | None = None,
        turn_detection: Any = None,
        agent_id: str | None = None,
    ) -> Script:
        """`agent_id`: a stored agent's session, whose first update names only the agent."""
        cfg: dict[str, Any] = {
            "input": {
                "format": {"encoding": "audio/pcm", "sample_rate": 24000},
                "turn_detection": turn_detection,
            },
            "output": {"voice": "jane"},
            "tools": tools or [],
        }
        self.events.append(meta("meta.open", self.t, path="/v1/ws", auth="header"))
        if agent_id is not None:
            cfg = {"agent_id": agent_id}
        self.app("session.update", self.t + 0.01, session=cfg)
        self.svc("session.updated", self.t + 0.4, config=cfg)
        self.svc(
            "session.ready",
            self.t + 0.42,
            session_id=self.sid,
            config=cfg,
            expires_at=int(self.t) + 3600,
            resume_token="<redacted>",
        )
        self.t += 0.5  # the app has received session.ready by now
        return self

    def reply(
        self,
        text: str,
        *,
        lead_in: float = 0.8,
        speak: float = 2.0,
        cut_after: float | None = None,
        tool: tuple[str, str] | None = None,
        after_user: float = 0.0,
    ) -> str:
        """A reply created now; audible after `lead_in`; cut `cut_after` s into its sound."""
        r = rid()
        t = self.t + after_user
        self.svc("reply.started", t, reply_id=r, item_id="msg_" + r[5:])
        if tool:
            self.svc("tool.call", t + 0.05, call_id=tool[0], name=tool[1], arguments={})
        words = text.split()
        per_ms = (speak * 1000 - 150) / max(1, len(words))  # the last word ends 150 ms early
        for i, w in enumerate(words):
            start_ms, end_ms = round(i * per_ms), round((i + 1) * per_ms)
            self.svc(
                "transcript.agent.delta",
                t + 0.01,
                reply_id=r,
                delta=w + " ",
                start_ms=start_ms,
                end_ms=end_ms,
            )
        audible = t + lead_in
        end = audible + (speak if cut_after is None else cut_after)
        if self.audio:
            ts = t + 0.01
            while ts < end:
                self.svc("reply.audio", ts, reply_id=r, data=LOUD if ts >= audible else SILENT)
                ts += 0.1  # one chunk per 100 ms keeps tests small; levels are what count
        if cut_after is None:
            self.svc("transcript.agent", end, reply_id=r, text=text, interrupted=False)
            self.svc("reply.done", end + 0.3, reply_id=r, status="completed")
            self.t = end + 0.3
        else:
            words = text.split()
            said = " ".join(words[: max(0, int(cut_after * 2.5))])
            self.svc("transcript.agent", end, reply_id=r, text=said, interrupted=True)
            self.svc("input.speech.started", end + 0.002)
            self.svc("reply.done", end + 0.003, reply_id=r, status="interrupted")
            self.t = end + 0.003
        return r

    def user(
        self, text: str, *, speak: float = 1.5, commit: float = 1.0, started: bool = True
    ) -> None:
        if started:
            self.svc("input.speech.started", self.t + 0.6)
        self.svc("transcript.user.delta", self.t + 0.9, text=text[:5])
        stop = self.t + speak + commit
        self.svc("input.speech.stopped", stop)
        self.svc("transcript.user", stop + 0.001, text=text)
        self.t = stop + 0.002

    def user_after_cut(self, text: str, speak: float = 1.2) -> None:
        """The user's turn that began at a cut (input.speech.started already sent)."""
        self.user(text, speak=speak, commit=0.8, started=False)

    def mic(
        self,
        seconds: float,
        *,
        chunk_s: float = 0.05,
        pace: float = 1.0,
        start: float | None = None,
    ) -> None:
        t = self.t if start is None else start
        n = int(seconds / chunk_s)
        pcm = (np.sin(np.arange(int(24000 * chunk_s)) * 0.05) * 3000).astype("<i2").tobytes()
        b64 = base64.b64encode(pcm).decode()
        for i in range(n):
            self.app("input.audio", t + i * chunk_s / pace, audio=b64)

    def tool_result(self, call_id: str, after: float = 0.5) -> None:
        self.app("tool.result", self.t + after, call_id=call_id, result='{"ok": true}')

    def end(self, *, send_end: bool = True, close_code: int | None = 1000) -> None:
        if send_end:
            self.app("session.end", self.t + 0.5)
            self.svc(
                "session.ended",
                self.t + 0.8,
                session_duration_seconds=self.t - T0,
                audio_duration_seconds=None,
            )
        if close_code is not None or not send_end:
            self.events.append(
                meta(
                    "meta.close",
                    self.t + 0.9,
                    code=close_code,
                    reason="" if close_code else None,
                    by="service",
                )
            )
        self.t += 1.0

    def sorted(self) -> list[Event]:
        order = {id(e): i for i, e in enumerate(self.events)}
        return sorted(
            self.events,
            key=lambda e: (e.recv_t if e.recv_t is not None else e.t or 0, order[id(e)]),
        )


def normal_session(**kw: Any) -> Script:
    """A well-behaved user, one barge-in, one tool call answered in time, session.end."""
    s = Script(**kw).open(tools=[{"name": "lookup", "timeout_seconds": 30.0}])
    s.reply("Hello! How can I help?", lead_in=0.3)
    s.user("When do you open tomorrow?")
    s.reply(
        "We open at nine in the morning and close at six in the evening every day.",
        speak=4.0,
        cut_after=2.8,
    )
    s.user_after_cut("And on Sunday?")
    s.reply("Let me check that for you.", tool=("chatcmpl-tool-0000000000000001", "lookup"))
    s.tool_result("chatcmpl-tool-0000000000000001", after=-1.5)
    s.reply("On Sunday we open at ten.", lead_in=0.9)
    s.user("Thanks, bye.")
    s.reply("Goodbye!")
    s.end()
    return s
