"""JSON nested deeper than Python's decoder can go is bad input: one note and the entry
skipped (exit 2 when nothing else is left), never "internal error: RecursionError"."""

from __future__ import annotations

import json
from pathlib import Path

from clirun import run_cli

from doctor.session_readers.detect import analyze_path

DEEP = 100_000
READY = json.dumps({"type": "session.ready", "session_id": "sess_" + "6" * 32})


def _notes(path: Path) -> tuple[int, list[str]]:
    notes: list[str] = []
    found = analyze_path(str(path), notes.append)
    return len(found), notes


def test_a_deep_array_a_deep_element_and_a_deep_line_are_skipped_with_a_note(
    tmp_path: Path,
) -> None:
    whole = tmp_path / "deep.json"
    whole.write_text("[" * DEEP + "]" * DEEP)
    element = tmp_path / "deep_el.json"
    element.write_text(f"[{READY},\n" + "[" * DEEP + "]" * DEEP + "]")
    line = tmp_path / "deep_obj.jsonl"
    line.write_text('{"a":' * DEEP + "1" + "}" * DEEP + "\n" + READY + "\n")
    assert _notes(whole) == (
        0,
        [
            f"{whole}: element 1 is nested too deeply to read; skipped",
            f"{whole}: not a session log: no Voice Agent events",
        ],
    )
    n, notes = _notes(element)
    assert n == 1 and f"{element}: element 2 is nested too deeply to read; skipped" in notes
    n, notes = _notes(line)
    assert n == 1 and f"{line}: line 1: nested too deeply to read; skipped" in notes


def test_the_cli_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * DEEP)
    p = run_cli("analyze", str(path))
    assert p.returncode == 2, p.stderr
    assert "RecursionError" not in p.stderr and "internal error" not in p.stderr, p.stderr
    assert "nested too deeply" in p.stderr
