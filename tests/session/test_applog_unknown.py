"""An app's log keeps what the service would not know (review r15 #3): unknown and
mistyped message types the app sent, and older fields inside session.update.session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from doctor.session_readers.detect import analyze_path

T = 1_800_000_000.0


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def entry(t: float, direction: str, msg: dict[str, Any]) -> dict[str, Any]:
    return {"received_at": T + t, "direction": direction, "event": msg}


def protocol_of(path: Path) -> tuple[Any, list[str]]:
    notes: list[str] = []
    (f,) = analyze_path(str(path), notes.append)
    return next((r for r in f.results if r.id == "session-protocol"), None), notes


def test_sent_unknown_and_mistyped_types_are_reported(tmp_path: Path) -> None:
    sid = "sess_" + "e" * 32
    log = write(
        tmp_path / "app.jsonl",
        [
            entry(0.0, "sent", {"type": "session.update", "session": {"system_prompt": "Hi"}}),
            entry(0.4, "received", {"type": "session.ready", "session_id": sid}),
            entry(0.5, "sent", {"type": "input_audio_buffer.append", "audio": "AAAA"}),
            entry(3.0, "sent", {"type": "sesion.end"}),
            {"received_at": T + 3.5, "type": "close", "code": 1000, "reason": ""},
        ],
    )
    res, notes = protocol_of(log)
    assert res is not None and res.cause == "unknown_message"
    assert set(res.evidence["unknown_types"]) == {"input_audio_buffer.append", "sesion.end"}
    assert not any("not Voice Agent events" in n for n in notes)


def test_a_mistyped_type_without_direction_marker_is_kept_in_a_session_log(
    tmp_path: Path,
) -> None:
    rows = [
        {"type": "session.update", "session": {}},
        {"type": "session.ready", "session_id": "sess_" + "f" * 32},
        {"type": "sesion.end"},
    ]
    res, _ = protocol_of(write(tmp_path / "inline.jsonl", rows))
    assert res is not None
    assert "sesion.end" in str(res.evidence)


def test_old_fields_inside_session_update_session_are_named(tmp_path: Path) -> None:
    cfg = {"instructions": "Be brief.", "input_audio_format": "pcm16"}
    log = write(
        tmp_path / "old.jsonl",
        [
            entry(0.0, "sent", {"type": "session.update", "session": cfg}),
            entry(0.4, "received", {"type": "session.ready", "session_id": "sess_" + "0" * 32}),
            entry(1.0, "sent", {"type": "session.end"}),
        ],
    )
    res, _ = protocol_of(log)
    assert res is not None and res.cause == "unknown_message"
    assert set(res.evidence["old_fields"]) == {
        "session.update.session.instructions",
        "session.update.session.input_audio_format",
    }


def test_a_log_of_other_dotted_events_is_still_not_a_session_log(tmp_path: Path) -> None:
    rows = [{"type": "http.request", "path": f"/x/{i}"} for i in range(5)]
    notes: list[str] = []
    assert analyze_path(str(write(tmp_path / "other.jsonl", rows)), notes.append) == []
    assert any("not a session log" in n for n in notes)
