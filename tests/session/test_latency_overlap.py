"""session-latency says what is true when replies overlap the user's speech (barge-ins):
no negative latency (it printed "p50 0.00 s ... worst -0.40 s"), and a skip names what
the log holds (audio kept but silent is not "redacted or summarised")."""

from __future__ import annotations

import re

from synth import LOUD, SILENT, Script, rid

from doctor.result import Result, Status
from doctor.session.analyzer import SessionAnalyzer, Source


def _latency(s: Script) -> Result:
    a = SessionAnalyzer(Source(shape="test", path="x", sent_logged=True))
    for ev in s.sorted():
        a.feed(ev)
    (found,) = a.finish()
    return next(r for r in found.results if r.id == "session-latency")


def _turn(s: Script, *, heard_after_stop: float, data: str | None = LOUD) -> None:
    """A user turn (stopped 1.0 s in) and a reply heard `heard_after_stop` s after it:
    negative when the reply sounded while the user still spoke."""
    t, r = s.t, rid()
    stop = t + 1.0
    s.svc("input.speech.started", t + 0.2)
    s.svc("input.speech.stopped", stop)
    s.svc("transcript.user", stop + 0.001, text="hi there")
    first = stop + heard_after_stop
    s.svc("reply.started", min(first, stop) - 0.05, reply_id=r)
    if data is not None:
        for i in range(8):
            s.svc("reply.audio", first + i * 0.1, reply_id=r, data=data)
    s.svc("transcript.agent", first + 0.9, reply_id=r, text="Hello there", interrupted=False)
    s.svc("reply.done", first + 1.0, reply_id=r, status="completed")
    s.t = first + 1.5


def _no_negative_number(text: str) -> None:
    assert not re.search(r"-\d", text), text


def test_every_reply_overlapping_is_barge_in_not_negative_latency() -> None:
    s = Script().open()
    for _ in range(3):
        _turn(s, heard_after_stop=-0.4)
    s.end()
    r = _latency(s)
    assert r.status is Status.PASS, r.summary
    assert "every reply overlapped the user's speech (barge-in)" in r.summary.lower()
    assert "p50" not in r.summary
    _no_negative_number(r.summary)
    assert r.evidence["overlapping"] == 3 and r.evidence["worst_s"] is None
    assert r.evidence["per_turn_s"] == []


def test_some_overlapping_replies_leave_the_measured_ones_and_are_named() -> None:
    s = Script().open()
    _turn(s, heard_after_stop=-0.4)
    _turn(s, heard_after_stop=0.9)
    _turn(s, heard_after_stop=-0.3)
    s.end()
    r = _latency(s)
    _no_negative_number(r.summary)
    assert "2 more overlapped the user's speech (barge-in)" in r.summary
    assert abs(r.evidence["worst_s"] - 0.9) < 0.05
    assert all(v >= 0 for v in r.evidence["per_turn_s"]), r.evidence["per_turn_s"]


def test_reply_audio_kept_but_silent_is_named_as_such() -> None:
    s = Script().open()
    _turn(s, heard_after_stop=0.8, data=SILENT)
    s.end()
    r = _latency(s)
    assert (r.status, r.cause) == (Status.SKIP, "no_audible_start")
    assert "redacted" not in r.summary and "summarised" not in r.summary
    assert "kept in the log is silent" in r.summary
    # a log keeping only each reply's first (silent) chunk is no proof that nothing was heard
    assert "no reply made a sound" not in r.summary and "silent lead-in" in r.summary


def test_redacted_reply_audio_is_still_named_redacted() -> None:
    s = Script().open()
    _turn(s, heard_after_stop=0.8, data="<redacted>")
    s.end()
    r = _latency(s)
    assert (r.status, r.cause) == (Status.SKIP, "no_audible_start")
    assert "redacted or summarised" in r.summary
