"""A log read from a pipe (`cat log | analyze /dev/stdin`, `analyze -`) is read once and
whole: sniffing its head and reopening it lost the first 8 KiB."""

from __future__ import annotations

import base64
import json

from clirun import run_cli

SID = "sess_" + "4" * 32


def _log() -> str:
    rows = [{"type": "session.ready", "timestamp": 1800000000.0, "session_id": SID, "config": {}}]
    chunk = base64.b64encode(bytes(2400)).decode()
    rows += [
        {
            "direction": "sent",
            "type": "input.audio",
            "audio": chunk,
            "timestamp": 1800000000 + i * 0.05,
        }
        for i in range(20)
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    assert len(text) > 3 * 8192  # the session id is only in the first 8 KiB
    return text


def test_a_piped_jsonl_keeps_its_first_lines() -> None:
    for arg in ("/dev/stdin", "-"):
        p = run_cli("analyze", arg, input=_log())
        assert SID in p.stdout, (arg, p.stdout, p.stderr)
        assert "Traceback" not in p.stderr


def test_a_piped_json_array_is_read_as_an_array() -> None:
    rows = [json.loads(line) for line in _log().splitlines()]
    p = run_cli("analyze", "/dev/stdin", input=json.dumps(rows, indent=1))
    assert p.returncode != 2, p.stderr
    assert "JSON array" in p.stderr and SID in p.stdout, (p.stdout, p.stderr)


def test_a_closed_stdin_is_one_line_not_a_crash() -> None:
    """`analyze - <&-` raised AttributeError on sys.stdin being None (a reviewer's repro)."""
    import subprocess
    import sys

    from clirun import cli_env

    p = subprocess.run(
        [sys.executable, "-m", "doctor", "analyze", "-"],
        capture_output=True, text=True, env=cli_env(), timeout=60,
        preexec_fn=lambda: __import__("os").close(0),
    )  # fmt: skip
    assert p.returncode == 2, p.stderr
    assert "stdin: it is closed" in p.stderr and "internal error" not in p.stderr
