"""The pure classification core of the `token` and `resume` checks: facts in, causes out."""

from __future__ import annotations

from typing import Any

import pytest

from doctor import guide
from doctor.credentials import Finding
from doctor.net.agent_api import (
    ClosedByServer,
    ConnectFailed,
    HandshakeRejected,
    SessionError,
    StepTimeout,
)
from doctor.net.auth_outcome import (
    Failure,
    Outcome,
    after_resume_outcome,
    findings_outcome,
    resume_outcome,
    reuse_refused,
    session_outcome,
)
from doctor.net.mint_outcome import bad_request_param, mint_outcome, mint_unreachable
from doctor.result import Status


def closed(code: int | None, reason: str | None, frame: bool = True, **kw: Any) -> Failure:
    return Failure("closed", kw.pop("step", "ready"), close_code=code, close_reason=reason,
                   close_frame=frame, **kw)  # fmt: skip


def error(code: str, message: str = "", close: int = 1008, reason: str | None = None) -> Failure:
    return Failure(
        "session_error", "ready", error_code=code, error_message=message, close_code=close,
        close_reason=reason or code, close_frame=True,
    )  # fmt: skip


# --- GET /v1/token ------------------------------------------------------------------------


def test_a_well_formed_token_answer_is_no_problem() -> None:
    assert (
        mint_outcome(200, True, 60, 60, None, {"token": "****", "expires_in_seconds": 60}) is None
    )


@pytest.mark.parametrize(
    ("token", "expires", "words"),
    [
        (False, 60, "no `token` string"),
        (True, None, "no integer `expires_in_seconds`"),
        (True, 300, "`expires_in_seconds` 300, not the 60 asked"),
        (False, None, "no `token` string; no integer"),
    ],
)
def test_a_200_of_the_wrong_shape_fails_and_says_what_is_wrong(
    token: bool, expires: int | None, words: str
) -> None:
    out = mint_outcome(200, token, expires, 60, None, {})
    assert out is not None and out.status is Status.FAIL
    assert out.cause == "token_response_invalid" and words in out.summary


@pytest.mark.parametrize(
    ("status", "cause", "guide"),
    [
        (401, "unauthorized", "token_auth"),
        # issue 13: a refused key is unauthorized from the token endpoint, 403 included
        (403, "unauthorized", "token_auth"),
        (429, "rate_limited", "rate_limit"),
        (400, "bad_request", "token_request"),
        (404, "bad_request", "token_request"),
        (500, "server_error", "service_side"),
        (503, "server_error", "service_side"),
        (418, "server_error", "service_side"),
    ],
)
def test_token_endpoint_statuses_map_to_contract_causes(
    status: int, cause: str, guide: str
) -> None:
    out = mint_outcome(status, False, None, 60, "some error", {"error": "some error"})
    assert out is not None
    assert (out.cause, out.status, out.guide) == (cause, Status.FAIL, guide)
    assert f"HTTP {status}" in out.summary and "some error" in out.summary


def test_rate_limiting_carries_retry_advice() -> None:
    out = mint_outcome(429, False, None, 60, "Too many requests", None)
    assert out is not None
    steps = " ".join(guide.fix(out.guide, detail=out.detail).steps)
    assert "Retry-After" in steps and "exponential backoff" in steps and "1 s" in steps


def test_bad_request_names_the_parameter_from_the_body() -> None:
    text = "expires_in_seconds must be between 1 and 600"
    out = mint_outcome(400, False, None, 60, text, {"error": text})
    assert out is not None and "`expires_in_seconds`" in out.summary
    body = {"detail": "max_session_duration_seconds must be between 60 and 10800"}
    out = mint_outcome(400, False, None, 60, body["detail"], body)
    assert out is not None and "`max_session_duration_seconds`" in out.summary


