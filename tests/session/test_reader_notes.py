"""Reader notes name their file; session_error offers validate-audio only for audio
(review r15 #11)."""

from __future__ import annotations

import json
from pathlib import Path

from synth import Script

from doctor.session import Source, analyze_events
from doctor.session_readers.detect import analyze_path


def test_notes_of_bad_lines_and_truncated_arrays_name_the_file(tmp_path: Path) -> None:
    good = {"type": "session.ready", "session_id": "sess_" + "1" * 32}
    lines = tmp_path / "a.jsonl"
    lines.write_text(json.dumps(good) + "\nnot json\n")
    arr = tmp_path / "b.json"
    arr.write_text("[" + json.dumps(good) + ', {"type": ')
    notes: list[str] = []
    analyze_path(str(lines), notes.append)
    analyze_path(str(arr), notes.append)
    assert any(n.startswith(f"{lines}: line 2: not JSON") for n in notes), notes
    assert any(n.startswith(f"{arr}: the array is truncated") for n in notes), notes


def test_a_config_error_does_not_offer_validate_audio() -> None:
    s = Script().open()
    s.app("session.update", s.t + 0.1, session={"output": {"voice": "nobody"}})
    s.svc("session.error", s.t + 0.2, code="immutable_field", message="no", param="output.voice")
    s.t += 1
    s.end()
    (f,) = analyze_events(s.sorted(), Source(shape="synthetic"))
    err = next(r for r in f.results if r.id == "session-errors")
    assert err.cause == "session_error"
    assert err.fix is not None
    assert not any("validate-audio" in c for c in err.fix.commands)
