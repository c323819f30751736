"""The `resume` check against the live service as the field saw it: every resume refused
with `session_not_found` (field-facts §6). A warning with the app's fix and what support
needs, then the fresh session the app should start."""

from __future__ import annotations

from pathlib import Path

from tokenrun import doctor

from doctor.sandbox.threaded import ThreadedSandbox


def test_a_refused_resume_is_a_warning_with_the_evidence_support_needs(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    run = doctor(
        sandbox, tmp_path, "--api-key", sandbox.api_key, "--resume-delay", "0.2",
        check="resume", secrets=(sandbox.api_key,),
    )  # fmt: skip
    r = run.result("resume")
    assert (r["status"], r["cause"]) == ("warn", "resume_rejected"), r["summary"]
    assert run.proc.returncode == 0  # a warning: nothing on the user's side is broken
    refusal = r["evidence"]["resume_refusal"]
    first_id = r["evidence"]["session_ids"][0]
    assert refusal["session_id"] == first_id and refusal["delay_s"] >= 0.2
    assert (refusal["code"], refusal["close_code"]) == ("session_not_found", 1008)
    assert refusal["message"] == "Session not found or grace window has expired"
    fresh = r["evidence"]["fresh_session_after_refusal"]
    assert fresh["started"] and fresh["ended_cleanly"] and fresh["session_id"] != first_id
    assert "a fresh session then started" in r["summary"]
    assert r["fix"]["guide"] == "resume_refused"
    steps = " ".join(r["fix"]["steps"])
    assert "catch `session_not_found`" in steps and "start a fresh session" in steps
    support_ids = run.report["support"]["session_ids"]
    assert first_id in support_ids and fresh["session_id"] in support_ids
