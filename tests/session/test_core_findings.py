"""The analysis core on synthetic event streams: one test per finding, and no false alarm."""

from __future__ import annotations

import base64
import json
from typing import Any

from synth import LOUD, T0, Script, normal_session

from doctor.capture.format import ConnEvent, Frame
from doctor.result import Result, Status
from doctor.session import SessionAnalyzer, Source, analyze_events, make_event, meta
from doctor.session.findings import DEFAULT_TOOL_TIMEOUT_S


def results(s: Script, **source: Any) -> dict[str, Result]:
    found = analyze_events(s.sorted(), Source(shape="synthetic", region="us", **source))
    assert len(found) == 1
    return {r.id: r for r in found[0].results}


def problems(res: dict[str, Result]) -> dict[str, str | None]:
    return {k: r.cause for k, r in res.items() if r.status in (Status.WARN, Status.FAIL)}


def test_normal_session_has_no_warning() -> None:
    res = results(normal_session())
    assert problems(res) == {}
    inter = res["session-interruptions"]
    assert inter.evidence["interrupted"] == 1
    assert inter.evidence["interruptions"][0]["cause"] == "user speech"
    assert res["session-latency"].status is Status.PASS
    assert res["session-tools"].status is Status.PASS
    assert res["session-echo"].evidence["session_id"] == "sess_" + "a" * 32


def test_latency_counts_from_speech_end_to_audible_not_first_chunk() -> None:
    s = Script().open()
    s.user("What time is it?")
    s.reply("It is noon.", lead_in=1.7)  # 1.7 s of silent chunks before the voice
    s.end()
    ev = results(s)["session-latency"].evidence
    assert abs(ev["p50_s"] - 1.7) <= 0.1  # chunk granularity; the first chunk is at 0.01 s
    assert ev["measured_to"] == "first audible agent audio"


def test_slow_replies() -> None:
    s = Script().open()
    for _ in range(4):
        s.user("Tell me something please.")
        s.reply("Something.", lead_in=4.5)
    s.end()
    r = results(s)["session-latency"]
    assert (r.status, r.cause) == (Status.WARN, "slow_replies")
    assert abs(r.evidence["worst_s"] - 4.5) <= 0.1


def echo_session() -> Script:
    s = Script().open()
    s.reply("Hello! How can I help you today?", lead_in=0.3)
    for _ in range(4):
        said = "I can help you with your order today"
        # cut 1.8 s in, after "I can help you": the echo of those words is the "user"
        s.reply(said + " and anything else you need.", cut_after=1.8, speak=3.0)
        s.user_after_cut("I can help you")
    s.end()
    return s


def test_echo_loop_from_transcripts_and_early_cuts() -> None:
    res = results(echo_session())
    echo = res["session-echo"]
    assert (echo.status, echo.cause) == (Status.FAIL, "echo_loop")
    assert set(echo.evidence["signals"]) == {"transcript", "interruptions"}
    assert echo.fix is not None and echo.fix.guide == "session_echo"
    inter = res["session-interruptions"]
    assert inter.cause == "self_interruptions"
    assert {x["cause"] for x in inter.evidence["interruptions"]} == {"echo"}


def test_echo_from_the_recording_alone_is_a_warning_naming_audio() -> None:
    analyzer = SessionAnalyzer(Source(shape="synthetic", region="us"))
    for ev in normal_session().sorted():
        analyzer.feed(ev)
    analyzer.add_echo({"verdict": "echo", "delay_ms": 180.0, "erl_db": -12.0})
    res = {r.id: r for r in analyzer.finish()[0].results}
    assert res["session-echo"].status is Status.WARN
    assert res["session-echo"].evidence["signals"] == ["audio"]
    assert "delay 180.0 ms" in res["session-echo"].summary


def test_eager_turn_detection_is_not_echo() -> None:
    s = Script().open(turn_detection={"min_silence": 300})
    s.reply("Hi!", lead_in=0.3)
    for _ in range(2):
        s.user("I would like to", commit=0.4)
        s.reply("Sure, what would you like?", lead_in=0.5, cut_after=0.3, speak=2.0)
        s.user_after_cut("change my delivery address please")
        s.reply("Of course.", lead_in=0.8)
    s.end()
    res = results(s)
    td = res["session-turn-detection"]
    assert (td.status, td.cause) == (Status.WARN, "eager_turn_detection")
    assert td.evidence["turn_detection"] == {"min_silence": 300}
    assert res["session-echo"].status is Status.PASS


