"""The relay's pure parts on synthetic records: the observer's judgements, the feed's framing,
and the worker going on when the analysis crashes or falls behind (no sockets needed)."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from doctor.capture.format import ConnEvent, Frame, Header, decode, is_header
from doctor.watch.feed import KIND_CLOSE, KIND_OPEN, Item, Unpacker, pack_event, pack_frame
from doctor.watch.findings import conn_findings, resume_findings
from doctor.watch.observe import RelayObserver
from doctor.watch.worker import Worker


def _audio_msg(pcm: bytes) -> dict[str, Any]:
    return {"type": "input.audio", "audio": base64.b64encode(pcm).decode()}


def _session(obs: RelayObserver, conn: int = 1, t0: float = 0.0, sid: str = "sess_a") -> float:
    obs.feed(ConnEvent(t0, 1e9 + t0, conn, "open", {"auth": "header"}))
    obs.feed(Frame(t0 + 0.01, 0, conn, "app", msg={"type": "session.update", "session": {}}))
    obs.feed(Frame(t0 + 0.05, 0, conn, "service", msg={"type": "session.ready", "session_id": sid}))
    return t0 + 0.1


def _noise(seconds: float, seed: int = 0) -> bytes:
    x = np.random.default_rng(seed).normal(0, 3000, int(24000 * seconds))
    return x.astype("<i2").tobytes()


def test_steady_pacing_at_twice_real_time_is_a_sample_rate_not_a_burst() -> None:
    obs = RelayObserver(echo=False)
    t = _session(obs)
    notes = []
    for i in range(100):  # 100 ms of "24 kHz" audio every 50 ms: a 48 kHz app
        notes += obs.feed(Frame(t + i * 0.05, 0, 1, "app", msg=_audio_msg(_noise(0.1, i))))
    c = obs.conns[1]
    implied = RelayObserver.implied_rate(c)
    assert implied is not None and implied["implied_hz"] == 48000
    assert c.bursts == 0
    assert any(n.cause == "sample_rate_mismatch" for n in notes)


def test_real_time_pacing_is_quiet_and_a_flush_is_a_burst() -> None:
    obs = RelayObserver(echo=False)
    t = _session(obs)
    for i in range(60):
        obs.feed(Frame(t + i * 0.05, 0, 1, "app", msg=_audio_msg(_noise(0.05, i))))
    c = obs.conns[1]
    assert RelayObserver.implied_rate(c) is None and c.bursts == 0 and c.gaps == 0
    t += 3.0
    for i in range(40):  # 2 s flushed within a few ms
        obs.feed(Frame(t + i * 0.0001, 0, 1, "app", msg=_audio_msg(_noise(0.05, i))))
    assert c.bursts == 1 and c.max_burst_s > 1.5


def test_first_bad_frame_is_named_by_number() -> None:
    obs = RelayObserver(echo=False)
    t = _session(obs)
    good = _audio_msg(_noise(0.05))
    obs.feed(Frame(t, 0, 1, "app", msg=good))
    notes = obs.feed(Frame(t + 0.05, 0, 1, "app", msg={"type": "input.audio", "audio": "@@@"}))
    obs.feed(Frame(t + 0.1, 0, 1, "app", msg={"type": "input.audio", "audio": "@@@"}))
    bad = obs.conns[1].bad
    code = next(iter(bad))
    assert bad[code]["first_frame"] == 3 and bad[code]["first_audio_frame"] == 2
    assert bad[code]["frames"] == 2
    assert notes and "frame 3 (input.audio #2)" in notes[0].text


def test_close_without_session_end_and_a_clean_close() -> None:
    obs = RelayObserver(echo=False)
    t = _session(obs, 1)
    obs.feed(ConnEvent(t + 1, 0, 1, "close", {"by": "app", "code": 1000, "reason": ""}))
    t = _session(obs, 2, t + 2, "sess_b")
    obs.feed(Frame(t, 0, 2, "app", msg={"type": "session.end"}))
    obs.feed(ConnEvent(t + 0.3, 0, 2, "close", {"by": "service", "code": 1000, "reason": ""}))
    first = [f.cause for f in conn_findings(obs.conns[1])]
    second = [f.cause for f in conn_findings(obs.conns[2])]
    assert first == ["no_session_end"] and second == []


def test_resume_after_refusal_judged_across_connections() -> None:
    obs = RelayObserver(echo=False)
    t = _session(obs, 1)
    obs.feed(ConnEvent(t + 1, 0, 1, "close", {"by": "app", "code": None}))
    for conn in (2, 3):  # resume, refused, resume again
        obs.feed(ConnEvent(t + conn, 0, conn, "open", {"auth": "query", "token_seq": conn}))
        obs.feed(
            Frame(t + conn, 0, conn, "app", msg={"type": "session.resume", "session_id": "sess_a"})
        )
        err = {"type": "session.error", "code": "session_not_found", "message": "gone"}
        obs.feed(Frame(t + conn + 0.1, 0, conn, "service", msg=err))
        obs.feed(ConnEvent(t + conn + 0.2, 0, conn, "close", {"by": "service", "code": 1008}))
    causes = [f.cause for f in resume_findings(obs.order)]
    assert causes.count("resume_rejected") == 2
    assert "resume_not_handled" in causes
    assert "resume_token_reused" not in causes  # a new token each time


def test_feed_framing_survives_any_read_boundary() -> None:
    blob = b"".join(
        [
            pack_event(KIND_OPEN, 1.0, 2.0, 1, {"auth": "query"}),
            pack_frame(0, 1.5, 2.5, 1, '{"type":"session.update"} \u2603'),
            pack_frame(1, 1.6, 2.6, 1, b"\x00\xff"),
            pack_event(KIND_CLOSE, 2.0, 3.0, 1, {"by": "app", "code": 1000}),
        ]
    )
    for step in (1, 3, 7, len(blob)):
        u = Unpacker()
        items: list[Item] = []
        for i in range(0, len(blob), step):
            items += list(u.feed(blob[i : i + step]))
        assert [(x.kind, x.direction, x.data) for x in items] == [
            (KIND_OPEN, "", None),
            (b"T", "app", '{"type":"session.update"} \u2603'),
            (b"B", "service", b"\x00\xff"),
            (KIND_CLOSE, "", None),
        ]


def _items(n: int) -> list[Item]:
    out = [Item(KIND_OPEN, "", 100.0, 1e9, 1, details={"auth": "header"})]
    for i in range(n):
        msg = json.dumps(
            {"type": "input.audio", "audio": base64.b64encode(b"\0\0" * 1200).decode()}
        )
        out.append(Item(b"T", "app", 100.1 + i * 0.05, 1e9, 1, data=msg))
    out.append(Item(KIND_CLOSE, "", 200.0, 1e9, 1, details={"by": "app", "code": 1000}))
    return out


def test_a_crashing_analysis_is_reported_and_the_capture_is_whole(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []
    header = Header(1e9, 100.0, "summary", "ws://x/v1/ws")
    w = Worker(header, str(tmp_path / "c.jsonl"), sent.append, echo=False)

    def boom(*_: Any) -> Any:
        raise RuntimeError("analysis bug")

    w.observer.feed = boom  # type: ignore[method-assign]
    for item in _items(30):
        w.handle(item)
    result = w.finish()
    assert result["stats"]["analysis_crashed"] == "RuntimeError: analysis bug"
    assert any(m.get("cause") == "analysis_crashed" for m in sent)
    lines = (tmp_path / "c.jsonl").read_text(encoding="utf-8").splitlines()
    assert is_header(json.loads(lines[0])) and len(lines) == 1 + 32
    assert all("audio" not in (decode(json.loads(x)).msg or {}) for x in lines[2:-1])


def test_an_analysis_that_falls_behind_skips_frames_and_counts_them(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []
    w = Worker(Header(1e9, 100.0, "keep", "ws://x/v1/ws"), None, sent.append, echo=False)
    gate = threading.Event()
    real = w.observer.feed

    def slow(record: Any, raw: Any = None) -> Any:
        gate.wait(10)  # the analysis is stuck until every frame has been handed over
        return real(record, raw)

    w.observer.feed = slow  # type: ignore[method-assign]
    w.audio_limit_bytes = 5 * 3300
    for item in _items(50):
        w.handle(item)
    gate.set()
    result = w.finish()
    assert result["stats"]["analysis_dropped_frames"] > 0
    assert result["stats"]["analysis_dropped_frames"] + result["stats"]["analysed_records"] == 52
    assert any(m.get("cause") == "analysis_behind" for m in sent)


def test_tool_results_late_or_missing_by_the_declared_timeout() -> None:
    obs = RelayObserver(echo=False)
    obs.feed(ConnEvent(0, 0, 1, "open", {"auth": "header"}))
    tools = [
        {"type": "function", "name": "slow", "timeout_seconds": 5},
        {"type": "function", "name": "fast", "timeout_seconds": 2},
    ]
    obs.feed(Frame(0.01, 0, 1, "app", msg={"type": "session.update", "session": {"tools": tools}}))
    obs.feed(Frame(0.05, 0, 1, "service", msg={"type": "session.ready", "session_id": "sess_t"}))
    for t, call in ((1.0, "c1"), (2.0, "c2")):
        obs.feed(
            Frame(t, 0, 1, "service", msg={"type": "tool.call", "call_id": call, "name": "slow"})
        )
    notes = obs.feed(
        Frame(7.5, 0, 1, "app", msg={"type": "tool.result", "call_id": "c1", "result": "{}"})
    )
    assert [n.cause for n in notes] == ["tool_result_late"]  # 6.5 s > the longest timeout, 5 s
    notes = obs.feed(ConnEvent(9.0, 0, 1, "close", {"by": "service", "code": 1000}))
    assert "tool_result_missing" in [n.cause for n in notes]
    causes = {f.cause: f for f in conn_findings(obs.conns[1])}
    assert causes["tool_result_missing"].evidence["call_ids"] == ["c2"]
    assert causes["tool_result_late"].evidence["late"] == [{"call_id": "c1", "after_s": 6.5}]


def _wire(obs: RelayObserver, played: np.ndarray, heard: np.ndarray, offset_s: float) -> None:
    """The agent's audio handed to the app in 10 ms chunks, the app's input in 50 ms chunks
    starting `offset_s` later, both at real time on the relay's clock."""
    _session(obs)
    for i in range(0, len(played) - 240, 240):
        msg = {
            "type": "reply.audio",
            "data": base64.b64encode(played[i : i + 240].tobytes()).decode(),
        }
        obs.feed(Frame(1.0 + i / 24000, 0, 1, "service", msg=msg))
    for i in range(0, len(heard) - 1200, 1200):
        obs.feed(
            Frame(
                1.0 + offset_s + i / 24000,
                0,
                1,
                "app",
                msg=_audio_msg(heard[i : i + 1200].tobytes()),
            )
        )
    obs.feed(ConnEvent(30.0, 0, 1, "close", {"by": "service", "code": 1000}))


