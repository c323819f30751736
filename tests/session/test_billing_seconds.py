"""Billing evidence: the seconds after the user left, measured, not a constant
(review r15 #11)."""

from __future__ import annotations

import json
from pathlib import Path

import artifacts as A
from synth import Script

from doctor.session import Source, analyze_events
from doctor.session_readers.detect import analyze_path


def test_vendor_timeline_gives_the_seconds_billed_after_the_user_left(tmp_path: Path) -> None:
    tl = A.normal_timeline()
    tl["ended"]["public_reason"] = "connection_lost"
    p = tmp_path / "timeline.json"
    p.write_text(json.dumps(tl))
    (f,) = analyze_path(str(p), lambda _: None)
    r = next(x for x in f.results if x.id == "session-billing")
    assert r.cause == "no_session_end"
    # the user's last speech starts at 21.0 s; the session ended at 26.6 s
    assert r.evidence["billed_after_user_left_s"] == 5.6
    assert "6 s were billed" in r.summary


def test_app_log_gives_the_seconds_from_the_last_audio_to_the_close() -> None:
    s = Script().open()
    s.mic(2.0)
    s.t += 2.0 + 4.0  # the app stops sending, then closes 4 s later
    s.end(send_end=False, close_code=1000)
    (f,) = analyze_events(s.sorted(), Source(shape="synthetic"))
    r = next(x for x in f.results if x.id == "session-billing")
    assert r.cause == "no_session_end"
    assert 4.0 <= r.evidence["user_left_to_close_s"] <= 5.5
    assert "from the user's last activity to the close" in r.summary
