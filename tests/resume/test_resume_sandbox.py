"""The `resume` check against the sandbox: through the real CLI, except `session_forbidden`,
which needs a second key on the second connection and so drives the check's shell
(`run_resume`) in-process, still over real sockets."""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from tokenrun import Run, assert_ended_cleanly, doctor, mint, support_sessions

from doctor.checks.resume import Leg, Plan, run_resume
from doctor.context import Context, Credential
from doctor.sandbox.pytest_plugin import SandboxFactory
from doctor.sandbox.threaded import ThreadedSandbox

# The documented service (protocol.md); the field's default is in test_*_field.py.
pytestmark = pytest.mark.sandbox_behaviour("documented")


def resume_run(sb: ThreadedSandbox, tmp_path: Path, *extra: str, delay: str = "0.2") -> Run:
    return doctor(
        sb,
        tmp_path,
        "--api-key",
        sb.api_key,
        "--resume-delay",
        delay,
        *extra,
        check="resume",
        secrets=(sb.api_key,),
    )


def resume_conns(sb: ThreadedSandbox) -> list[int]:
    """Connections that sent session.resume."""
    return sorted({e["conn"] for e in sb.find("session.resume", direction="in")})


def first_event(sb: ThreadedSandbox, conn: int) -> dict[str, Any]:
    return next(e for e in sb.events if e.get("conn") == conn and e["direction"] == "in")


