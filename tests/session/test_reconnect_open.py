"""An app's `open` line after a close (or after the previous session became ready) starts
the next session: it was attached to the previous one, which then spanned both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from doctor.session_readers.detect import analyze_path

URL = "wss://agents.eu.assemblyai.com/v1/ws"


def _session(t: float, sid: str, close: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"type": "open", "url": URL, "received_at": t},
        {"direction": "sent", "received_at": t + 0.01, "type": "session.update", "session": {}},
        {
            "direction": "received",
            "received_at": t + 0.4,
            "type": "session.ready",
            "session_id": sid,
        },
        {"direction": "sent", "received_at": t + 2.0, "type": "session.end"},
        {"direction": "received", "received_at": t + 2.3, "type": "session.ended"},
    ]
    if close:
        rows.append({"type": "close", "code": 1000, "reason": "", "received_at": t + 2.5})
    return rows


def test_each_connection_is_its_own_session_with_its_endpoint(tmp_path: Path) -> None:
    for close in (True, False):
        rows = _session(1800000000.0, "sess_" + "1" * 32, close)
        rows += _session(1800000010.0, "sess_" + "2" * 32, close)
        path = tmp_path / "two.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        first, second = analyze_path(str(path), lambda _l: None)
        assert first.summary()["duration_s"] == (2.5 if close else 2.3), close
        assert second.segment.endpoint == URL and second.segment.opened_t == 1800000010.0
        log = next(r for r in second.results if r.id == "session-log")
        assert "region" not in log.summary, log.summary
