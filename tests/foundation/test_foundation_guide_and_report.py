"""Guide entries, report building and the text renderer (pure parts)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from clirun import assert_valid_report

from doctor import guide
from doctor.context import Context, SessionRecord
from doctor.report.build import build_report, exit_code, verdict
from doctor.report.text import render
from doctor.result import Result, Status, errored, passed, problem, skipped

DOCTOR = Path(__file__).resolve().parents[2] / "doctor"
VENDOR_TOPICS = {
    "before_support",
    "echo_loop",
    "sample_rate",
    "mic_permission",
    "firewall",
    "malformed_audio",
    "token_auth",
    "billing",
    "session_resume",
}


@pytest.mark.parametrize("entry_id", sorted(guide.ENTRIES))
def test_every_entry_renders_fully_with_defaults(entry_id: str) -> None:
    fix = guide.fix(entry_id)
    text = " ".join([fix.title, *fix.steps, *fix.commands])
    assert not re.search(r"\{[a-z_]+\}", text), text  # no placeholder left behind
    assert fix.steps and fix.url.startswith(guide.BASE_URL)


def test_vendor_topics_each_have_an_entry_with_their_section_anchor() -> None:
    assert set(guide.ENTRIES) >= VENDOR_TOPICS
    anchors = {guide.ENTRIES[t].anchor for t in VENDOR_TOPICS}
    assert len(anchors) == len(VENDOR_TOPICS) and "" not in anchors


def test_fix_fills_the_run_values() -> None:
    fix = guide.fix("firewall", host="agents.eu.assemblyai.com", port=443, detail="TCP timed out")
    assert "outbound TCP 443 (TLS, WebSocket upgrade) to agents.eu.assemblyai.com" in fix.steps[0]
    assert fix.steps[-1] == "Detail: TCP timed out"
    assert "Detail:" not in " ".join(guide.fix("firewall").steps)


def test_every_guide_id_used_in_the_code_exists() -> None:
    used = set()
    for path in DOCTOR.rglob("*.py"):
        used |= set(re.findall(r"guide\.fix\(\s*\"([a-z_]+)\"", path.read_text()))
    assert used, "no check refers to the guide?"
    assert used <= set(guide.ENTRIES), used - set(guide.ENTRIES)


def _results() -> list[Result]:
    return [
        passed("ok", {"x_ms": 1}).with_meta("a", "A", 5),
        problem(Status.WARN, "low_level", "quiet", {}, guide.fix("audio_level")).with_meta(
            "b", "B", 1
        ),
        problem(Status.FAIL, "timeout", "no answer", {}, guide.fix("firewall")).with_meta(
            "c", "C", 1500
        ),
        skipped("no_credentials", "no key").with_meta("d", "D", 0),
        errored(
            "exception", "crashed", {"exception_type": "E", "exception_message": "m"}
        ).with_meta("e", "E", 2),
    ]


def test_verdict_names_the_worst_problem_first() -> None:
    assert verdict(_results()).startswith("2 checks failed; start with e (exception)")
    assert verdict(_results()[:2]) == "No failures, 1 warning; start with b (low_level): quiet"
    assert verdict(_results()[:1]) == "All 1 check passed."
    assert verdict([_results()[0], _results()[3]]) == "All 1 check passed (1 skipped)."


def test_exit_code_counts_fail_and_error_only() -> None:
    assert exit_code(_results()[:2]) == 0
    assert exit_code(_results()[:3]) == 1
    assert exit_code([_results()[4]]) == 1


def test_report_has_the_contract_shape_and_support_block() -> None:
    ctx = Context.build(region="eu", proxy="http://u:pw-secret-1234@proxy:3128")
    started = datetime(2026, 11, 24, 14, 0, tzinfo=timezone.utc)
    ctx.record_session(
        SessionRecord("token", "eu", "sess_" + "a" * 32, started, 1.25, 1000, "session.end", True)
    )
    ctx.record_session(
        SessionRecord(
            "token",
            "eu",
            "sess_" + "b" * 32,
            started,
            0.5,
            1008,
            "UNAUTHORIZED",
            False,
            auth="token",
        )
    )
    report = assert_valid_report(build_report("all", ctx, _results(), started, 1830))
    assert report["target"] == {
        "region": "eu",
        "ws_url": "wss://agents.eu.assemblyai.com/v1/ws",
        "token_url": "https://agents.eu.assemblyai.com/v1/token",
        "proxy": "http://proxy:3128",
        "auth": "none",
    }
    assert report["summary"] == {
        "pass": 1,
        "warn": 1,
        "fail": 1,
        "skip": 1,
        "error": 1,
        "verdict": verdict(_results()),
    }
    support = report["support"]
    assert support["session_ids"] == ["sess_" + "a" * 32, "sess_" + "b" * 32]
    assert (
        support["closes"][1]["code"] == 1008
        and support["first_session_at"] == "2026-11-24T14:00:00Z"
    )
    assert (support["sessions_opened"], support["sessions_total_s"]) == (2, 1.75)
    assert "pw-secret-1234" not in str(report) and report["redactions"] == ["proxy_credentials"]


def test_a_resumed_session_counts_once_with_the_gap_it_spent_dropped() -> None:
    ctx = Context.build()
    t0 = datetime(2026, 11, 24, 14, 0, tzinfo=timezone.utc)
    sid = "sess_" + "c" * 32
    ctx.record_session(SessionRecord("resume", "us", sid, t0, 0.25, 1006, "dropped", False))
    later = t0 + timedelta(seconds=1.25)
    ctx.record_session(SessionRecord("resume", "us", sid, later, 0.5, 1000, "ended", True))
    ctx.record_session(SessionRecord("token", "us", None, t0, 0.125, 1008, "UNAUTHORIZED", False))
    report = assert_valid_report(build_report("all", ctx, _results(), t0, 2000))
    support = report["support"]
    assert support["session_ids"] == [sid]
    assert (support["sessions_opened"], support["connections"]) == (1, 3)  # one was refused
    assert support["sessions_total_s"] == 1.875  # 1.75 s drop-to-end span + 0.125 s
    text = render(report)
    assert "sessions opened by agent-doctor: 1 over 3 connections (1.88 s in total" in text


def test_text_report_shows_only_what_the_report_holds() -> None:
    ctx = Context.build()
    started = datetime(2026, 11, 24, 14, 0, tzinfo=timezone.utc)
    ctx.record_session(SessionRecord("token", "us", "sess_x", started, 2.0, 1000, "bye", True))
    report = build_report("all", ctx, _results(), started, 10, "/tmp/r.json")
    out = render(report)
    assert out.count("Fix:") == 2  # warn and fail have fixes; error gets the bug note
    assert "This is a bug in agent-doctor" in out
    assert "session ids: sess_x" in out and "close 1000 bye" in out
    assert "sessions opened by agent-doctor: 1 (2.00 s in total, what these checks cost)" in out
    assert "1.5 s" in out and "5 ms" in out
    assert out.rstrip().endswith(report["summary"]["verdict"])
    assert "Evidence:" not in out and "x_ms: 1" in render(report, verbose=True)
