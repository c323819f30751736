"""A JSON-lines log whose first line is huge is still read as JSON lines, and its shape is
read from its first entries, not the first alone (review r15 #11)."""

from __future__ import annotations

import json
from pathlib import Path

from doctor.session_readers.detect import analyze_path

T = 1_800_000_000.0
SID = "sess_" + "7" * 32


def test_a_huge_first_line_does_not_lose_the_file(tmp_path: Path) -> None:
    rows = [
        {"type": "session.updated", "config": {"system_prompt": "x" * 20000}},
        {"type": "session.ready", "session_id": SID},
        {"type": "session.ended"},
    ]
    p = tmp_path / "big.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    notes: list[str] = []
    (f,) = analyze_path(str(p), notes.append)
    assert f.session_id == SID
    assert not any("Extra data" in n for n in notes), notes


def test_shape_comes_from_the_first_entries_not_the_first_line(tmp_path: Path) -> None:
    rows = [
        {"type": "session.update", "session": {}},  # the app's first line: bare
        {
            "received_at": T + 0.4,
            "direction": "received",
            "event": {"type": "session.ready", "session_id": SID},
        },
        {"received_at": T + 1.0, "direction": "sent", "event": {"type": "session.end"}},
    ]
    p = tmp_path / "mixed.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    notes: list[str] = []
    analyze_path(str(p), notes.append)
    shape = next(n for n in notes if "JSON lines (" in n)
    assert "direction 'direction'" in shape and "receive time 'received_at'" in shape, shape