def test_resume_works_and_the_session_is_ended_cleanly(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    run = resume_run(sandbox, tmp_path, delay="0.3")
    r = run.result("resume")
    assert (r["status"], r["cause"]) == ("pass", None), r["summary"]
    ev = r["evidence"]
    sid = ev["session_ids"][0]
    assert ev["session_ids"] == [sid, sid]
    assert sid in r["summary"] and "after an abrupt drop" in r["summary"]
    assert ev["resume_delay_requested_s"] == 0.3 and ev["resume_delay_s"] >= 0.3
    assert ev["auth"] == "api_key" and ev["grace_window_s"] == 30.0
    assert ev["t_drop_s"] >= ev["t_ready_s"]
    first, second = ev["connections"]
    # Every event of both connections, on the check's clock.
    assert [e["type"] for e in first["events"]][-2:] == ["drop", "closed"]
    assert first["close_code"] == 1006 and first["session_ended_received"] is False
    assert second["events"][0]["t_s"] > first["events"][-1]["t_s"]
    sent = [e["type"] for e in second["events"] if e["direction"] == "sent"]
    assert sent == ["session.resume", "session.end"]
    assert second["session_ended_received"] is True and second["close_code"] == 1000
    # The sandbox's view: an abrupt drop (no session.end, no close frame), then a resume of
    # the same id as the first message of a new connection, then a clean end.
    (conn2,) = resume_conns(sandbox)
    resume_msg = first_event(sandbox, conn2)
    assert (resume_msg["type"], resume_msg["resume_id"]) == ("session.resume", sid)
    conn1 = sandbox.find("session.ready", direction="out", session_id=sid)[0]["conn"]
    assert conn1 != conn2
    closed1 = sandbox.wait_for("ws.closed", conn=conn1)
    assert closed1["close_frame_received"] is False
    assert not sandbox.find("session.end", conn=conn1)
    assert sandbox.find("session.detached", conn=conn1)
    assert_ended_cleanly(sandbox, [conn2])
    # Both records in the support block, and the total.
    sessions = support_sessions(run, "resume")
    assert [s["session_id"] for s in sessions] == [sid, sid]
    assert [s["ended_cleanly"] for s in sessions] == [False, True]
    assert sessions[0]["close_code"] == 1006 and "dropped" in sessions[0]["close_reason"]
    assert run.report["support"]["sessions_total_s"] > 0


def test_resume_rejected_is_a_warning_with_timing_and_evidence(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory(faults={"resume-rejected": None})
    run = resume_run(sb, tmp_path)
    r = run.result("resume")
    assert (r["status"], r["cause"]) == ("warn", "resume_rejected")
    # the measured delay: at least the 0.2 s asked for, more on a loaded machine (0.3 s
    # failed the exact "0.2 s" this asserted)
    said = re.search(r"(\d+\.\d) s after the drop \(inside the 30 s grace window\)", r["summary"])
    assert said is not None and float(said.group(1)) >= 0.2, r["summary"]
    assert "close 1008 session_not_found" in r["summary"]
    steps = " ".join(r["fix"]["steps"])
    assert r["fix"]["guide"] == "resume_refused"
    assert "support@assemblyai.com" in steps and "fresh session" in steps
    ev = r["evidence"]
    second = ev["connections"][1]
    assert second["failure"]["error_code"] == "session_not_found"
    assert second["close_code"] == 1008
    received = [e for e in second["events"] if e["direction"] == "received"]
    assert received[0]["type"] == "session.error" and received[0]["code"] == "session_not_found"
    assert (
        len(ev["session_ids"]) == 1 and ev["session_ids"][0] in run.report["support"]["session_ids"]
    )
    assert "grace window" in ev["note"]


def test_grace_window_shorter_than_the_delay(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """The sandbox's window (0.2 s) is shorter than the docs' 30 s that the check judges
    by: the summary states the measured delay and places it inside the 30 s window."""
    sb = sandbox_factory(grace_s=0.2)
    r = resume_run(sb, tmp_path, delay="0.5").result("resume")
    assert (r["status"], r["cause"]) == ("warn", "resume_rejected")
    said = re.search(
        r"refused session\.resume (\d+\.\d) s after the drop \(inside the 30 s grace window\)",
        r["summary"],
    )
    assert said is not None, r["summary"]
    assert float(said.group(1)) >= 0.5
    assert r["evidence"]["resume_refusal"]["delay_s"] >= 0.5
    assert r["evidence"]["resume_delay_s"] >= 0.5


def test_resume_with_another_key_is_forbidden(sandbox_factory: SandboxFactory) -> None:
    first_key, second_key = secrets.token_hex(16), secrets.token_hex(16)
    sb = sandbox_factory(api_keys=[first_key, second_key])
    ctx = Context.build(
        ws_url=sb.ws_url,
        token_url=sb.token_url,
        api_key=Credential("api_key", first_key, "test"),
        ca_bundle=sb.ca_file,
        timeout=5.0,
        resume_delay=0.1,
    )
    plan = Plan(Leg(first_key, minted=False), Leg(second_key, minted=False))
    result = asyncio.run(run_resume(ctx, plan))
    assert (result.status.value, result.cause) == ("fail", "resume_forbidden")
    assert "session_forbidden" in result.summary and "another account or key" in result.summary
    assert [s.ended_cleanly for s in ctx.support] == [False, None]
    assert ctx.support[1].close_code == 1008


def test_no_session_ended_after_resume_is_a_warning(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory(faults={"no-session-ended": None})
    run = resume_run(sb, tmp_path)
    assert run.result("token")["cause"] == "no_session_ended"
    r = run.result("resume")
    assert (r["status"], r["cause"]) == ("warn", "no_session_ended")
    assert "resume worked" in r["summary"] and r["fix"]["guide"] == "billing"
    assert run.proc.returncode == 0


def test_token_auth_mints_a_fresh_token_for_each_connection(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    user_token = mint(sandbox)
    run = doctor(
        sandbox, tmp_path, "--api-key", sandbox.api_key, "--token", user_token,
        "--resume-delay", "0.2", check="resume", secrets=(sandbox.api_key, user_token),
    )  # fmt: skip
    r = run.result("resume")
    assert (r["status"], r["cause"]) == ("pass", None), r["summary"]
    ev = r["evidence"]
    assert ev["auth"] == "token"
    tails = [t["token"] for t in ev["tokens"]]
    assert len(tails) == 2 and tails[0] != tails[1] and all(t.startswith("****") for t in tails)
    # The second token was minted after the drop, right before its connection.
    assert ev["tokens"][1]["t_s"] >= ev["t_drop_s"]
    # The sandbox saw each token on exactly one connection: the first one was not reused.
    opened = {
        t: [e for e in sandbox.find("ws.open") if e["path"].endswith("token=" + t)] for t in tails
    }
    assert [len(v) for v in opened.values()] == [1, 1]
    conn1, conn2 = (opened[t][0]["conn"] for t in tails)
    assert first_event(sandbox, conn1)["type"] == "session.update"
    assert first_event(sandbox, conn2)["type"] == "session.resume"
    assert [s["auth"] for s in support_sessions(run, "resume")] == ["token", "token"]
    assert_ended_cleanly(sandbox, [conn2])


def test_token_without_a_key_cannot_resume(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    token = mint(sandbox)
    run = doctor(sandbox, tmp_path, "--token", token, check="resume", secrets=(token,))
    assert run.result("token")["status"] == "pass"
    r = run.result("resume")
    assert (r["status"], r["cause"]) == ("skip", "needs_api_key")
    assert "--api-key" in r["summary"]


def test_resume_is_skipped_when_the_token_check_fails(
    sandbox: ThreadedSandbox, tmp_path: Path
) -> None:
    wrong = secrets.token_hex(16)
    run = doctor(sandbox, tmp_path, "--api-key", wrong, check="resume", secrets=(wrong,))
    r = run.result("resume")
    assert (r["status"], r["cause"]) == ("skip", "prerequisite_failed")


def test_resume_with_a_new_id_is_a_warning_with_both_ids(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    sb = sandbox_factory(faults={"resume-new-id": None})
    run = resume_run(sb, tmp_path)
    r = run.result("resume")
    assert (r["status"], r["cause"]) == ("warn", "session_id_changed"), r["summary"]
    assert run.proc.returncode == 0  # a warning does not fail the run
    reissued = sb.wait_for("session.reissued")
    old_id, new_id = reissued["old_session_id"], reissued["session_id"]
    assert old_id != new_id
    # Both ids: in the summary, the evidence, and the support block.
    assert f"({new_id} instead of {old_id})" in r["summary"]
    ev = r["evidence"]
    assert ev["session_ids"] == [old_id, new_id]
    assert [c["session_id"] for c in ev["connections"]] == [old_id, new_id]
    support = run.report["support"]
    assert old_id in support["session_ids"] and new_id in support["session_ids"]
    sessions = support_sessions(run, "resume")
    assert [s["session_id"] for s in sessions] == [old_id, new_id]
    assert [s["ended_cleanly"] for s in sessions] == [False, True]
    # The fix says to keep the newest id.
    assert r["fix"]["guide"] == "resume_new_id"
    assert "newest" in " ".join(r["fix"]["steps"]) and old_id in " ".join(r["fix"]["steps"])
    # The resumed session, under its new id, was still ended cleanly (nothing billed).
    (conn2,) = resume_conns(sb)
    assert first_event(sb, conn2)["resume_id"] == old_id
    assert_ended_cleanly(sb, [conn2])
    assert sb.find("session.ended", direction="out", conn=conn2)