def test_noise_cuts_are_named_noise() -> None:
    s = Script().open()
    for _ in range(3):
        s.reply("Let me tell you about our offers today.", cut_after=0.9, speak=3)
        s.user_after_cut("")
    s.end()
    res = results(s)
    rows = res["session-interruptions"].evidence["interruptions"]
    assert {x["cause"] for x in rows} == {"noise"}
    assert res["session-interruptions"].cause == "self_interruptions"


def test_no_session_end_and_abrupt_close() -> None:
    s = Script().open()
    s.user("Hello?")
    s.reply("Hi.")
    s.end(send_end=False, close_code=None)
    res = results(s)
    assert res["session-billing"].cause == "no_session_end"
    assert res["session-billing"].evidence["grace_s_may_be_billed"] == 30.0
    assert res["session-errors"].cause == "abrupt_close"


def test_received_only_log_with_session_ended_is_not_blamed() -> None:
    s = normal_session(sent=False)
    res = results(s)
    assert res["session-billing"].status is Status.PASS
    assert res["session-tools"].status is Status.SKIP


def test_received_only_log_without_session_ended_before_close() -> None:
    s = Script(sent=False).open()
    s.reply("Hi.")
    s.end(send_end=False, close_code=1006)
    assert results(s)["session-billing"].cause == "no_session_end"


def test_vendor_end_participant_disconnected_with_client_end_is_fine() -> None:
    s = Script(sent=False).open()
    s.reply("Hi.")
    s.events.append(
        meta("meta.ended", s.t + 2.5, reason="participant_disconnected", public_reason="client_end")
    )
    assert results(s)["session-billing"].status is Status.PASS


def _resume_log(fresh: bool, retries: int = 0) -> list[Any]:
    s = Script().open()
    s.reply("Hi.")
    s.end(send_end=False, close_code=None)
    for _ in range(1 + retries):
        s.app("session.resume", s.t + 1, session_id=s.sid)
        s.svc(
            "session.error",
            s.t + 1.2,
            code="session_not_found",
            message="Session not found or grace window has expired",
        )
        s.events.append(meta("meta.close", s.t + 1.3, code=1008, reason="", by="service"))
        s.t += 2
    if fresh:
        s.sid = "sess_" + "b" * 32
        s.open()
        s.reply("Hello again.")
        s.end()
    return s.sorted()


def test_resume_refused_then_fresh_session() -> None:
    found = analyze_events(_resume_log(True), Source(shape="synthetic", region="us"))
    assert [f.session_id for f in found] == ["sess_" + "a" * 32] * 2 + ["sess_" + "b" * 32]
    resume = next(r for r in found[1].results if r.id == "session-resume")
    assert (resume.status, resume.cause) == (Status.WARN, "resume_rejected")
    assert resume.fix is not None and resume.fix.guide == "resume_refused"
    assert not any(r.id == "session-errors" and r.status is Status.FAIL for r in found[1].results)


def test_resume_refused_and_retried_is_not_handled() -> None:
    found = analyze_events(_resume_log(False, retries=2), Source(shape="synthetic"))
    first = next(r for r in found[1].results if r.id == "session-resume")
    assert (first.status, first.cause) == (Status.FAIL, "resume_not_handled")
    assert first.evidence["retries"] == 2


def test_session_error_names_the_offending_message() -> None:
    s = Script().open()
    s.app("input.audio", s.t + 0.1, audio="not base64 at all!")
    s.svc("session.error", s.t + 0.2, code="invalid_audio", message="Invalid audio data")
    s.t += 0.3
    s.end()
    err = results(s)["session-errors"]
    assert (err.status, err.cause) == (Status.FAIL, "session_error")
    assert err.evidence["errors"][0]["caused_by"]["type"] == "input.audio"
    assert err.fix is not None and err.fix.guide == "malformed_audio"


def test_config_error_carries_param() -> None:
    s = Script().open()
    s.app("session.update", s.t + 0.1, session={"output": {"voice": "ivy"}})
    s.svc(
        "session.error",
        s.t + 0.2,
        code="immutable_field",
        param="output.voice",
        message="'output.voice' cannot be changed after the first session.update",
    )
    s.end()
    err = results(s)["session-errors"]
    assert err.evidence["errors"][0]["param"] == "output.voice"
    assert err.evidence["errors"][0]["caused_by"]["session"] == {"output": {"voice": "ivy"}}


