"""s25 review of watch, points 6-8, on the session analysis of a watch capture: no Python
None in what the user reads (6), a drop followed by an accepted resume is no hang-up (7),
and a connection that never reached session.ready lacks nothing in the log (8)."""

from __future__ import annotations

from typing import Any

from doctor.capture.format import ConnEvent, Frame
from doctor.session import SessionAnalyzer, Source
from doctor.watch.results import relay_result

T0 = 1_796_000_000.0


def _analyse(records: list[Any]) -> dict[str, Any]:
    a = SessionAnalyzer(Source(shape="capture", region="us", sent_logged=True))
    for r in records:
        a.feed(r)
    (found,) = a.finish()
    return {r.id: r for r in found.results}


def _session(close: dict[str, Any], *app: dict[str, Any]) -> list[Any]:
    return [
        ConnEvent(0, T0, 1, "open", {"path": "/v1/ws", "auth": "header"}),
        Frame(0.01, T0 + 0.01, 1, "app", msg={"type": "session.update", "session": {}}),
        Frame(0.4, T0 + 0.4, 1, "service", msg={"type": "session.ready", "session_id": "s_1"}),
        *(Frame(1 + i, T0 + 1 + i, 1, "app", msg=m) for i, m in enumerate(app)),
        ConnEvent(5, T0 + 5, 1, "close", close),
    ]


def _all_text(results: dict[str, Any]) -> str:
    return "\n".join(
        r.summary + "\n" + "\n".join(r.fix.steps if r.fix else []) for r in results.values()
    )


def test_d6_a_drop_without_a_close_frame_never_says_none() -> None:
    results = _analyse(_session({"by": "app", "code": None, "reason": None}))
    billing = results["session-billing"]
    assert billing.cause == "no_session_end"
    assert "The app closed the connection (no close frame)" in billing.summary
    assert "None" not in _all_text(results), _all_text(results)


def test_d6_a_message_with_a_null_type_is_a_message_without_a_type() -> None:
    results = _analyse(
        _session({"by": "app", "code": 1000, "reason": ""}, {"type": None}, {"type": "foo.bar"})
    )
    protocol = next(r for r in results.values() if r.cause == "unknown_message")
    assert "unknown message types (no type), foo.bar" in protocol.summary
    assert "None" not in protocol.summary


def test_d6_no_frame_forwarded_says_the_send_time_was_not_measured() -> None:
    r = relay_result({"connections": 1, "frames_forwarded": 0, "added_latency_p50_ms": None})
    assert "None" not in r.summary and "p50 not measured (no frame)" in r.summary


def test_d7_a_drop_followed_by_an_accepted_resume_is_not_a_hang_up() -> None:
    """A watch capture: the app drops (no close frame), resumes on a new connection (the
    service answers session.ready), then ends the session there."""
    a = SessionAnalyzer(Source(shape="capture", region="us", sent_logged=True))
    svc = "service"
    records: list[Any] = [
        ConnEvent(0, T0, 1, "open", {"path": "/v1/ws", "auth": "query"}),
        Frame(0.01, T0 + 0.01, 1, "app", msg={"type": "session.update", "session": {}}),
        Frame(0.4, T0 + 0.4, 1, svc, msg={"type": "session.ready", "session_id": "s_1"}),
        ConnEvent(1, T0 + 1, 1, "close", {"by": "app", "code": None, "reason": None}),
        ConnEvent(2, T0 + 2, 2, "open", {"path": "/v1/ws", "auth": "query"}),
        Frame(2.01, T0 + 2.01, 2, "app", msg={"type": "session.resume", "session_id": "s_1"}),
        Frame(2.1, T0 + 2.1, 2, svc, msg={"type": "session.ready", "session_id": "s_1"}),
        Frame(3, T0 + 3, 2, "app", msg={"type": "session.end"}),
        Frame(3.1, T0 + 3.1, 2, svc, msg={"type": "session.ended"}),
        ConnEvent(3.2, T0 + 3.2, 2, "close", {"by": "service", "code": 1000, "reason": ""}),
    ]
    for r in records:
        a.feed(r)
    dropped, resumed = ({r.id: r for r in f.results} for f in a.finish())
    assert dropped["session-errors"].cause is None, dropped["session-errors"].summary
    assert dropped["session-billing"].cause is None, dropped["session-billing"].summary
    assert "resumed the session" in dropped["session-billing"].summary
    assert resumed["session-resume"].cause is None and resumed["session-billing"].cause is None


def test_d7_a_drop_never_resumed_is_still_a_hang_up() -> None:
    results = _analyse(_session({"by": "app", "code": None, "reason": None}))
    assert results["session-errors"].cause == "abrupt_close"
    assert results["session-billing"].cause == "no_session_end"


def test_d8_a_capture_connection_that_never_became_a_session_lacks_nothing() -> None:
    """watch's capture of a bad key: the service answers session.error and closes; no
    session.ready, so there is no session id the log could have kept."""
    a = SessionAnalyzer(Source(shape="capture v1 (audio keep)", region="us", sent_logged=True))
    records: list[Any] = [
        ConnEvent(0, T0, 1, "open", {"path": "/v1/ws", "auth": "header"}),
        Frame(0.01, T0 + 0.01, 1, "app", msg={"type": "session.update", "session": {}}),
        Frame(
            0.2,
            T0 + 0.2,
            1,
            "service",
            msg={"type": "session.error", "code": "unauthorized", "message": "Invalid key"},
        ),
        ConnEvent(0.3, T0 + 0.3, 1, "close", {"by": "service", "code": 1008, "reason": ""}),
    ]
    for r in records:
        a.feed(r)
    results = {r.id: r for f in a.finish() for r in f.results}
    log = results["session-log"]
    assert log.cause is None and "no session.ready" in log.summary, log.summary
    assert "run the app through agent-doctor watch" not in _all_text(results)


def test_d8_a_capture_with_only_a_refused_upgrade_lacks_nothing() -> None:
    a = SessionAnalyzer(Source(shape="capture v1 (audio summary)", region="us", sent_logged=True))
    a.feed(
        ConnEvent(0, T0, 1, "open", {"path": "/v1/ws", "auth": "header", "upstream_status": 502})
    )
    results = {r.id: r for f in a.finish() for r in f.results}
    assert results["session-log"].cause is None, results["session-log"].summary


def test_d8_an_app_log_without_a_session_id_still_lacks_it() -> None:
    a = SessionAnalyzer(Source(shape="jsonl", region="us", sent_logged=True))
    a.feed(Frame(0, T0, 1, "app", msg={"type": "session.update", "session": {}}))
    a.feed(Frame(0.5, T0 + 0.5, 1, "service", msg={"type": "reply.done"}))
    results = {r.id: r for f in a.finish() for r in f.results}
    assert results["session-log"].cause == "log_incomplete"
