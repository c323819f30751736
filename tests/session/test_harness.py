"""An app's test-harness report (session-formats §7.3 (a)): read as a session, with the same
findings as the equivalent app log where the report holds the facts, and "not judged" with
the reason where it does not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import artifacts as A
import pytest
from clirun import assert_valid_report, run_cli
from hypothesis import given, settings
from synth import Script, normal_session
from test_core_findings import _tool_session
from test_reader_properties import json_values

from doctor.result import Result, Status
from doctor.session import analyze_events
from doctor.session.analyzer import SessionFindings, Source
from doctor.session.harness import harness_sessions, is_harness_report
from doctor.session.state import Segment
from doctor.session_readers.detect import analyze_path

FIXTURES = Path(__file__).parents[2] / "fixtures" / "session"
BARGE_IN = FIXTURES / "harness_bargein.json"
SESSION_END = FIXTURES / "harness_session_end.json"
NOT_JUDGED = {"session-audio", "session-protocol", "session-latency"}


def run(path: Path) -> tuple[list[SessionFindings], list[str]]:
    notes: list[str] = []
    return analyze_path(str(path), notes.append), notes


def by_id(f: SessionFindings) -> dict[str, Result]:
    return {r.id: r for r in f.results}


def problems(f: SessionFindings) -> dict[str, str | None]:
    return {r.id: r.cause for r in f.results if r.status in (Status.WARN, Status.FAIL)}


# -- the fixtures, written as §7.3 (a) describes -------------------------------------------


def test_fixtures_are_shaped_as_the_spec_says() -> None:
    for path in (BARGE_IN, SESSION_END):
        text = path.read_text(encoding="utf-8")
        assert text.endswith("}\n") and text.startswith('{\n  "at": ')
        doc = json.loads(text)
        assert is_harness_report(doc)
    bi = json.loads(BARGE_IN.read_text())
    assert list(bi)[:4] == ["at", "sessionId", "assertions", "ev"]
    for turn in bi["turns"]:
        assert turn["voiceToVoiceMs"] == turn["firstAudioAt"] - turn["speechEndAt"]
        assert turn["ms"] == turn["idleAt"] - turn["startedAt"]
    assert [t["startedAt"] for t in bi["turns"][1:]] == [t["idleAt"] for t in bi["turns"][:-1]]
    assert bi["ev"]["cutStreamEndAt"] == bi["turns"][2]["speechEndAt"]
    assert all(r["audioBytes"] == 48 * r["audioMs"] for r in bi["replies"])
    call = bi["turns"][0]["calls"][0]
    assert call["silenceOnUsMs"] == call["sentAt"] - call["callAt"]
    assert call["agentWaitMs"] == call["sentAt"] - call["transitionDoneAt"]
    assert bi["replies"][call["transitionReply"]]["doneAt"] == call["transitionDoneAt"]
    se = json.loads(SESSION_END.read_text())
    assert list(se)[:3] == ["at", "voice", "carry"]
    assert list(se["results"][0]["ended"]) == [
        "session_duration_seconds",
        "type",
        "timestamp",
        "audio_duration_seconds",
    ]


def test_barge_in_report_of_a_normal_session_has_no_false_alarm() -> None:
    (f,), notes = run(BARGE_IN)
    assert f.session_id == "sess_0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert f.source.shape == "harness report (barge-in)"
    assert any("harness report (barge-in), 1 session" in n for n in notes)
    # the only warning is what the report lacks: it keeps no close code and no endpoint
    assert problems(f) == {"session-log": "log_incomplete"}
    res = by_id(f)
    (cut,) = res["session-interruptions"].evidence["interruptions"]
    assert cut["cause"] == "user speech"
    assert cut["agent_said"] == "Tomorrow will be cloudy with"  # ev.cutAgentText
    assert cut["user_said"] == "Actually, what should I wear?"
    assert cut["into_reply_s"] == 4.4  # interruptedAt - the reply's startedAt
    assert res["session-tools"].status is Status.PASS
    assert res["session-echo"].status is Status.PASS


def test_what_a_report_cannot_show_is_not_judged_and_says_why() -> None:
    (f,), _ = run(BARGE_IN)
    res = by_id(f)
    for cid in NOT_JUDGED | {"session-errors", "session-billing"}:
        r = res[cid]
        assert (r.status, r.cause) == (Status.SKIP, "log_incomplete"), cid
        assert r.summary.startswith("Not judged: the report keeps"), r.summary
    # the latency skip keeps the one figure the report has: speech end to first chunk
    # (3.4 s less the tool's 0.81 s, 2.6 s, 2.4 s)
    assert res["session-latency"].evidence["first_chunk_latency_p50_s"] == 2.59
    assert "not when it became audible" in res["session-latency"].summary


def test_session_end_report_holds_one_session_per_result() -> None:
    (ok, bad), notes = run(SESSION_END)
    assert any("harness report (session-end), 2 sessions" in n for n in notes)
    assert problems(ok) == {"session-log": "log_incomplete"}
    res = by_id(ok)
    assert res["session-errors"].status is Status.PASS  # events{} counts no session.error
    assert res["session-billing"].status is Status.PASS  # `ended` is the raw session.ended
    assert "close code" in res["session-log"].summary
    assert "region" not in res["session-log"].summary  # the result's url names it
    assert res["session-interruptions"].evidence["interrupted"] == 1

    assert problems(bad) == {
        "session-echo": "echo_loop",
        "session-interruptions": "self_interruptions",
        "session-tools": "tool_result_missing",
        "session-errors": "session_error",
        "session-log": "log_incomplete",
    }
    bres = by_id(bad)
    assert set(bres["session-echo"].evidence["signals"]) == {"transcript", "interruptions"}
    assert bres["session-errors"].evidence["errors"][0]["code"] == "unknown"
    assert bres["session-billing"].status is Status.SKIP  # ended: null
    assert any("harness reports 1 failure(s)" in n for n in bad.notes + ok.notes)


def test_cli_on_a_report_never_prints_the_token_of_its_url(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    p = run_cli("analyze", str(SESSION_END), str(BARGE_IN), "--json", "--report", str(report))
    assert p.returncode == 1, p.stderr  # the echo loop fails
    doc = assert_valid_report(json.loads(p.stdout))
    assert len(doc["sessions"]) == 3
    assert {s["shape"] for s in doc["sessions"]} == {
        "harness report (barge-in)",
        "harness report (session-end)",
    }
    for text in (p.stdout, p.stderr, report.read_text()):
        assert "tok_SECRETHARNESS" not in text and "Traceback" not in text
    human = run_cli("analyze", str(SESSION_END))
    assert "tok_SECRETHARNESS" not in human.stdout + human.stderr
    assert "Not judged: the report" in human.stdout
    audio = [c for c in doc["checks"] if c["id"] == "session-audio"]
    assert any("counts 380 audio chunks sent" in c["summary"] for c in audio)


def test_credentials_in_the_url_stay_out_of_the_findings(tmp_path: Path) -> None:
    doc = json.loads(SESSION_END.read_text())
    doc["results"][0]["url"] = "wss://user:pw_SECRET@agents.assemblyai.com:443/v1/ws?token=tok_X"
    doc["results"][1]["url"] = "wss://[broken"
    p = tmp_path / "r.json"
    p.write_text(json.dumps(doc, indent=2) + "\n")
    found, notes = run(p)
    text = json.dumps([r.to_dict() for f in found for r in f.results]) + json.dumps(notes)
    assert "pw_SECRET" not in text and "tok_X" not in text
    assert found[0].segment.endpoint == "wss://agents.assemblyai.com:443/v1/ws"


def test_a_folder_with_a_report_and_a_timeline_reads_both_apart(tmp_path: Path) -> None:
    folder = A.write_folder(tmp_path / "s", A.normal_timeline(), None)
    shutil.copy(BARGE_IN, folder / "report.json")
    found, _ = run(folder)
    assert sorted(f.source.shape for f in found) == [
        "harness report (barge-in)",
        "vendor artifacts (timeline, metadata)",
    ]


def test_a_compact_session_end_report_is_not_taken_for_json_lines(tmp_path: Path) -> None:
    p = tmp_path / "compact.json"
    p.write_text(json.dumps(json.loads(SESSION_END.read_text())))
    found, notes = run(p)
    assert len(found) == 2, notes


# -- the same findings as the equivalent app log ----------------------------------------


def _ms(t: float | None) -> int | None:
    return None if t is None else round(t * 1000)


def harness_from(seg: Segment, counts: dict[str, int]) -> dict[str, Any]:
    """What a harness would have written of this session (§7.3 (a), session-end variant),
    built from the collected facts of the complete log, not from the reader's mapping."""
    index = {r.reply_id: i for i, r in enumerate(seg.replies)}
    replies = []
    for r in seg.replies:
        row: dict[str, Any] = {"startedAt": _ms(r.started_t)}
        if r.first_chunk_t is not None:
            row["firstAudioAt"] = _ms(r.first_chunk_t)
        row["doneAt"] = _ms(r.done_t if r.done_t is not None else r.cut_t)
        row["audioMs"] = r.audio_bytes // 48
        replies.append(row)
    turns = []
    idle = _ms(seg.first_t)
    for u in seg.users:
        mine = [r for r in seg.replies if r.answers is u]
        first = mine[0] if mine else None
        answer = first
        calls = []
        if first is not None and first.tool_calls:
            later = seg.replies[index[first.reply_id] + 1 :]
            answer = next((x for x in later if x.answers is None and x.first_chunk_t), first)
            for cid in first.tool_calls:
                c = seg.tools[cid]
                calls.append(
                    {
                        "callId": cid,
                        "name": c.name,
                        "arguments": {},
                        "callAt": _ms(c.t),
                        "sentAt": _ms(c.result_t),
                        "transitionReply": index[first.reply_id],
                        "answerReply": None if answer is first else index[answer.reply_id],
                        "isError": False,
                    }
                )
        turn: dict[str, Any] = {
            "said": u.text,
            "heard": [u.text] if u.text is not None else [],
            "calls": calls,
            "agentReply": answer.spoken if answer else "",
            "interrupted": bool(answer and answer.interrupted),
            "startedAt": _ms(u.started_t) if u.started_t is not None else idle,
            "speechEndAt": _ms(u.stopped_t),
        }
        if answer is not None and answer.first_chunk_t is not None:
            turn["firstAudioAt"] = _ms(answer.first_chunk_t)
        end = None if answer is None else answer.cut_t or answer.done_t
        idle = _ms(end) if end is not None else turn["speechEndAt"]
        turn["idleAt"] = idle
        turns.append(turn)
    result = {
        "url": "wss://agents.assemblyai.com/v1/ws",
        "sessionId": seg.session_id,
        "turns": turns,
        "events": counts,
        "failures": [],
        "audio": {"chunksSent": seg.audio.chunks, "reanchors": 0},
        "shaper": {},
        "replies": replies,
        "ended": seg.ended_event,
        "ok": True,
    }
    return {"at": "2027-01-15T08:00:00.000Z", "voice": "jane", "carry": False, "results": [result]}


