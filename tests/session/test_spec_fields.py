"""Fields session-formats names that the readers used to ignore: greeting deltas without
trailing spaces (§6.3), later `config_changes` (§3.4), `dropped_chunks` (§4)."""

from __future__ import annotations

import copy
from pathlib import Path

import artifacts as A
from synth import Script

from doctor.session import Source, analyze_events
from doctor.session.state import Reply
from doctor.session_readers.detect import analyze_path


def test_deltas_join_with_one_space_whether_or_not_they_carry_one() -> None:
    r = Reply("resp_1", deltas=["Hello!", "How", "can", "I", "help?"])
    assert r.spoken == "Hello! How can I help?"
    r = Reply("resp_2", deltas=["We ", "open ", "at ", "nine."])
    assert r.spoken == "We open at nine."


def test_an_echo_of_greeting_words_known_only_from_deltas_is_echo() -> None:
    """A cut reply with no transcript.agent: only its deltas say what it said."""
    s = Script().open()
    for i in range(3):
        r = f"resp_{i:032x}"
        t = s.t
        s.svc("reply.started", t, reply_id=r)
        for w in ("How", "can", "I", "help", "you", "today?"):  # greeting-style deltas
            s.svc("transcript.agent.delta", t + 0.01, reply_id=r, delta=w)
        s.svc("input.speech.started", t + 1.0)
        s.svc("reply.done", t + 1.001, reply_id=r, status="interrupted")
        s.svc("transcript.user", t + 1.5, text="how can I help")
        s.t = t + 2.0
    s.end()
    (f,) = analyze_events(s.sorted(), Source(shape="synthetic", region="us"))
    rows = next(x for x in f.results if x.id == "session-interruptions").evidence
    assert {x["cause"] for x in rows["interruptions"]} == {"echo"}
    assert rows["interruptions"][0]["agent_said"] == "How can I help you today?"


def test_a_later_config_change_sets_the_tool_timeout(tmp_path: Path) -> None:
    tl = A.normal_timeline()
    later = copy.deepcopy(tl["config_changes"][0])
    later["received_at_ms"] = A.START_MS + 12000
    later["during_turn_id"] = A.rid(3)
    later["update"]["tools"][0]["timeout_seconds"] = 0.5  # the 0.8 s result is now late
    tl["config_changes"].append(later)
    (f,) = analyze_path(str(A.write_folder(tmp_path / "s", tl, None)), lambda _: None)
    tools = next(r for r in f.results if r.id == "session-tools")
    assert tools.cause == "tool_result_late"
    assert tools.evidence["late"][0]["timeout_s"] == 0.5


def test_dropped_upload_chunks_are_one_line(tmp_path: Path) -> None:
    folder = A.write_folder(tmp_path / "s", A.normal_timeline(), None)
    text = (
        (folder / "metadata.json").read_text().replace('"dropped_chunks": 0', '"dropped_chunks": 2')
    )
    (folder / "metadata.json").write_text(text)
    notes: list[str] = []
    analyze_path(str(folder), notes.append)
    assert any("lost 2 upload chunk(s)" in n for n in notes), notes