def _tool_session(result_after: float | None, cut: bool = False) -> Script:
    s = Script().open(tools=[{"name": "lookup", "timeout_seconds": 5.0}])
    s.user("Where is my parcel?")
    s.reply("Let me look.", tool=("call_1", "lookup"), cut_after=0.5 if cut else None)
    if cut:
        s.user_after_cut("Actually never mind")
    if result_after is not None:
        s.tool_result("call_1", after=result_after)
    s.t += 10
    s.end()
    return s


def test_tool_result_missing_late_dropped() -> None:
    assert results(_tool_session(None))["session-tools"].cause == "tool_result_missing"
    late = results(_tool_session(8.0))["session-tools"]
    assert late.cause == "tool_result_late"
    assert late.evidence["late"][0]["timeout_s"] == 5.0
    dropped = results(_tool_session(None, cut=True))["session-tools"]
    assert dropped.cause == "tool_result_dropped"
    assert results(_tool_session(1.0))["session-tools"].status is Status.PASS


def test_http_tool_calls_need_no_result() -> None:
    s = Script().open(tools=[{"name": "crm", "http": {"url": "https://x"}}])
    s.user("Look me up")
    s.reply("One moment.", tool=("call_1", "crm"))
    s.end()
    assert results(s)["session-tools"].status is Status.PASS


def test_app_audio_well_paced_passes_and_runs_the_validate_core() -> None:
    s = Script().open()
    s.mic(6.0)
    s.t += 6
    s.end()
    audio = results(s)["session-audio"]
    assert audio.status is Status.PASS, audio.summary
    assert audio.evidence["median_chunk_ms"] == 50.0
    assert "content" in audio.evidence


def test_audio_before_ready() -> None:
    s = Script().open()
    s.mic(1.0, start=T0 + 0.05)  # before session.ready at +0.42
    s.t += 2
    s.end()
    assert results(s)["session-audio"].cause == "audio_before_ready"


def test_audio_burst_faster_than_real_time() -> None:
    s = Script().open()
    s.mic(12.0, pace=3.0)
    s.t += 5
    s.end()
    r = results(s)["session-audio"]
    assert r.cause == "audio_pacing"
    assert r.evidence["max_ahead_s"] > 3


def test_audio_invalid_base64() -> None:
    s = Script().open()
    for i in range(3):
        s.app("input.audio", s.t + i * 0.05, audio="%%%")
    s.end()
    assert results(s)["session-audio"].cause == "base64_invalid"


def test_declared_pcmu_but_pcm16_sent() -> None:
    s = Script().open()
    s.app("session.update", s.t, session={"input": {"format": {"encoding": "audio/pcmu"}}})
    s.mic(4.0)
    s.t += 4
    s.end()
    r = results(s)["session-audio"]
    assert (r.status, r.cause) == (Status.FAIL, "format_mismatch")


def test_outdated_client_messages_and_fields() -> None:
    s = Script().open()
    s.app("session.config", s.t, voice="jane")
    s.app("session.update", s.t, config={"system_prompt": "x"})
    s.app("tool.result", s.t, call_id="c", output="{}")
    s.end()
    r = results(s)["session-protocol"]
    assert r.cause == "unknown_message"
    assert r.evidence["unknown_types"] == {"session.config": 1}
    assert set(r.evidence["old_fields"]) == {"session.update.config", "tool.result.output"}


def test_what_the_log_lacks() -> None:
    s = Script(sent=False).open()
    s.events = [e for e in s.events if e.type not in ("session.ready", "meta.open")]
    s.reply("Hi.")
    found = analyze_events(s.sorted(), Source(shape="synthetic"))
    r = {x.id: x for x in found[0].results}["session-log"]
    assert r.cause == "log_incomplete"
    lacks = r.evidence["lacks"]
    assert any("session id" in x for x in lacks)
    assert any("close code" in x for x in lacks)
    assert any("region" in x for x in lacks)


def test_feed_returns_live_notes() -> None:
    a = SessionAnalyzer()
    notes: list[str] = []
    s = echo_session()
    s.svc("session.error", s.t, code="invalid_format", message="Unknown message type: x")
    for ev in s.sorted():
        notes += a.feed(ev)
    assert any(n.startswith("reply interrupted 1.8 s in") for n in notes)
    assert "session.error invalid_format: Unknown message type: x" in notes
    assert any(n.startswith("connection closed: 1000") for n in notes)


