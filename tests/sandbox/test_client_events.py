"""Pure parsing and summaries of Voice Agent API events (the client's timeline)."""

from __future__ import annotations

import base64
import json

import pytest

from doctor.net.events import is_fatal, parse_server_event, summarize


def test_parse_frames() -> None:
    ev = parse_server_event('{"type": "session.error", "code": "invalid_format", "message": "m"}')
    assert ev.type == "session.error" and ev.error_code == "invalid_format"
    assert parse_server_event(b"\x00\x01").type == "(binary)"
    assert parse_server_event("nope").type == "(invalid json)"
    assert parse_server_event("[]").type == "(not an object)"
    assert parse_server_event("{}").type == "(no type)"
    assert parse_server_event('{"type": "session.ready", "code": "x"}').error_code is None
    assert parse_server_event('{"type": "error", "code": "x"}').error_code == "x"


def test_summary_drops_audio_but_keeps_its_size() -> None:
    data = base64.b64encode(b"\x00" * 4800).decode()
    s = summarize({"type": "reply.audio", "data": data, "reply_id": "r1"})
    assert s == {"reply_id": "r1", "data_bytes": 4800}
    assert summarize({"type": "input.audio", "audio": "**"}) == {"audio_bytes": "undecodable"}
    assert data not in json.dumps(summarize({"type": "input.audio", "audio": data}))


def test_summary_of_updates_lists_fields_not_values() -> None:
    s = summarize(
        {"type": "session.update", "session": {"system_prompt": "secret-ish prompt", "tools": []}}
    )
    assert s == {"fields": ["system_prompt", "tools"]}
    assert summarize({"type": "session.updated", "config": {"output": {}}}) == {
        "fields": ["output"]
    }


def test_summary_keeps_ids_codes_and_short_text() -> None:
    s = summarize({"type": "transcript.user", "text": "x" * 500, "item_id": "i"})
    assert s["item_id"] == "i" and len(s["text"]) == 120
    s = summarize(
        {
            "type": "session.ended",
            "session_duration_seconds": 3.2,
            "audio_duration_seconds": None,
            "timestamp": "t",
        }
    )
    assert s == {"session_duration_seconds": 3.2, "audio_duration_seconds": None}


@pytest.mark.parametrize(
    ("code", "fatal"),
    [
        ("UNAUTHORIZED", True),
        ("unauthorized", True),
        ("session_not_found", True),
        ("agent_timeout", True),
        ("invalid_format", False),
        ("immutable_field", False),
        (None, False),
    ],
)
def test_fatal_codes(code: str | None, fatal: bool) -> None:
    assert is_fatal(code) is fatal
