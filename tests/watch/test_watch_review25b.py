"""A reviewer's second round on the watch fixes: each case fails on the code before it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from doctor.capture.format import ConnEvent, Frame
from doctor.net.mint_outcome import Outcome
from doctor.result import Status
from doctor.session import SessionAnalyzer, Source
from doctor.watch.findings import conn_findings
from doctor.watch.observe import Conn
from doctor.watch.relay import MAX_TOKEN_ANSWERS, Relay, RelayStats, token_answer_outcome
from doctor.watch.results import token_result

T0 = 1_796_000_000.0
BAD_KEY = Outcome("unauthorized", Status.FAIL, "the key was refused", "token_auth", "404")


def _stats_after(answers: list[Outcome | None]) -> dict[str, Any]:
    relay: Any = SimpleNamespace(stats=RelayStats())
    for outcome in answers:
        relay.stats.token_requests += 1
        Relay._token_answer(relay, 200 if outcome is None else 404, outcome)
    return relay.stats.to_dict(None)


def test_a_token_failure_after_many_good_answers_is_kept_and_fails() -> None:
    stats = _stats_after([None] * (MAX_TOKEN_ANSWERS + 5) + [BAD_KEY])
    r = token_result(stats, {"host": "agents.assemblyai.com"})
    assert r is not None and (r.status, r.cause) == (Status.FAIL, "unauthorized"), r.summary


def test_an_app_that_got_a_token_in_the_end_is_warned_not_failed() -> None:
    limited = Outcome("rate_limited", Status.FAIL, "429", "rate_limit", "retry after 1 s")
    r = token_result(_stats_after([limited, None]), {"host": "agents.assemblyai.com"})
    assert r is not None and (r.status, r.cause) == (Status.WARN, "rate_limited"), r.summary


def test_a_rejected_parameter_is_told_against_the_apps_own_request() -> None:
    body = {"detail": [{"loc": ["query", "expires_in_seconds"], "msg": "must be <= 600"}]}
    answer = SimpleNamespace(status_code=422, json=lambda: body, text="", headers={})
    out = token_answer_outcome(answer, "expires_in_seconds=9999")
    assert out is not None and "the app asked for expires_in_seconds=9999" in out.detail
    assert "agent-doctor asked" not in out.detail


def test_the_relays_own_failure_blames_no_app() -> None:
    c = Conn(conn=1, opened_t=0.0, details={"path": "/v1/ws"}, session_id="s_1", ready_t=0.4)
    c.close = {"t": 5.0, "by": "relay", "code": None, "reason": None}
    c.close |= {"app_code": None, "app_reason": None}
    c.close |= {"service_code": 1011, "service_reason": "relay error"}
    found = conn_findings(c)
    assert not [f for f in found if f.cause == "protocol_close"], found
    assert "None" not in " ".join(f.summary for f in found)


def _drop_then_resume(ready_id: str) -> list[Any]:
    a = SessionAnalyzer(Source(shape="capture", region="us", sent_logged=True))
    for rec in (
        ConnEvent(0, T0, 1, "open", {"path": "/v1/ws", "auth": "query"}),
        Frame(0.01, T0 + 0.01, 1, "app", msg={"type": "session.update", "session": {}}),
        Frame(0.4, T0 + 0.4, 1, "service", msg={"type": "session.ready", "session_id": "s_1"}),
        ConnEvent(1, T0 + 1, 1, "close", {"by": "app", "code": None, "reason": None}),
        ConnEvent(2, T0 + 2, 2, "open", {"path": "/v1/ws", "auth": "query"}),
        Frame(2.01, T0 + 2.01, 2, "app", msg={"type": "session.resume", "session_id": "s_1"}),
        Frame(2.1, T0 + 2.1, 2, "service", msg={"type": "session.ready", "session_id": ready_id}),
        Frame(3, T0 + 3, 2, "app", msg={"type": "session.end"}),
        Frame(3.1, T0 + 3.1, 2, "service", msg={"type": "session.ended"}),
        ConnEvent(3.2, T0 + 3.2, 2, "close", {"by": "service", "code": 1000, "reason": ""}),
    ):
        a.feed(rec)
    return a.finish()


def test_a_resume_answered_with_another_session_is_no_resume_of_the_dropped_one() -> None:
    first = {r.id: r for r in _drop_then_resume("s_2")[0].results}
    assert first["session-billing"].cause == "no_session_end", first["session-billing"].summary
    same = {r.id: r for r in _drop_then_resume("s_1")[0].results}
    assert same["session-billing"].status is Status.PASS  # the fix it guards stays


def test_a_mid_session_error_still_asks_the_log_for_its_session_id() -> None:
    a = SessionAnalyzer(Source(shape="jsonl", region="us", sent_logged=True))
    a.feed(Frame(0, T0, 1, "app", msg={"type": "session.update", "session": {}}))
    a.feed(Frame(0.5, T0 + 0.5, 1, "service", msg={"type": "reply.done"}))
    err = {"type": "session.error", "code": "invalid_audio", "message": "bad"}
    a.feed(Frame(1, T0 + 1, 1, "service", msg=err))
    log = {r.id: r for f in a.finish() for r in f.results}["session-log"]
    assert "session id" in log.summary, log.summary


def test_a_refusal_before_any_session_asks_the_log_for_no_session_id() -> None:
    """agent_init_failed, agent_timeout, server_error arrive before session.ready
    (protocol.md): there is no id to log."""
    for code in ("server_error", "agent_init_failed"):
        a = SessionAnalyzer(Source(shape="jsonl", region="us", sent_logged=True))
        a.feed(Frame(0, T0, 1, "app", msg={"type": "session.update", "session": {}}))
        err = {"type": "session.error", "code": code, "message": "no"}
        a.feed(Frame(0.3, T0 + 0.3, 1, "service", msg=err))
        log = {r.id: r for f in a.finish() for r in f.results}["session-log"]
        assert "session id" not in log.summary, (code, log.summary)
