"""A service that answers the transport (TCP, TLS, the upgrade) but is late with one event
inside a session is not a stalled peer: field-facts §12 saw one `session.ended` miss 4 s
once in many runs. That session gets its own verdict (`no_session_ended`, `billing`; a
late `session.ready` is `timeout` with the service's fix), and every later session is
still tried. Through the real CLI against the sandbox, real sockets."""

from __future__ import annotations

from pathlib import Path

from tokenrun import conns_with, doctor, mint

from doctor.sandbox.pytest_plugin import SandboxFactory


def test_a_late_first_session_ended_warns_billing_and_later_sessions_are_still_tried(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    # Far beyond the check's 2 s timeout; the client's cut ends the sandbox's wait.
    sb = sandbox_factory(faults={"slow-first-ended": 60.0})
    run = doctor(sb, tmp_path, "--api-key", sb.api_key, secrets=(sb.api_key,), timeout_s="2")
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("warn", "no_session_ended"), r["summary"]
    assert r["fix"]["guide"] == "billing"
    assert "session.end on the API key session got no session.ended" in r["summary"]
    # agent-doctor's own wait ran out and it closed: said so (it read "before the close")
    assert "within 2 s (agent-doctor stopped waiting and closed the connection)" in r["summary"]
    assert "before the close" not in r["summary"]
    sessions = r["evidence"]["sessions"]
    assert [s["connection"] for s in sessions] == [
        "API key",
        "minted token #1",
        "minted token #1, second use",
    ]
    assert [s["session_ended_received"] for s in sessions] == [False, True, True]
    assert not [s for s in sessions if "failure" in s]
    assert "other_problems" not in r["evidence"]
    assert len(conns_with(sb, "session.ready", "out")) == 3
    assert len(sb.find("session.ended_delayed")) == 1
    assert run.proc.returncode == 0  # a warning


def test_a_late_session_ready_is_the_service_s_timeout_and_the_next_session_is_tried(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """The key session gets no session.ready in time: `timeout` with the service's fix,
    not the firewall's, and the user's --token session is still opened (and times out
    on its own), not skipped as "not tried"."""
    sb = sandbox_factory(faults={"slow-ready": 3.0})
    token = mint(sb)
    run = doctor(
        sb, tmp_path, "--api-key", sb.api_key, "--token", token,
        secrets=(sb.api_key, token), timeout_s="0.5",
    )  # fmt: skip
    r = run.result("token")
    assert (r["status"], r["cause"]) == ("fail", "timeout"), r["summary"]
    assert "no session.ready within 0.5 s" in r["summary"]
    assert r["fix"]["guide"] == "service_side"
    sessions = r["evidence"]["sessions"]
    assert [s["connection"] for s in sessions] == ["API key", "your --token"]
    for s in sessions:
        assert s["failure"]["kind"] == "timeout" and s["failure"]["step"] == "ready"
        assert "not_tried" not in s["failure"]
    others = r["evidence"]["other_problems"]
    assert not [o for o in others if "not tried" in o["summary"]]
    assert len(sb.find("session.update", direction="in")) == 2
