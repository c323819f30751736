"""Untrusted JSON values where the readers expect a type string or a time: a list or object
as `type`, an integer too big for a float, infinity (`1e999`). Each is one line about the
bad value or file; the other files are still analysed and the report stays valid JSON."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import artifacts as A
import pytest
from clirun import assert_valid_report, run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from test_readers import go_array, write_capture

from doctor.json_numbers import bad_numbers, finite
from doctor.session.app_artifact import artifact_session, is_app_artifact
from doctor.session.harness import harness_sessions
from doctor.session.timeline import timeline_events
from doctor.session_readers.detect import analyze_path

HUGE = "1" + "0" * 400  # an integer JSON allows and float() refuses (OverflowError)


def strict(text: str) -> Any:
    """JSON as RFC 8259 has it: Infinity and NaN are not JSON."""

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    ("value", "want"),
    [
        (1, 1.0),
        (1.5, 1.5),
        (-2, -2.0),
        (10**400, None),
        (-(10**400), None),
        (float("inf"), None),
        (float("-inf"), None),
        (float("nan"), None),
        (True, None),
        ("1", None),
        (None, None),
        ([1], None),
    ],
)
def test_finite_is_a_finite_float_or_none(value: object, want: float | None) -> None:
    assert finite(value) == want


@pytest.mark.parametrize("kind", [{"a": 1}, ["agent_turn_start"], [], 3, None, True])
def test_a_type_that_is_not_a_string_is_unknown_not_a_crash(kind: object) -> None:
    doc = {"events": [{"t_ms": 1, "type": kind}]}
    assert not is_app_artifact(doc)
    assert artifact_session(doc).events == []


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def inputs(tmp: Path) -> dict[str, Path]:
    """One file of each reader with a bad time or type (the reviewer's reproductions)."""
    iso = '"started_at":"2026-01-01T00:00:00.000Z"'
    return {
        "unhashable": write(tmp / "unh.json", '{"events":[{"t_ms":1,"type":{"a":1}}]}'),
        "artifact_big": write(
            tmp / "a_big.json",
            '{"session_id":"x",' + iso + ',"events":[{"t_ms":' + HUGE + ',"type":'
            '"agent_turn_start"}]}',
        ),
        "artifact_inf": write(
            tmp / "a_inf.json",
            '{"session_id":"x",' + iso + ',"events":[{"t_ms":0,"type":"agent_turn_start"},'
            '{"t_ms":1e999,"type":"agent_turn_end","text":"hi"}]}',
        ),
        "harness_big": write(
            tmp / "h_big.json",
            '{"sessionId":"s","turns":[{"said":"hi","startedAt":' + HUGE + ',"speechEndAt":5}],'
            '"replies":[{"startedAt":6}]}',
        ),
        "harness_inf": write(
            tmp / "h_inf.json",
            '{"sessionId":"s","turns":[{"said":"hi","startedAt":1800000000000,'
            '"speechEndAt":1800000001000,"firstAudioAt":Infinity,"agentReply":"hello",'
            '"idleAt":1e999}],"replies":[{"startedAt":1800000001100,"firstAudioAt":1e999,'
            '"doneAt":Infinity,"audioMs":1000}]}',
        ),
        "timeline_big": write(
            tmp / "t_big.json",
            '{"session_id":"sess_x","started_at_unix_ms":' + HUGE + ',"turns":[]}',
        ),
        "timeline_inf": write(
            tmp / "t_inf.json",
            '{"session_id":"sess_x","started_at_unix_ms":1800000000000,"turns":[],'
            '"ended":{"at_ms":1e999,"duration_seconds":1e999}}',
        ),
        "lines_big": write(
            tmp / "l_big.jsonl",
            '{"received_at":'
            + HUGE
            + ',"event":{"type":"session.ready","session_id":"sess_'
            + "1" * 32
            + '","timestamp":'
            + HUGE
            + "}}\n",
        ),
        "lines_inf": write(
            tmp / "l_inf.jsonl",
            '{"received_at":1e999,"event":{"type":"session.ready","session_id":"sess_'
            + "2" * 32
            + '","timestamp":-1e999}}\n'
            '{"received_at":1800000001,"event":{"type":"session.ended","timestamp":1e999}}\n',
        ),
    }


def test_each_bad_file_is_analysed_or_named_and_never_stops_the_run(tmp_path: Path) -> None:
    files = inputs(tmp_path)
    good = go_array(tmp_path / "good.json")
    rep = tmp_path / "rep.json"
    args = [str(good), *map(str, files.values()), "--json", "--report", str(rep)]
    p = run_cli("analyze", *args)
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
    report = assert_valid_report(strict(p.stdout))
    assert strict(rep.read_text()) == report
    assert "Infinity" not in rep.read_text() and "NaN" not in rep.read_text()
    notes = report["input_notes"]
    (unh,) = [n for n in notes if n.startswith(f"{files['unhashable']}:")]  # one line
    assert "not a session log" in unh
    for name in ("artifact_big", "harness_big", "timeline_big", "lines_big"):
        assert any(str(files[name]) in n and "not a finite number" in n for n in notes), name
    ids = {s["session_id"] for s in report["sessions"]}
    assert "sess_aaaa" in "".join(str(i) for i in ids)  # the good file's findings are kept


def test_human_output_has_no_inf(tmp_path: Path) -> None:
    files = inputs(tmp_path)
    for path in files.values():
        p = run_cli("analyze", str(path))
        assert "Traceback" not in p.stderr, p.stderr
        assert "inf s" not in p.stdout and "nan" not in p.stdout.lower(), (path, p.stdout)


def test_readers_drop_non_finite_times() -> None:
    tl = json.loads(
        '{"started_at_unix_ms":1800000000000,"turns":[],"ended":{"at_ms":1e999,'
        '"duration_seconds":1e999}}'
    )
    for ev in timeline_events(tl):
        assert ev.t is None or (ev.t == ev.t and abs(ev.t) < 1e300)
    doc = json.loads(
        '{"turns":[{"startedAt":1e999,"speechEndAt":5}],"replies":[{"startedAt":' + HUGE + "}]}"
    )
    for hs in harness_sessions(doc):
        assert all(ev.t is None or abs(ev.t) < 1e300 for ev in hs.events)
    art = artifact_session(
        json.loads('{"events":[{"t_ms":' + HUGE + ',"type":"agent_turn_start"}]}')
    )
    assert art.events == []
    assert bad_numbers(json.loads('{"a":[1,{"b":1e999}],"c":' + HUGE + ',"d":true}')) == [
        "a[1].b",
        "c",
    ]


def numeric_leaves(doc: Any, where: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every number in a document (bools are not numbers here)."""
    if isinstance(doc, dict):
        return [p for k, v in doc.items() for p in numeric_leaves(v, (*where, k))]
    if isinstance(doc, list):
        return [p for i, v in enumerate(doc) for p in numeric_leaves(v, (*where, i))]
    ok = isinstance(doc, (int, float)) and not isinstance(doc, bool)
    return [where] if ok else []


def put(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for k in path[:-1]:
        doc = doc[k]
    doc[path[-1]] = value


FIXTURES = Path(__file__).parents[2] / "fixtures" / "session"
BAD = [10**400, -(10**400), float("inf"), float("-inf"), float("nan"), 1e308, -1e308]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(
        ["app_artifact.json", "harness_bargein.json", "harness_session_end.json", "timeline", "log"]
    ),
    st.data(),
)
def test_any_bad_number_in_any_document_is_dropped(name: str, data: st.DataObject) -> None:
    """Every reader of a document: any of its numbers made huge, infinite or NaN, the run
    still gives findings whose summary and evidence are strict JSON."""
    with tempfile.TemporaryDirectory() as d:
        if name == "log":  # an app's JSON lines: `at` and the service's timestamps
            doc = json.loads(go_array(Path(d) / "a.json").read_text())
        elif name == "timeline":
            doc = A.normal_timeline()
        else:
            doc = json.loads((FIXTURES / name).read_text())
    leaves = numeric_leaves(doc)
    if name == "log":
        leaves += [(i, "at") for i in range(len(doc))]
    for path in data.draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=6)):
        put(doc, path, data.draw(st.sampled_from(BAD)))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "doc.json"
        lines = name == "log" and data.draw(st.booleans())
        p.write_text("\n".join(map(json.dumps, doc)) if lines else json.dumps(doc))
        notes: list[str] = []
        found = analyze_path(str(p), notes.append)
    out = [f.summary() for f in found] + [r.evidence for f in found for r in f.results]
    strict(json.dumps(out, default=str))
    assert all("\n" not in n for n in notes)


@pytest.mark.parametrize("bad", [HUGE, "1e999", "-Infinity", "NaN"])
def test_a_capture_record_with_a_bad_time_is_one_skipped_line(tmp_path: Path, bad: str) -> None:
    extra = '{"t":' + bad + ',"wall":' + bad + ',"conn":1,"dir":"service","msg":{"type":"x"}}'
    cap = write_capture(tmp_path / "c.jsonl", extra_lines=[extra])
    notes: list[str] = []
    (f,) = analyze_path(str(cap), notes.append)
    assert any("needs a finite number 't'" in n and "skipped" in n for n in notes), notes
    assert f.session_id is not None


def test_a_capture_header_with_a_bad_start_is_one_line(tmp_path: Path) -> None:
    cap = write_capture(tmp_path / "c.jsonl")
    lines = cap.read_text().splitlines()
    head = json.loads(lines[0])
    lines[0] = json.dumps(head).replace(json.dumps(head["started_wall"]), HUGE, 1)
    cap.write_text("\n".join(lines) + "\n")
    notes: list[str] = []
    assert analyze_path(str(cap), notes.append) == []
    assert any("needs a finite number 'started_wall'" in n for n in notes), notes


def test_a_tool_timeout_too_big_for_a_float_is_no_timeout(tmp_path: Path) -> None:
    update = {
        "type": "session.update",
        "session": {"tools": [{"name": "slow", "timeout_seconds": 10**400}]},
    }
    rows = [
        {"at": "2027-01-15T08:00:00Z", "direction": "sent", "event": update},
        {"at": "2027-01-15T08:00:01Z", "event": {"type": "session.ready", "session_id": "s"}},
    ]
    p = write(tmp_path / "t.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    notes: list[str] = []
    analyze_path(str(p), notes.append)  # raised OverflowError


def test_a_bad_time_in_a_json_array_names_its_element(tmp_path: Path) -> None:
    rows = json.loads(go_array(tmp_path / "a.json").read_text())
    rows[2]["event"]["timestamp"] = float("inf")
    p = write(tmp_path / "b.json", json.dumps(rows, indent=2))
    notes: list[str] = []
    assert len(analyze_path(str(p), notes.append)) == 1
    assert f"{p}: element 3: event.timestamp: not a finite number; dropped" in notes