def test_feed_accepts_capture_records_with_audio_kept_or_summarised() -> None:
    pcm = base64.b64encode(b"\x10\x00" * 1200).decode()
    a = SessionAnalyzer(Source(shape="capture", region="us", sent_logged=True))
    a.feed(ConnEvent(0.0, T0, 1, "open", {"path": "/v1/ws", "auth": "header"}))
    a.feed(Frame(0.01, T0 + 0.01, 1, "app", msg={"type": "session.update", "session": {}}))
    a.feed(
        Frame(
            0.4,
            T0 + 0.4,
            1,
            "service",
            msg={"type": "session.ready", "session_id": "sess_x", "timestamp": T0 + 0.4},
        )
    )
    for i in range(40):
        kept = i % 2 == 0
        msg = {"type": "input.audio", **({"audio": pcm} if kept else {})}
        audio = (
            None if kept else {"field": "audio", "valid_base64": True, "chars": 3200, "bytes": 2400}
        )
        a.feed(Frame(0.5 + i * 0.05, T0 + 0.5 + i * 0.05, 1, "app", msg=msg, audio=audio))
    a.feed(
        Frame(
            2.6,
            T0 + 2.6,
            1,
            "service",
            msg={"type": "reply.audio", "reply_id": "resp_1", "data": LOUD, "timestamp": T0 + 2.6},
        )
    )
    a.feed(Frame(2.7, T0 + 2.7, 1, "app", msg={"type": "session.end"}))
    a.feed(ConnEvent(2.9, T0 + 2.9, 1, "close", {"by": "service", "code": 1000, "reason": ""}))
    (f,) = a.finish()
    res = {r.id: r for r in f.results}
    assert f.session_id == "sess_x"
    assert res["session-audio"].evidence["chunks"] == 40
    assert res["session-audio"].evidence["audio_s"] == 2.0
    assert f.segment.replies[0].audible_t == T0 + 2.6
    assert res["session-billing"].status is Status.PASS
    assert res["session-log"].status is Status.PASS


def test_unknown_service_types_and_empty_stream() -> None:
    assert analyze_events([]) == []
    ev = make_event({"type": "reply.audio", "reply_id": 5, "timestamp": "x"}, "service", None)
    (f,) = analyze_events([ev])
    assert {r.id for r in f.results} >= {"session-echo", "session-log"}


def test_error_type_without_session_prefix_is_an_error() -> None:
    s = Script().open()
    s.svc("error", s.t + 0.1, code="invalid_format", message="Invalid JSON format.")
    s.end()
    err = results(s)["session-errors"]
    assert err.cause == "session_error"
    assert err.evidence["errors"][0]["guide"] == "session_errors"


def test_service_types_we_do_not_know_are_not_blamed_on_the_app() -> None:
    s = Script().open()
    s.svc("reply.audio.done", s.t + 0.1, reply_id="resp_1")
    s.end()
    r = results(s)["session-protocol"]
    assert r.status is Status.PASS
    assert r.evidence["unknown_service_types"] == {"reply.audio.done": 1}


def test_latency_without_audio_or_word_timings_is_not_guessed() -> None:
    s = Script(audio=False).open()
    s.user("What time is it?")
    s.reply("It is noon.", lead_in=1.0)
    s.end()
    for e in s.events:
        e.payload.pop("end_ms", None)
    r = results(s)["session-latency"]
    assert (r.status, r.cause) == (Status.SKIP, "no_audible_start")


def test_latency_estimated_from_word_timings_when_audio_is_redacted() -> None:
    s = Script(audio=False).open()
    for _ in range(3):
        s.user("What time is it?")
        s.reply("It is noon now.", lead_in=1.0, speak=2.0)
    s.end()
    r = results(s)["session-latency"]
    assert r.status is Status.PASS
    assert r.evidence["measured_to"].startswith("estimated")
    assert abs(r.evidence["p50_s"] - 1.15) < 0.02  # the last word ends 150 ms before the end


