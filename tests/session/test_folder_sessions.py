"""A folder of several sessions (the layout `session --save DIR` writes) is analysed
session by session (review r15 #2)."""

from __future__ import annotations

import json
from pathlib import Path

import artifacts as A

from doctor.session_readers.detect import analyze_path

SPANS = [(0.6, 2.3), (7.5, 10.2), (13.6, 15.1), (18.2, 20.3)]


def saved(folder: Path, sid: str, echo_db: float | None, audio: bool = True) -> None:
    tl = A.normal_timeline()
    tl["session_id"] = sid
    rec = A.recording(26.8, SPANS, [(3.8, 5.5)], echo_db=echo_db) if audio else None
    A.write_folder(folder, tl, rec, meta=False)
    md = A.metadata()
    md["session_id"] = sid
    (folder / "metadata.json").write_text(json.dumps(md, indent=2))


def test_a_save_folder_of_three_sessions_gives_three_sessions(tmp_path: Path) -> None:
    ids = [f"sess_{c * 32}" for c in "abc"]
    saved(tmp_path / ids[0], ids[0], None, audio=False)  # its recording is missing
    saved(tmp_path / ids[1], ids[1], -18.0)  # echo in this one only
    saved(tmp_path / ids[2], ids[2], None)
    notes: list[str] = []
    found = analyze_path(str(tmp_path), notes.append, echo=True)
    assert sorted(f.session_id or "" for f in found) == ids
    by_sid = {f.session_id: f for f in found}
    # no session borrows another's recording
    assert by_sid[ids[0]].recording is None
    echo = {sid: next(r for r in f.results if r.id == "session-echo") for sid, f in by_sid.items()}
    assert echo[ids[0]].cause != "echo_loop"
    assert echo[ids[1]].cause == "echo_loop"
    assert echo[ids[2]].cause != "echo_loop"


def test_timeline_and_metadata_of_different_sessions_are_not_mixed(tmp_path: Path) -> None:
    saved(tmp_path, "sess_" + "d" * 32, None, audio=False)
    md = A.metadata()
    (tmp_path / "metadata.json").write_text(json.dumps(md, indent=2))  # another session's
    notes: list[str] = []
    (f,) = analyze_path(str(tmp_path), notes.append)
    assert f.session_id == "sess_" + "d" * 32
    assert any("the metadata is ignored" in n for n in notes)