def test_echo_on_the_wire_is_found_and_another_voice_is_not() -> None:
    from doctor.sandbox.audio import synth_voice

    agent = np.concatenate([synth_voice(1.5, seed=s) for s in (1, 2, 3)]).astype("<i2")
    # another speaker: the sandbox's voices share one pitch contour, so the user's is shifted
    # (a phase-locked copy of the agent's contour would be an echo in all but name)
    user = resample_poly(np.concatenate([synth_voice(1.7, seed=s) for s in (7, 8, 9)]), 10, 11)
    user = user[: len(agent)].astype("<i2")
    noise = np.random.default_rng(0).normal(0, 30, len(agent)).astype("<i2")
    for offset in (0.12, 0.6, 1.0, 1.4):
        echo = RelayObserver()
        _wire(echo, agent, (agent // 2 + noise).astype("<i2"), offset)
        assert echo.conns[1].echo is not None
        assert echo.conns[1].echo["verdict"] == "echo", (offset, echo.conns[1].echo)
        assert abs(echo.conns[1].echo["delay_ms"] - offset * 1000) < 15
        lo, hi = echo.conns[1].echo["delay_range_ms"]  # one delay: a range of a few ms
        assert abs(lo - offset * 1000) < 15 and 0 <= hi - lo < 5, echo.conns[1].echo
        other = RelayObserver()
        _wire(other, agent, (user + noise).astype("<i2"), offset)
        assert other.conns[1].echo is not None
        assert other.conns[1].echo["verdict"] != "echo", (offset, other.conns[1].echo)


def test_echo_on_the_wire_with_a_wandering_delay_is_found_with_its_range() -> None:
    """The seed app's loop as the relay met it: the sandbox's voice, its delay stepping by
    2.5-10 ms every 0.5 s (each hop inserts a gap when a chunk is late). One coherent pass
    over the window read S 2.95 / 2.97 on these two (under the wire's 4, so the loop read
    clean); the delay tracker finds it and reports the range the delay wandered over."""
    from doctor.sandbox.audio import synth_voice

    agent = np.concatenate([synth_voice(1.5, seed=s) for s in (1, 2, 3)]).astype("<i2")
    for variant in (1, 3):
        rng = np.random.default_rng(variant)
        heard = np.zeros(len(agent) + 24000)
        delay, delays = round(0.24 * 24000), []
        for start in range(0, len(agent), 12000):
            seg = agent[start : start + 12000].astype(np.float64)
            heard[start + delay : start + delay + len(seg)] += seg
            delays.append(delay / 24)
            delay += int(rng.choice([-1, 0, 1])) * int(rng.integers(60, 241))
        heard = heard[: len(agent)] + rng.normal(0, 30, len(agent))
        obs = RelayObserver()
        _wire(obs, agent, np.clip(heard, -32768, 32767).astype("<i2"), 0.0)
        echo = obs.conns[1].echo
        assert echo is not None and echo["verdict"] == "echo", (variant, echo)
        assert echo["method"] == "delay_tracker"
        lo, hi = echo["delay_range_ms"]
        assert min(delays) - 2 <= lo < hi <= max(delays) + 2, (delays, echo)
        assert hi - lo >= 5  # the wander is reported, not one averaged delay
        assert echo["drift_ms"] is not None and abs(echo["drift_ms"]) <= hi - lo
        assert echo["erl_db"] is not None and abs(echo["erl_db"]) < 3
        assert any(f.cause == "echo_loop" for f in obs.finish())


def test_tool_results_are_timed_by_their_own_tool_as_the_session_analysis_does() -> None:
    """Each call is held to its own tool's `timeout_seconds` (the session core reads them),
    not the longest; a tool the service calls over http is not the app's to answer."""
    obs = RelayObserver(echo=False)
    obs.feed(ConnEvent(0, 0, 1, "open", {"auth": "header"}))
    tools = [
        {"type": "function", "name": "slow", "timeout_seconds": 5},
        {"type": "function", "name": "fast", "timeout_seconds": 2},
        {"type": "http", "name": "lookup", "http": {"url": "https://example.com/x"}},
    ]
    obs.feed(Frame(0.01, 0, 1, "app", msg={"type": "session.update", "session": {"tools": tools}}))
    obs.feed(Frame(0.05, 0, 1, "service", msg={"type": "session.ready", "session_id": "sess_t"}))
    for t, call, name in ((1.0, "c1", "fast"), (1.5, "c2", "lookup")):
        obs.feed(
            Frame(t, 0, 1, "service", msg={"type": "tool.call", "call_id": call, "name": name})
        )
    notes = obs.feed(
        Frame(4.0, 0, 1, "app", msg={"type": "tool.result", "call_id": "c1", "result": "{}"})
    )
    assert [n.cause for n in notes] == ["tool_result_late"] and "timeout 2 s" in notes[0].text
    notes = obs.feed(ConnEvent(9.0, 0, 1, "close", {"by": "service", "code": 1000}))
    assert "tool_result_missing" not in [n.cause for n in notes]
    causes = {f.cause: f for f in conn_findings(obs.conns[1])}
    assert "tool_result_missing" not in causes
    assert causes["tool_result_late"].evidence["timeout_s"] == 2


def test_a_stored_agents_unanswered_tool_call_is_said_not_warned() -> None:
    """A session on a stored agent (`agent_id`) declares no tools; the agent's HTTP tools
    still send the app a `tool.call` (field-facts §9). Unanswered, it is an info line, not
    `tool_result_missing`; answered late, it is still late."""
    obs = RelayObserver(echo=False)
    obs.feed(ConnEvent(0, 0, 1, "open", {"auth": "header"}))
    update = {"type": "session.update", "session": {"agent_id": "agent_" + "b" * 32}}
    obs.feed(Frame(0.01, 0, 1, "app", msg=update))
    obs.feed(Frame(0.05, 0, 1, "service", msg={"type": "session.ready", "session_id": "sess_s"}))
    for t, call in ((1.0, "c1"), (2.0, "c2")):
        obs.feed(
            Frame(t, 0, 1, "service", msg={"type": "tool.call", "call_id": call, "name": "crm"})
        )
    notes = obs.feed(
        Frame(200.0, 0, 1, "app", msg={"type": "tool.result", "call_id": "c2", "result": "{}"})
    )
    assert [n.cause for n in notes] == ["tool_result_late"]
    notes = obs.feed(ConnEvent(201.0, 0, 1, "close", {"by": "app", "code": 1000}))
    said = [n for n in notes if n.cause == "tool_result_missing"]
    assert [(n.level, "c1" in n.text, "HTTP" in n.text) for n in said] == [("info", True, True)]
    causes = {f.cause for f in conn_findings(obs.conns[1])}
    assert "tool_result_missing" not in causes and "tool_result_late" in causes


def test_a_stored_agents_call_is_no_missing_result_without_a_close_either() -> None:
    """A truncated capture (no close event) ends in `finish()`: the stored agent's
    unanswered call is still no `tool_result_missing`; an agent_id in a later update
    (refused by the service) makes no stored agent."""
    for updates, missing in (
        ([{"agent_id": "agent_" + "c" * 32}], False),
        ([{}, {"agent_id": "agent_x"}], True),
    ):
        obs = RelayObserver(echo=False)
        obs.feed(ConnEvent(0, 0, 1, "open", {"auth": "header"}))
        for session in updates:
            obs.feed(Frame(0.01, 0, 1, "app", msg={"type": "session.update", "session": session}))
        obs.feed(Frame(0.05, 0, 1, "service", msg={"type": "session.ready", "session_id": "s"}))
        call = {"type": "tool.call", "call_id": "c1", "name": "crm"}
        obs.feed(Frame(1.0, 0, 1, "service", msg=call))
        causes = {f.cause for f in obs.finish()}
        assert ("tool_result_missing" in causes) is missing, (updates, causes)


def test_an_agent_id_after_a_resume_makes_no_stored_agent() -> None:
    """A resumed session keeps its agent (a later agent_id is refused), as the session
    analysis reads it: an unanswered call is missing in both."""
    obs = RelayObserver(echo=False)
    obs.feed(ConnEvent(0, 0, 1, "open", {"auth": "header"}))
    obs.feed(Frame(0.01, 0, 1, "app", msg={"type": "session.resume", "session_id": "sess_r"}))
    update = {"type": "session.update", "session": {"agent_id": "agent_" + "d" * 32}}
    obs.feed(Frame(0.02, 0, 1, "app", msg=update))
    obs.feed(Frame(0.05, 0, 1, "service", msg={"type": "session.ready", "session_id": "sess_r"}))
    obs.feed(Frame(1.0, 0, 1, "service", msg={"type": "tool.call", "call_id": "c1", "name": "crm"}))
    assert "tool_result_missing" in {f.cause for f in obs.finish()}
