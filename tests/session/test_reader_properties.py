"""Hypothesis over the readers: whatever the bytes, one line per problem, never a traceback;
and the streaming array reader gives back exactly the elements, however the file is cut."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_readers import go_array

from doctor.session_readers import jsonstream
from doctor.session_readers.detect import analyze_path

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def analyse_bytes(data: bytes, name: str = "log") -> tuple[list[Any], list[str]]:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_bytes(data)
        notes: list[str] = []
        found = analyze_path(str(p), notes.append)
    for n in notes:
        assert isinstance(n, str) and "\n" not in n and "Traceback" not in n
    return found, notes


@SETTINGS
@given(st.binary(max_size=3000))
def test_any_bytes_never_raise(data: bytes) -> None:
    analyse_bytes(data)


@SETTINGS
@given(st.lists(json_values, max_size=30), st.sampled_from(["array", "lines"]))
def test_any_json_never_raises(values: list[Any], shape: str) -> None:
    text = json.dumps(values) if shape == "array" else "\n".join(json.dumps(v) for v in values)
    analyse_bytes(text.encode())


@pytest.fixture(scope="module")
def good_log() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        return go_array(Path(d) / "a.json").read_bytes()


@SETTINGS
@given(st.data())
def test_corrupted_app_log_keeps_the_rest(good_log: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(good_log)))
    junk = data.draw(st.binary(max_size=50))
    where = data.draw(st.integers(0, cut))
    mangled = good_log[:where] + junk + good_log[where:cut]
    found, _notes = analyse_bytes(mangled, "a.json")
    if cut == len(good_log) and not junk:
        assert len(found) == 1
    assert len(found) <= 1


@SETTINGS
@given(st.lists(json_values, max_size=25), st.integers(1, 40), st.sampled_from([0, 2]))
def test_array_stream_round_trips_at_any_chunk_size(
    monkeypatch: pytest.MonkeyPatch, values: list[Any], chunk: int, indent: int
) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK_CHARS", chunk)
    text = json.dumps(values, indent=indent or None)
    notes: list[str] = []
    got = [v for _, v in jsonstream.array_elements(io.StringIO(text), notes.append)]
    assert got == values
    assert notes == []


@SETTINGS
@given(st.lists(json_values, min_size=1, max_size=10), st.integers(1, 30))
def test_truncated_array_yields_a_prefix_and_one_note(
    monkeypatch: pytest.MonkeyPatch, values: list[Any], chunk: int
) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK_CHARS", chunk)
    text = json.dumps(values, indent=2)
    cut = text[: len(text) // 2]
    notes: list[str] = []
    got = [v for _, v in jsonstream.array_elements(io.StringIO(cut), notes.append)]
    assert got == values[: len(got)]
    assert len(notes) == 1 and "truncated" in notes[0]
