"""The `resume` check against the live service as the field saw it: every resume refused
with `session_not_found` (field-facts §6). A warning with the app's fix and what support
needs, then the fresh session the app should start."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tokenrun import doctor

from doctor.checks.resume import Plan, plan_for, run_resume
from doctor.context import Context, Credential
from doctor.sandbox.pytest_plugin import SandboxFactory
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


def test_a_refused_resume_whose_fresh_session_cannot_start_fails(
    sandbox_factory: SandboxFactory,
) -> None:
    """The field's refusal, then the app's fallback fails too (the sandbox admits one
    session, then answers every new one 'at capacity'): the app has no session at all,
    so the check fails, with the cause and fix of the fresh session and the refusal kept."""
    sb = sandbox_factory(faults={"at-capacity-after": 1})
    ctx = Context.build(
        ws_url=sb.ws_url,
        token_url=sb.token_url,
        api_key=Credential("api_key", sb.api_key, "test"),
        ca_bundle=sb.ca_file,
        timeout=5.0,
        resume_delay=0.1,
    )
    plan = plan_for(ctx)
    assert isinstance(plan, Plan)
    result = asyncio.run(run_resume(ctx, plan))
    assert (result.status.value, result.cause) == ("fail", "no_session_ready"), result.summary
    assert "the service refused session.resume" in result.summary
    assert "a fresh session did not start either" in result.summary
    assert "server_error" in result.summary
    ev = result.evidence
    assert ev["resume_refusal"]["code"] == "session_not_found"
    assert ev["fresh_session_after_refusal"]["started"] is False
    assert "grace window" in ev["note"]
    assert result.fix is not None and result.fix.guide == "service_side"
    # three connections: the dropped session, the refused resume, the refused fresh one
    assert len(ev["connections"]) == 3 and len(sb.find("session.ready", direction="out")) == 1


def test_a_resume_that_hangs_fails_within_the_timeout(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A resume that is never answered (the sandbox's `resume-silent`) stays a `fail`
    (cause `timeout`), not the field refusal's `warn`; no third connection follows it."""
    sb = sandbox_factory(faults={"resume-silent": None})
    run = doctor(
        sb, tmp_path, "--api-key", sb.api_key, "--resume-delay", "0.2",
        check="resume", secrets=(sb.api_key,), timeout_s="2",
    )  # fmt: skip
    r = run.result("resume")
    assert (r["status"], r["cause"]) == ("fail", "timeout"), r["summary"]
    assert "no answer to session.resume within 2 s" in r["summary"]
    assert run.proc.returncode == 1
    assert len(sb.find("session.resume_unanswered")) == 1
    assert "resume_refusal" not in r["evidence"] and len(r["evidence"]["connections"]) == 2
