"""An app's own session artifact (session-formats §7.3 (b)): its turn events read as a session;
what it does not keep (audio, errors, the vendor's session id) named not judged."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_reader_properties import json_values

from doctor.result import Result, Status
from doctor.session import analyze_events
from doctor.session.analyzer import SessionFindings, Source
from doctor.session.app_artifact import TYPES, artifact_session, is_app_artifact
from doctor.session.harness import is_harness_report
from doctor.session_readers.detect import analyze_path

FIXTURE = Path(__file__).parents[2] / "fixtures" / "session" / "app_artifact.json"


def load() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return doc


def run(doc: dict[str, Any], tmp_path: Path) -> tuple[SessionFindings, list[str]]:
    p = tmp_path / "artifact.json"
    p.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    notes: list[str] = []
    (f,) = analyze_path(str(p), notes.append)
    return f, notes


def by_id(f: SessionFindings) -> dict[str, Result]:
    return {r.id: r for r in f.results}


def problems(f: SessionFindings) -> dict[str, str | None]:
    return {r.id: r.cause for r in f.results if r.status in (Status.WARN, Status.FAIL)}


def test_fixture_is_shaped_as_the_spec_says() -> None:
    text = FIXTURE.read_text(encoding="utf-8")
    assert not text.endswith("\n") and text.startswith('{\n  "schema_version": ')
    doc = json.loads(text)
    assert list(doc)[:6] == [
        "schema_version",
        "session_id",
        "scenario_id",
        "mode",
        "order_id",
        "started_at",
    ]
    assert not doc["session_id"].startswith("sess_")
    assert is_app_artifact(doc) and not is_harness_report(doc)
    assert [e["t_ms"] for e in doc["events"]] == sorted(e["t_ms"] for e in doc["events"])
    assert "  " in doc["transcript"][-1]["text"] and "  " not in doc["transcript"][0]["text"]


def test_a_normal_session_has_no_false_alarm(tmp_path: Path) -> None:
    notes: list[str] = []
    (f,) = analyze_path(str(FIXTURE), notes.append)
    assert f.source.shape == "app session artifact"
    assert f.session_id is None  # the app's id is not the vendor's
    assert problems(f) == {"session-log": "log_incomplete"}
    res = by_id(f)
    assert "session id" in res["session-log"].summary
    (cut,) = res["session-interruptions"].evidence["interruptions"]
    assert cut["cause"] == "user speech" and cut["into_reply_s"] == 4.8
    assert res["session-tools"].evidence["calls"] == 2
    for cid in ("latency", "audio", "errors", "billing", "protocol", "replies"):
        r = res[f"session-{cid}"]
        assert (r.status, r.cause) == (Status.SKIP, "log_incomplete"), cid
        assert r.summary.startswith("Not judged: the")
    assert any("gate_address_7f3k2q" in n for n in f.notes)
    assert any("app session artifact" in n for n in notes)


def test_replies_cut_as_the_user_goes_on_are_eager_turn_detection(tmp_path: Path) -> None:
    doc = load()
    events = [e for e in doc["events"] if e["t_ms"] < 3000]
    t = 3000
    for _ in range(2):  # "I want to" ... reply ... "change my address": cut 0.3 s in
        events += [
            {"t_ms": t, "type": "user_turn_start"},
            {"t_ms": t + 900, "type": "user_turn_end", "text": "I want to"},
            {"t_ms": t + 900, "type": "agent_turn_start"},
            {"t_ms": t + 1200, "type": "agent_turn_end", "text": "", "interrupted": True},
            {"t_ms": t + 1200, "type": "user_turn_start"},
            {"t_ms": t + 2600, "type": "user_turn_end", "text": "change my delivery address"},
            {"t_ms": t + 2600, "type": "agent_turn_start"},
            {"t_ms": t + 5000, "type": "agent_turn_end", "text": "Of  course."},
        ]
        t += 6000
    doc["events"] = events
    f, _ = run(doc, tmp_path)
    td = by_id(f)["session-turn-detection"]
    assert (td.status, td.cause) == (Status.WARN, "eager_turn_detection")
    assert td.evidence["turn_detection"]["interruption_delay"] == 0.3
    assert by_id(f)["session-echo"].status is Status.PASS


def test_a_tool_call_without_result(tmp_path: Path) -> None:
    doc = load()
    doc["events"] = [
        e for e in doc["events"] if e.get("tool") != "lookup_order" or e["type"] != "tool_result"
    ]
    f, _ = run(doc, tmp_path)
    assert problems(f)["session-tools"] == "tool_result_missing"
    # the other call's reply was then cut: its result never sent is a dropped one
    doc["events"] = [e for e in doc["events"] if e["type"] != "tool_result"]
    f, _ = run(doc, tmp_path)
    assert problems(f)["session-tools"] == "tool_result_dropped"


def test_the_apps_close_reason_is_said(tmp_path: Path) -> None:
    doc = load()
    doc["turn_detection"]["reason"] = "watchdog"
    f, _ = run(doc, tmp_path)
    assert any("the app's own close reason: watchdog" in n for n in f.notes)


def test_other_logs_with_events_are_not_taken_for_an_artifact() -> None:
    assert not is_app_artifact({"events": [{"t_ms": 1, "type": "session.ready"}]})
    assert not is_app_artifact({"events": []})
    assert not is_app_artifact([{"t_ms": 1, "type": "agent_turn_start"}])


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "t_ms": st.integers(-5, 10**6)
                | st.floats(allow_nan=True)
                | st.sampled_from([10**400, -(10**400)])
                | json_values,
                "type": st.sampled_from(sorted(TYPES)) | json_values,
            },
            optional={"text": json_values, "interrupted": json_values, "call_id": json_values},
        ),
        max_size=20,
    ),
    json_values,
)
def test_any_events_never_raise(events: list[dict[str, Any]], td: Any) -> None:
    doc = {"events": events, "turn_detection": td, "started_at": td}
    is_app_artifact(doc)
    art = artifact_session(doc)
    assert all(ev.t is None or math.isfinite(ev.t) for ev in art.events)
    for f in analyze_events(art.events, Source(shape="a", cannot_judge=art.cannot_judge)):
        assert all(r.id.startswith("session-") for r in f.results)


def test_transcription_mode_and_voice_focus_are_input_fields_not_turn_detection(
    tmp_path: Path,
) -> None:
    """The artifact keeps them in its `turn_detection{}`; the API has them at `input.*`
    (session-formats §3.4), where the user sets them."""
    doc = load()
    art = artifact_session(doc)
    (cfg,) = [e.payload["config"] for e in art.events if e.type == "session.updated"]
    assert cfg["input"]["transcription_mode"] == "balanced"
    assert "voice_focus" in cfg["input"] and cfg["input"]["voice_focus"] is None
    assert set(cfg["input"]["turn_detection"]) == {
        "vad_threshold",
        "interrupt_response",
        "interruption_delay",
    }
    doc["events"] = [e for e in doc["events"] if e["t_ms"] < 3000] + [
        {"t_ms": t + d, "type": k, **x}
        for t in (3000, 9000)
        for d, k, x in (
            (0, "user_turn_start", {}),
            (900, "user_turn_end", {"text": "I want to"}),
            (900, "agent_turn_start", {}),
            (1200, "agent_turn_end", {"text": "", "interrupted": True}),
            (1200, "user_turn_start", {}),
            (2600, "user_turn_end", {"text": "change my delivery address"}),
            (2600, "agent_turn_start", {}),
            (5000, "agent_turn_end", {"text": "Of course."}),
        )
    ]
    f, _ = run(doc, tmp_path)
    td = by_id(f)["session-turn-detection"]
    assert td.cause == "eager_turn_detection"
    assert "transcription_mode" not in td.evidence["turn_detection"]
    assert td.evidence["transcription_mode"] == "balanced"
    assert td.fix is not None
    detail = td.fix.steps[-1]
    assert "input.turn_detection {" in detail and "input.transcription_mode 'balanced'" in detail