def test_capture_connections_resume_refused_then_fresh() -> None:
    """Three connections in one capture: a drop, a refused resume, a fresh session."""
    a = SessionAnalyzer(Source(shape="capture", region="us", sent_logged=True))

    def svc(t: float, conn: int, **msg: Any) -> Frame:
        return Frame(t, T0 + t, conn, "service", msg={**msg, "timestamp": T0 + t})

    records: list[Frame | ConnEvent] = [
        ConnEvent(0, T0, 1, "open", {"path": "/v1/ws", "auth": "query"}),
        Frame(0.01, T0 + 0.01, 1, "app", msg={"type": "session.update", "session": {}}),
        svc(0.4, 1, type="session.ready", session_id="sess_1", resume_token="<redacted>"),
        ConnEvent(5, T0 + 5, 1, "close", {"by": "relay", "code": None, "reason": None}),
        ConnEvent(6, T0 + 6, 2, "open", {"path": "/v1/ws", "auth": "query"}),
        Frame(
            6.01,
            T0 + 6.01,
            2,
            "app",
            msg={"type": "session.resume", "session_id": "sess_1", "resume_token": "<redacted>"},
        ),
        svc(6.2, 2, type="session.error", code="session_not_found", message="Session not found"),
        ConnEvent(6.3, T0 + 6.3, 2, "close", {"by": "service", "code": 1008, "reason": ""}),
        ConnEvent(7, T0 + 7, 3, "open", {"path": "/v1/ws", "auth": "query"}),
        Frame(7.01, T0 + 7.01, 3, "app", msg={"type": "session.update", "session": {}}),
        svc(7.4, 3, type="session.ready", session_id="sess_2"),
        Frame(9, T0 + 9, 3, "app", msg={"type": "session.end"}),
        svc(9.2, 3, type="session.ended", session_duration_seconds=2.2),
        ConnEvent(9.3, T0 + 9.3, 3, "close", {"by": "service", "code": 1000, "reason": ""}),
    ]
    notes = [n for r in records for n in a.feed(r)]
    assert "session.error session_not_found: Session not found" in notes
    found = a.finish()
    assert [f.session_id for f in found] == ["sess_1", "sess_1", "sess_2"]
    first, resume, fresh = ({r.id: r for r in f.results} for f in found)
    assert first["session-billing"].cause == "no_session_end"
    assert first["session-errors"].cause == "abrupt_close"
    assert resume["session-resume"].cause == "resume_rejected"
    assert resume["session-resume"].evidence["fresh_session_after"] is True
    assert "session-billing" not in resume
    assert fresh["session-billing"].status is Status.PASS


def test_credentials_in_the_offending_message_are_redacted() -> None:
    s = Script().open()
    s.app("session.resume", s.t, session_id="sess_1", resume_token="rt-secret-value")
    s.svc("session.error", s.t + 0.1, code="invalid_format", message="x")
    s.end()
    err = results(s)["session-errors"]
    assert "rt-secret-value" not in json.dumps(err.evidence)


def test_received_only_log_of_a_refused_resume_then_fresh_session() -> None:
    s = Script(sent=False).open()
    s.reply("Hi.")
    s.t += 3  # the connection dropped; the log of received messages does not say so
    s.svc("session.error", s.t, code="session_not_found", message="Session not found")
    s.t += 1
    s.sid = "sess_" + "c" * 32
    s.open()
    s.reply("Hello again.")
    s.end()
    found = analyze_events(s.sorted(), Source(shape="synthetic"))
    assert [f.session_id for f in found] == [
        "sess_" + "a" * 32,
        "(id not in the log)",
        "sess_" + "c" * 32,
    ]
    resume = {r.id: r for r in found[1].results}["session-resume"]
    assert resume.cause == "resume_rejected"
    first = {r.id: r for r in found[0].results}
    assert first["session-errors"].status is Status.PASS


def test_a_user_answer_that_reuses_the_agents_words_is_not_echo() -> None:
    s = Script().open()
    s.reply("Would you like the blue one or the red one today?", cut_after=2.5, speak=3.0)
    s.user_after_cut("the red one one please")
    s.reply("Great choice.")
    s.end()
    res = results(s)
    assert res["session-echo"].status is Status.PASS
    assert problems(res) == {}


def test_tiny_chunks_warn_like_validate_audio() -> None:
    s = Script().open()
    s.mic(3.0, chunk_s=0.005)
    s.t += 3
    s.end()
    r = results(s)["session-audio"]
    assert r.cause == "audio_pacing" and "Chunks of 5 ms" in r.summary