def app_log(s: Script, path: Path) -> Path:
    """The same session as an app's JSON lines (§7.2): received and sent, audio redacted."""
    rows = []
    for e in s.sorted():
        if e.direction == "meta":
            if e.type == "meta.close":
                rows.append({"type": "close", "received_at": e.t, **e.payload})
            continue
        p = dict(e.payload)
        for key in ("data", "audio"):
            if key in p:
                p[key] = "<redacted>"
        side = "sent" if e.direction == "app" else "received"
        rows.append({"received_at": e.recv_t, "direction": side, "event": p})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _echo() -> Script:
    """test_core_findings' echo loop, opened by a user turn as a harness's script is."""
    s = Script().open()
    s.reply("Hello! How can I help you today?", lead_in=0.3)
    s.user("Yes please.")
    for _ in range(4):
        # a short lead-in: without audio, both measure the cut from the reply's creation
        s.reply(
            "I can help you with your order today and anything else.",
            lead_in=0.1,
            cut_after=1.8,
            speak=3.0,
        )
        s.user_after_cut("I can help you")
    s.end()
    return s


SCENARIOS = {
    "normal": normal_session,
    "echo": _echo,
    "tool missing": lambda: _tool_session(None),
    "tool dropped": lambda: _tool_session(None, cut=True),
    "tool answered": lambda: _tool_session(1.0),
}


