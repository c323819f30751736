"""Billing: a session the service closed (an internal error, then 1011) is not the app's
missing session.end (review r15 #8); the app's own close still is."""

from __future__ import annotations

from synth import Script

from doctor.result import Status
from doctor.session import Source, analyze_events
from doctor.session.events import meta


def billing(s: Script) -> object:
    (f,) = analyze_events(s.sorted(), Source(shape="synthetic"))
    return next(r for r in f.results if r.id == "session-billing")


def test_internal_error_then_1011_is_not_blamed_on_the_app() -> None:
    s = Script().open()
    s.mic(1.0)
    s.svc("session.error", s.t + 0.5, code="internal_error", message="Internal error")
    s.events.append(meta("meta.close", s.t + 0.6, code=1011, reason="", by=None))
    r = billing(s)
    assert r.status is Status.PASS, r.summary  # type: ignore[attr-defined]
    assert "Not the app's close" in r.summary  # type: ignore[attr-defined]


def test_the_apps_own_close_without_session_end_still_warns() -> None:
    s = Script().open()
    s.mic(1.0)
    s.end(send_end=False, close_code=1000)
    r = billing(s)
    assert r.cause == "no_session_end"  # type: ignore[attr-defined]
