"""Tokens a log carries never reach the report through an error message or a close
reason (review r15 #12)."""

from __future__ import annotations

import json
from pathlib import Path

from clirun import run_cli
from synth import Script

from doctor.session import Source, analyze_events
from doctor.session.events import meta

RESUME = "rt_" + "Q7x" * 10
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhYmMifQ.c2lnbmF0dXJlLXZhbHVl"


def test_tokens_in_error_messages_and_close_reasons_are_masked() -> None:
    s = Script().open()
    s.app("session.resume", s.t + 0.1, session_id=s.sid, resume_token=RESUME)
    s.svc("session.error", s.t + 0.2, code="session_not_found", message=f"no session for {RESUME}")
    s.svc("session.error", s.t + 0.3, code="invalid_value", message=f"bad token {JWT}")
    s.events.append(meta("meta.close", s.t + 0.5, code=1008, reason=f"token={JWT}", by=None))
    (f,) = analyze_events(s.sorted(), Source(shape="synthetic"))
    text = json.dumps([r.__dict__ for r in f.results], default=str)
    assert RESUME not in text and JWT not in text
    assert "****" in text


def test_analyze_prints_no_token_from_the_log(tmp_path: Path) -> None:
    log = tmp_path / "app.jsonl"
    rows = [
        {"type": "session.ready", "session_id": "sess_" + "9" * 32, "resume_token": RESUME},
        {"type": "session.error", "code": "internal_error", "message": f"oops {RESUME}"},
        {"type": "close", "code": 1011, "reason": f"Bearer {JWT}"},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = run_cli("analyze", str(log), "--json")
    assert p.returncode in (0, 1), p.stderr
    out = p.stdout + p.stderr
    assert RESUME not in out and JWT not in out