@pytest.mark.parametrize(
    ("text", "param"),
    [
        ("expires_in_seconds is required", "expires_in_seconds"),
        ("bad max_session_duration_seconds value", "max_session_duration_seconds"),
        ("unknown parameter foo_bar", "foo_bar"),
        ("Bad Request", None),
        ("", None),
        (None, None),
    ],
)
def test_bad_request_param(text: str | None, param: str | None) -> None:
    assert bad_request_param(text) == param


def test_a_plain_text_error_body_is_quoted_when_there_is_no_json() -> None:
    out = mint_outcome(502, False, None, 60, None, "<html>Bad gateway</html>")
    assert out is not None and "Bad gateway" in out.summary


def test_no_answer_from_the_token_endpoint() -> None:
    url = "http://127.0.0.1:19001/v1/token?x=1"
    t = mint_unreachable(Failure.of(StepTimeout("token", "x", timeout_s=3.0)), url)
    assert (t.cause, t.guide) == ("timeout", "token_unreachable") and "3 s" in t.summary
    assert t.detail == "GET http://127.0.0.1:19001/v1/token timed out"
    c = mint_unreachable(Failure.of(ConnectFailed("token", "x", reason="refused")), "h")
    assert c.cause == "token_url_unreachable" and "refused" in c.summary


# --- a session that does not become ready -------------------------------------------------


def test_http_401_on_the_upgrade_is_unauthorized_and_mentions_browsers_1006() -> None:
    f = Failure.of(HandshakeRejected("handshake", "x", http_status=401, body="{}"))
    out = session_outcome(f, "api_key")
    assert out.cause == "unauthorized" and "1006" in out.summary and "HTTP 401" in out.summary


def test_http_401_for_a_token_past_its_window_is_token_expired() -> None:
    f = Failure.of(HandshakeRejected("handshake", "x", http_status=401))
    assert session_outcome(f, "token", token_age_s=61, token_window_s=60).cause == "token_expired"
    assert session_outcome(f, "token", token_age_s=5, token_window_s=60).cause == "unauthorized"


@pytest.mark.parametrize(
    ("status", "cause"), [(403, "forbidden"), (429, "rate_limited"), (500, "server_error")]
)
def test_other_upgrade_statuses(status: int, cause: str) -> None:
    f = Failure.of(HandshakeRejected("handshake", "x", http_status=status))
    assert session_outcome(f, "api_key").cause == cause


@pytest.mark.parametrize(
    ("failure", "cause"),
    [
        (error("UNAUTHORIZED", "Invalid API key"), "unauthorized"),
        (error("UNAUTHORIZED", "Token expired"), "token_expired"),
        (error("unauthorized", "redemption window passed"), "token_expired"),
        # field-facts §2: any refused credential, lower case, after the upgrade
        (error("unauthorized", "Authentication failed"), "unauthorized"),
        (error("Unauthorized", "Authentication failed"), "unauthorized"),
        (error("forbidden"), "forbidden"),
        (error("FORBIDDEN"), "forbidden"),
        (error("server_error", "at capacity"), "server_error"),
        (error("INTERNAL_ERROR", close=1011), "server_error"),
        (error("agent_init_failed", close=1011), "no_session_ready"),
        (error("agent_timeout", close=1011), "no_session_ready"),
        (closed(1008, "UNAUTHORIZED"), "unauthorized"),
        (closed(1008, "FORBIDDEN"), "forbidden"),
        (closed(None, None, frame=False), "unauthorized"),
        (closed(1011, "boom"), "no_session_ready"),
        (Failure("timeout", "ready", timeout_s=2.0), "timeout"),
        (Failure("timeout", "connect", timeout_s=2.0), "timeout"),
        (Failure("connect", "connect", reason="reset"), "no_session_ready"),
    ],
)
def test_session_failures_map_to_contract_causes(failure: Failure, cause: str) -> None:
    out = session_outcome(failure, "api_key")
    assert out.cause == cause and out.status is Status.FAIL and out.summary