def _eager() -> Script:
    s = Script().open(turn_detection={"min_silence": 300})
    s.reply("Hi!", lead_in=0.3)
    for _ in range(2):
        s.user("I would like to", commit=0.4)
        s.reply("Sure, what would you like?", lead_in=0.2, cut_after=0.3, speak=2.0)
        s.user_after_cut("change my delivery address please")
        s.reply("Of course.", lead_in=0.8)
    s.end()
    return s


SCENARIOS["eager"] = _eager
EXPECTED = {  # the finding each scenario is about, so the comparison is never vacuous
    "normal": None,
    "echo": ("session-echo", "echo_loop"),
    "tool missing": ("session-tools", "tool_result_missing"),
    "tool dropped": ("session-tools", "tool_result_dropped"),
    "tool answered": None,
    "eager": ("session-turn-detection", "eager_turn_detection"),
}
COMPARED = ("session-echo", "session-interruptions", "session-turn-detection", "session-tools")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_findings_as_the_equivalent_app_log(name: str, tmp_path: Path) -> None:
    s = SCENARIOS[name]()
    (whole,) = analyze_events(s.sorted(), Source(shape="synthetic"))
    counts: dict[str, int] = {}
    for e in s.events:
        if e.direction == "service":
            counts[e.type] = counts.get(e.type, 0) + 1
    report = tmp_path / "harness.json"
    report.write_text(json.dumps(harness_from(whole.segment, counts), indent=2) + "\n")
    (h,), _ = run(report)
    (log,), _ = run(app_log(s, tmp_path / "app.jsonl"))
    hres, lres = by_id(h), by_id(log)
    for cid in COMPARED:
        got = (hres[cid].status, hres[cid].cause) if cid in hres else None
        want = (lres[cid].status, lres[cid].cause) if cid in lres else None
        assert got == want, (name, cid, hres.get(cid), lres.get(cid))
    rows = [
        (x["cause"], x["into_reply_s"])
        for x in hres["session-interruptions"].evidence["interruptions"]
    ]
    want_rows = [
        (x["cause"], x["into_reply_s"])
        for x in lres["session-interruptions"].evidence["interruptions"]
    ]
    assert rows == want_rows
    found = {
        (k, hres[k].cause)
        for k in COMPARED
        if k in hres and hres[k].status in (Status.WARN, Status.FAIL)
    }
    assert found == ({EXPECTED[name]} if EXPECTED[name] else set()) | (
        {("session-interruptions", "self_interruptions")} if name == "echo" else set()
    )
    assert hres["session-errors"].status == lres["session-errors"].status
    # what the report cannot show is said, where the app log judged it
    for cid in NOT_JUDGED:
        assert (hres[cid].status, hres[cid].cause) == (Status.SKIP, "log_incomplete")


