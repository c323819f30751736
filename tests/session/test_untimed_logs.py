"""Logs without receive times (raw frames, a direction marker only, a time the reader
cannot parse): what the app sent counts as sent, and no timing is claimed for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from doctor.session_readers.detect import analyze_path

SID = "sess_" + "7" * 32
CALL = "chatcmpl-tool-0123456789abcdef"


def _lines(marker: bool) -> list[dict[str, Any]]:
    def sent(**kw: Any) -> dict[str, Any]:
        return {"direction": "sent", **kw} if marker else kw

    def got(t: float, **kw: Any) -> dict[str, Any]:
        return {"direction": "received", "timestamp": t, **kw} if marker else {"timestamp": t, **kw}

    tool = {"type": "function", "name": "lookup", "description": "x", "parameters": {}}
    r1, r2 = "resp_" + "1" * 32, "resp_" + "2" * 32
    return [
        sent(type="session.update", session={"tools": [tool]}),
        got(1800000000.4, type="session.updated", config={}),
        got(1800000000.42, type="session.ready", session_id=SID, config={}),
        got(1800000001.0, type="reply.started", reply_id=r1),
        got(1800000001.05, type="tool.call", call_id=CALL, name="lookup", arguments={}),
        got(1800000001.2, type="reply.done", reply_id=r1, status="completed"),
        sent(type="tool.result", call_id=CALL, result='{"ok":true}'),
        got(1800000001.6, type="reply.started", reply_id=r2),
        got(1800000003.0, type="transcript.agent", reply_id=r2, text="Done."),
        got(1800000003.3, type="reply.done", reply_id=r2, status="completed"),
        sent(type="session.end"),
        got(1800000003.8, type="session.ended", session_duration_seconds=3.9),
    ]


def _results(tmp_path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    path = tmp_path / "app.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (f,) = analyze_path(str(path), lambda _line: None)
    return {r.id: r for r in f.results}


def test_an_untimed_tool_result_and_session_end_count_as_sent(tmp_path: Path) -> None:
    for marker in (True, False):
        res = _results(tmp_path, _lines(marker))
        tools, billing = res["session-tools"], res["session-billing"]
        assert tools.cause != "tool_result_missing", (marker, tools.summary)
        assert tools.status.value == "pass", (marker, tools.summary)
        assert "in time" not in tools.summary.replace("whether in time is not known", "")
        assert billing.cause != "no_session_end", (marker, billing.summary)
        assert billing.summary == "The app sent session.end"


def test_a_sent_time_the_reader_cannot_parse_still_counts_as_sent(tmp_path: Path) -> None:
    rows = []
    for r in _lines(True):
        t = r.pop("timestamp", None)
        rows.append(
            {
                "received_at": "Fri, 15 Jan 2027 08:00:00 GMT",
                "direction": r.pop("direction"),
                "event": {**r, **({"timestamp": t} if t else {})},
            }
        )
    res = _results(tmp_path, rows)
    assert res["session-billing"].cause != "no_session_end", res["session-billing"].summary
    assert res["session-tools"].cause != "tool_result_missing", res["session-tools"].summary