def test_the_session_error_code_is_named_in_no_session_ready() -> None:
    out = session_outcome(error("agent_timeout", "not ready within 10 s", close=1011), "token")
    assert "agent_timeout" in out.summary and "close 1011" in out.summary


def test_a_1006_with_no_frame_is_called_probable_auth_and_mentions_browsers() -> None:
    out = session_outcome(closed(1006, None, frame=False), "token")
    assert "1006" in out.summary and "most likely" in out.summary and "browser" in out.summary


def test_a_timeout_names_the_step() -> None:
    out = session_outcome(Failure("timeout", "ready", timeout_s=2.5), "api_key")
    assert "session.ready" in out.summary and "2.5 s" in out.summary
    assert out.guide == "service_side"
    assert session_outcome(Failure("timeout", "connect", timeout_s=1), "x").guide == "firewall"


def test_failure_of_picks_up_a_session_error_hidden_by_a_close_during_send() -> None:
    err = ClosedByServer(
        "send", "x", close_code=1008, close_reason="UNAUTHORIZED", close_frame=True
    )
    f = Failure.of(err, {"type": "session.error", "code": "unauthorized", "message": "expired"})
    assert (f.error_code, f.error_message, f.close_code) == ("unauthorized", "expired", 1008)
    assert session_outcome(f, "token").cause == "token_expired"


def test_failure_of_a_session_error_keeps_its_own_code() -> None:
    err = SessionError("ready", "x", error_code="FORBIDDEN", error_message="no", close_code=1008)
    f = Failure.of(err, {"code": "other"})
    assert f.error_code == "FORBIDDEN" and f.kind == "session_error"


def test_reuse_refusal_is_recognised_only_for_auth_answers() -> None:
    assert reuse_refused(error("UNAUTHORIZED", "Token already used")) is True
    assert reuse_refused(Failure.of(HandshakeRejected("handshake", "x", http_status=401))) is True
    assert reuse_refused(Failure("timeout", "ready", timeout_s=1)) is None
    assert reuse_refused(error("server_error")) is None


# --- offline findings merged with the online answer ---------------------------------------

QUOTED = Finding("quoted", "fail", "the API key is wrapped in quotes")
SPACES = Finding("whitespace", "warn", "the API key has spaces around it")
SHAPE = Finding("looks_like_token", "warn", "this does not look like an API key")
REFUSED = Outcome("unauthorized", Status.FAIL, "refused", "token_auth")
SERVER = Outcome("server_error", Status.FAIL, "boom", "service_side")


def test_no_findings_no_verdict() -> None:
    assert findings_outcome("API key", [], None, True, "ok") is None


def test_unsendable_value_fails_without_going_online() -> None:
    out = findings_outcome(
        "API key", [Finding("empty", "fail", "the API key is empty")], None, False
    )
    assert out is not None and out.status is Status.FAIL and "not sent" in out.summary


def test_a_mistake_the_app_would_send_fails_even_when_the_cleaned_value_works() -> None:
    out = findings_outcome("API key", [QUOTED], None, True, "the service accepted it")
    assert out is not None and (out.cause, out.status) == ("malformed_credentials", Status.FAIL)
    assert "with that undone it works" in out.summary


def test_a_hint_alone_warns_when_the_value_works() -> None:
    out = findings_outcome("API key", [SPACES], None, True, "the service accepted it")
    assert out is not None and (out.cause, out.status) == ("malformed_credentials", Status.WARN)


def test_a_shape_hint_explains_a_refusal() -> None:
    out = findings_outcome("API key", [SHAPE], REFUSED, True)
    assert out is not None and out.status is Status.FAIL and "refused" in out.summary


def test_a_server_problem_wins_over_findings() -> None:
    assert findings_outcome("API key", [SHAPE], SERVER, True) is None


def test_several_findings_are_counted() -> None:
    out = findings_outcome("API key", [QUOTED, SHAPE], REFUSED, True)
    assert out is not None and "(+1 more)" in out.summary and SHAPE.message in out.detail