def test_silent_replies_are_found_from_the_texts_but_unknown_texts_are_not_silence(
    tmp_path: Path,
) -> None:
    doc = json.loads(BARGE_IN.read_text())
    for turn in doc["turns"]:
        turn["agentReply"] = ""  # every answer completed without a word (field #7)
        turn["interrupted"] = False
    del doc["ev"]
    p = tmp_path / "silent.json"
    p.write_text(json.dumps(doc, indent=2) + "\n")
    (f,), _ = run(p)
    assert problems(f).get("session-replies") == "silent_replies"
    for turn in doc["turns"]:
        del turn["agentReply"]  # a report that keeps no texts: silence cannot be told
    p.write_text(json.dumps(doc, indent=2) + "\n")
    (f,), _ = run(p)
    assert "session-replies" not in problems(f)


# -- bad input ---------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(json_values, json_values, json_values)
def test_any_json_in_a_report_never_raises(turns: Any, replies: Any, ev: Any) -> None:
    for doc in (
        {"sessionId": "sess_x", "ev": ev, "turns": [turns, {"calls": ev}], "replies": [replies]},
        {"results": [{"turns": [turns], "replies": replies if isinstance(replies, list) else []}]},
        {"turns": [], "replies": [], "ended": ev, "events": turns, "url": replies},
    ):
        for hs in harness_sessions(doc):
            found = analyze_events(hs.events, Source(shape="h", cannot_judge=hs.cannot_judge))
            for f in found:
                assert all(r.id.startswith("session-") for r in f.results)


def test_a_truncated_report_is_one_line(tmp_path: Path) -> None:
    p = tmp_path / "cut.json"
    p.write_text(SESSION_END.read_text()[:-400])
    found, notes = run(p)
    assert found == []
    assert len(notes) == 1 and "not valid JSON" in notes[0], notes
