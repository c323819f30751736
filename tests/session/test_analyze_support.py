"""`analyze --json`: the report's region is the one the log connected to and `support`
lists the log's sessions (what users attach to support mail); the schema still holds."""

from __future__ import annotations

import json
from pathlib import Path

from clirun import assert_valid_report, run_cli
from test_reconnect_open import _session

SID1, SID2 = "sess_" + "1" * 32, "sess_" + "2" * 32


def _report(tmp_path: Path, *extra: str) -> dict:
    rows = _session(1800000000.0, SID1, True) + _session(1800000010.0, SID2, False)
    rows.append(
        {"direction": "received", "type": "session.ready", "session_id": "sess_" + "3" * 32}
    )
    path = tmp_path / "eu.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = run_cli("analyze", str(path), "--json", *extra)
    assert p.returncode in (0, 1), p.stderr
    return assert_valid_report(json.loads(p.stdout))


def test_support_and_region_come_from_the_log(tmp_path: Path) -> None:
    report = _report(tmp_path)
    assert report["target"]["region"] == "eu"
    assert report["target"]["ws_url"] == "wss://agents.eu.assemblyai.com/v1/ws"
    support = report["support"]
    assert support is not None and support["region"] == "eu"
    assert support["session_ids"][:2] == [SID1, SID2]
    assert "sess_" + "3" * 32 in support["session_ids"]  # untimed: listed all the same
    assert support["first_session_at"] == "2027-01-15T08:00:00Z"
    assert [c["code"] for c in support["closes"]] == [1000]
