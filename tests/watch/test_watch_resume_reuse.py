"""A reconnection with a dropped connection's token, in the pure findings: whether the
app's `session.resume` left before the service refused the spent token or not, the report
names the reused token, and nothing else (no "fresh session instead of resume", no
service-side error for the refusal)."""

from __future__ import annotations

from doctor.watch.findings import conn_findings, resume_findings, silent_reuses
from doctor.watch.observe import Conn


def _dropped() -> Conn:
    a = Conn(conn=1, opened_t=0.0, details={"auth": "query", "token_seq": 1})
    a.first_type, a.session_id, a.ready_t = "session.update", "sess_a", 0.2
    a.close = {"t": 5.0, "by": "app", "code": None}  # a drop: no close frame
    return a


def _refused(first_type: str | None) -> Conn:
    b = Conn(conn=2, opened_t=5.5, details={"auth": "query", "token_seq": 1})
    b.first_type = first_type
    if first_type == "session.resume":
        b.resumed_id = "sess_a"
    b.errors = [{"code": "unauthorized", "message": "token already used"}]
    b.close = {"t": 5.6, "by": "service", "code": 1008}
    return b


def _all(order: list[Conn]) -> list[tuple[str, dict]]:
    reused = silent_reuses(order)
    out = [f for c in order for f in conn_findings(c, set(), reused)]
    out += resume_findings(order)
    return [(f.cause, f.evidence) for f in out]


def test_the_spent_token_refused_before_any_message_is_named_and_nothing_else() -> None:
    found = _all([_dropped(), _refused(None)])
    causes = [c for c, _ in found]
    assert causes.count("resume_token_reused") == 1
    assert "resume_not_attempted" not in causes  # the app may well have meant a resume
    assert "session_error" not in causes  # a spent token is not the service's fault
    ev = dict(found)["resume_token_reused"]
    assert ev["resume_sent"] is False and ev["within_grace"] is True
    assert ev["session_id"] == "sess_a" and ev["new_token"] is False


def test_the_spent_token_with_its_resume_sent_is_named_from_the_resume() -> None:
    found = dict(_all([_dropped(), _refused("session.resume")]))
    ev = found["resume_token_reused"]
    assert ev["resume_sent"] is True and ev["session_id"] == "sess_a"
    assert "resume_not_attempted" not in found


def test_a_fresh_token_refused_is_no_reuse() -> None:
    b = _refused(None)
    b.details = {"auth": "query", "token_seq": 2}
    found = dict(_all([_dropped(), b]))
    assert "resume_token_reused" not in found
    assert "session_error" in found  # the refusal is still said, as before