def test_room_noise_before_the_user_speaks_is_not_called_noise() -> None:
    """The validate-audio core judges the format from the first bytes; a session's audio
    opens with room noise while the greeting plays."""
    import numpy as np

    from doctor.sandbox.audio import synth_voice

    rng = np.random.default_rng(0)
    parts = []
    for i in range(4):
        parts.append((rng.standard_normal(24000 * 6) * 30).astype(np.int16))  # -60 dBFS
        parts.append(synth_voice(2.0, seed=i))
    pcm = np.concatenate(parts).astype("<i2").tobytes()
    s = Script().open()
    for i in range(0, len(pcm), 2400):
        s.app("input.audio", s.t + i / 48000, audio=base64.b64encode(pcm[i : i + 2400]).decode())
    s.t += len(pcm) / 48000
    s.end()
    r = results(s)["session-audio"]
    assert r.status is Status.PASS, r.summary
    assert r.evidence["content"]["skipped_leading_quiet_s"] >= 5


def test_silent_completed_replies() -> None:
    s = Script().open()
    for _ in range(3):
        s.user("Hello there, anyone?")
        r = "resp_" + "f" * 31 + str(_)
        s.svc("reply.started", s.t + 0.01, reply_id=r)
        s.svc("reply.audio", s.t + 0.02, reply_id=r, data=base64.b64encode(bytes(480)).decode())
        s.svc("reply.done", s.t + 2.0, reply_id=r, status="completed")
        s.t += 2.1
    s.end()
    res = results(s)
    assert res["session-replies"].cause == "silent_replies"
    assert "session-replies" not in results(normal_session())


def test_conversation_message_is_flagged() -> None:
    s = Script().open()
    s.app("conversation.message", s.t, role="system", content="The user is Ana.")
    s.end()
    r = results(s)["session-context"]
    assert r.cause == "ignored_message" and r.fix is not None


def test_redacted_input_audio_is_counted_not_judged() -> None:
    s = Script().open()
    for i in range(10):
        s.events.append(
            make_event({"type": "input.audio", "audio": "<redacted>"}, "app", s.t + i * 0.05)
        )
    s.end()
    # the reader marks redacted audio; an Event built by hand goes through the collector
    from doctor.session.events import AudioInfo

    for e in s.events:
        if e.type == "input.audio":
            e.audio = AudioInfo(None, True)
    r = results(s)["session-audio"]
    assert r.status is Status.PASS and "redacts" in r.summary


def test_a_three_word_echo_repeated_is_echo() -> None:
    s = Script().open()
    for _ in range(3):
        s.reply("Sure I can do that for you right away.", cut_after=1.3, speak=3.0)
        s.user_after_cut("Sure I can")  # what was said before the cut came back
    s.end()
    echo = results(s)["session-echo"]
    assert "transcript" in echo.evidence["signals"]


def test_a_stored_agents_unanswered_tool_call_is_no_missing_result() -> None:
    """A stored agent's HTTP tools still send the app a `tool.call` (field-facts §9), and
    the session never sees which of its tools those are: an unanswered call passes, said."""
    s = Script().open(agent_id="agent_" + "a" * 32)
    s.user("Look me up")
    s.reply("One moment.", tool=("call_1", "crm"))
    s.end()
    tools = results(s)["session-tools"]
    assert tools.status is Status.PASS, tools.summary
    assert "stored agent's crm" in tools.summary
    assert tools.evidence["stored_agent_unanswered"][0]["call_id"] == "call_1"


def test_a_stored_agents_tool_answered_late_is_still_late() -> None:
    s = Script().open(agent_id="agent_" + "a" * 32)
    s.user("Look me up")
    s.reply("One moment.", tool=("call_1", "crm"))
    s.tool_result("call_1", after=DEFAULT_TOOL_TIMEOUT_S + 5)
    s.t += DEFAULT_TOOL_TIMEOUT_S + 10
    s.end()
    assert results(s)["session-tools"].cause == "tool_result_late"


def test_an_agent_id_in_a_later_update_makes_no_stored_agent() -> None:
    """The service refuses a later `agent_id` (`agent_id_not_first`): the session is no
    stored agent's, and an unanswered call is still missing."""
    s = Script().open()
    s.app("session.update", s.t, session={"agent_id": "agent_" + "a" * 32})
    s.user("Look me up")
    s.reply("One moment.", tool=("call_1", "crm"))
    s.end()
    assert results(s)["session-tools"].cause == "tool_result_missing"