def test_a_shape_hint_never_contradicts_an_accepted_key() -> None:
    """Issue 13: a key of unusual shape that the service accepts passes."""
    assert findings_outcome("API key", [SHAPE], None, True, "key session ready") is None
    out = findings_outcome("API key", [QUOTED, SHAPE], None, True, "x")
    assert out is not None and "(+1 more)" not in out.summary  # the hint is not a finding


# --- resume -------------------------------------------------------------------------------


def test_session_not_found_inside_the_window_is_resume_rejected_with_the_timing() -> None:
    """Contract v2: a refused resume is a warning whose fix is the app's."""
    out = resume_outcome(error("session_not_found", "gone"), 1.02)
    assert (out.cause, out.status, out.guide) == ("resume_rejected", Status.WARN, "resume_refused")
    assert "1.0 s after the drop (inside the 30 s grace window)" in out.summary
    assert "session_not_found (gone)" in out.summary and "fresh session" in out.summary
    assert out.detail == "session_not_found 1.0 s after the drop"


def test_session_not_found_beyond_the_window_says_it_was_expected() -> None:
    out = resume_outcome(error("session_not_found"), 31.0)
    assert out.cause == "resume_rejected" and "beyond the 30 s grace window" in out.summary


@pytest.mark.parametrize(
    ("failure", "cause"),
    [
        (error("session_forbidden"), "resume_forbidden"),
        (error("session_expired"), "resume_expired"),
        (error("invalid_format"), "no_ready_after_resume"),
        (closed(1011, "bye"), "no_ready_after_resume"),
        (closed(None, None, frame=False), "no_ready_after_resume"),
        (Failure("http_status", "handshake", http_status=401), "no_ready_after_resume"),
        (Failure("connect", "connect", reason="refused"), "no_ready_after_resume"),
        (Failure("timeout", "resume", timeout_s=3.0), "timeout"),
    ],
)
def test_resume_failures(failure: Failure, cause: str) -> None:
    out = resume_outcome(failure, 1.0)
    assert (
        out.cause == cause and out.status is Status.FAIL and "1.0 s after the drop" in out.summary
    )


def test_no_ready_after_resume_records_what_came_instead() -> None:
    assert "invalid_format" in resume_outcome(error("invalid_format"), 1.0).summary
    assert "close 1011 bye" in resume_outcome(closed(1011, "bye"), 1.0).summary
    assert "HTTP 401" in resume_outcome(Failure("http_status", "h", http_status=401), 1.0).summary


def test_a_resume_that_kept_the_id_and_ended_is_no_problem() -> None:
    assert after_resume_outcome("sess_a", "sess_a", True, 1000, "session ended", 1.0) is None


def test_a_resume_that_changed_the_id_warns_with_both_ids() -> None:
    out = after_resume_outcome("sess_a", "sess_b", True, 1000, None, 1.0)
    assert out is not None and (out.cause, out.status) == ("session_id_changed", Status.WARN)
    assert out.guide == "resume_new_id"
    assert "sess_a" in out.summary and "sess_b" in out.summary


def test_a_resumed_session_without_session_ended_is_a_billing_warning() -> None:
    out = after_resume_outcome("sess_a", "sess_a", False, 1000, None, 1.0)
    assert out is not None and (out.cause, out.guide) == ("no_session_ended", "billing")
    assert "grace window" in out.summary


# --- review findings: no advice in `detail`, a ready without id, one guide per cause -----

ADVICE = ("check ", "retry later", "retry with", "fetch ", "should", "in between", "back")


def _every_outcome() -> list[Outcome]:
    mints = [mint_outcome(s, False, None, 60, "e", {"error": "e"}) for s in (400, 401, 403, 404,
             405, 418, 429, 500)]  # fmt: skip
    failures = [
        error("UNAUTHORIZED", "Invalid API key"), error("UNAUTHORIZED", "Token expired"),
        error("unauthorized", "expired"), error("FORBIDDEN"), error("server_error"),
        error("agent_timeout", close=1011), closed(1008, "UNAUTHORIZED"),
        closed(1008, "FORBIDDEN"), closed(None, None, frame=False), closed(1011, "boom"),
        Failure("timeout", "ready", timeout_s=2.0), Failure("connect", "connect", reason="reset"),
        Failure("no_session_id", "ready"),
        *(Failure("http_status", "handshake", http_status=s) for s in (401, 403, 429, 500)),
    ]  # fmt: skip
    sessions = [session_outcome(f, "token") for f in failures]
    resumes = [resume_outcome(f, 1.0) for f in failures]
    return [o for o in (*mints, *sessions, *resumes) if o is not None]


def test_details_hold_facts_and_the_advice_lives_in_the_guide() -> None:
    for out in _every_outcome():
        assert not any(word in out.detail.lower() for word in ADVICE), (out.cause, out.detail)
        assert out.guide in guide.ENTRIES


def test_a_bad_request_fix_says_what_to_check_in_the_guide() -> None:
    out = mint_outcome(400, False, None, 60, "expires_in_seconds too big", None)
    assert out is not None and out.guide == "token_request"
    steps = " ".join(guide.fix(out.guide, detail=out.detail).steps)
    assert "relay" in steps and "/v1/token" in steps and "expires_in_seconds=60" in steps
    out = mint_outcome(404, False, None, 60, None, "Not Found")
    assert out is not None and "--token-url" in " ".join(guide.fix(out.guide).steps)


def test_forbidden_points_at_account_access() -> None:
    for f in (error("FORBIDDEN"), closed(1008, "FORBIDDEN"),
              Failure("http_status", "handshake", http_status=403)):  # fmt: skip
        out = session_outcome(f, "api_key")
        assert (out.cause, out.guide) == ("forbidden", "account_access")
        assert "dashboard" in " ".join(guide.fix(out.guide, detail=out.detail).steps)


def test_an_expired_token_fix_says_to_mint_right_before_connecting() -> None:
    out = session_outcome(error("unauthorized", "expired"), "token")
    assert out.cause == "token_expired" and "fresh" not in out.detail
    assert "right before each connection" in " ".join(guide.fix(out.guide).steps)


def test_a_ready_without_session_id_is_no_session_ready() -> None:
    out = session_outcome(Failure("no_session_id", "ready"), "api_key")
    assert (out.cause, out.status, out.guide) == ("no_session_ready", Status.FAIL, "service_side")
    assert "session.ready without session_id" in out.summary
    assert out.detail == "session.ready without session_id"
    assert reuse_refused(Failure("no_session_id", "ready")) is None


def test_a_resume_ready_without_session_id_is_no_ready_after_resume() -> None:
    out = resume_outcome(Failure("no_session_id", "resume"), 0.5)
    assert (out.cause, out.guide) == ("no_ready_after_resume", "resume_no_ready")
    assert "session.ready without session_id" in out.summary
    steps = " ".join(guide.fix(out.guide, detail=out.detail).steps)
    assert "What came instead: session.ready without session_id (0.5 s after the drop)" in steps


INSIDE = "If resume fails inside the window"


@pytest.mark.parametrize(
    ("failure", "entry", "says", "never"),
    [
        (error("session_not_found"), "resume_refused", "start a fresh session", INSIDE),
        (error("session_forbidden"), "resume_forbidden", "same key", INSIDE),
        (error("session_expired"), "resume_expired", "max_session_duration_seconds", INSIDE),
        (error("invalid_format"), "resume_no_ready", "What came instead: session.error", INSIDE),
    ],
)
def test_each_resume_cause_has_its_own_fix(
    failure: Failure, entry: str, says: str, never: str
) -> None:
    out = resume_outcome(failure, 1.0)
    assert out.guide == entry
    steps = " ".join(guide.fix(out.guide, detail=out.detail).steps)
    assert says in steps and never not in steps
