"""`agent-doctor analyze` as a user runs it, on each kind of input."""

from __future__ import annotations

import json
from pathlib import Path

import artifacts as A
from clirun import assert_valid_report, cli_env, run_cli
from test_readers import go_array, write_capture


def analyze(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    p = run_cli("analyze", *args, env=env)
    return p.returncode, p.stdout, p.stderr


def folder(tmp_path: Path, echo_db: float | None = None) -> Path:
    spans = [(0.6, 2.3), (7.5, 10.2), (13.6, 15.1), (18.2, 20.3)]
    audio = A.recording(26.8, spans, [(3.8, 5.5)], echo_db=echo_db)
    return A.write_folder(tmp_path / "artifacts", A.normal_timeline(), audio)


def test_artifacts_folder_json_report_and_plot(tmp_path: Path) -> None:
    d = folder(tmp_path, echo_db=-15)
    report_path, png = tmp_path / "r.json", tmp_path / "t.png"
    code, out, err = analyze(str(d), "--json", "--report", str(report_path), "--plot", str(png))
    assert code == 0, err  # an echo warning does not fail the run
    report = assert_valid_report(json.loads(out))
    assert report == json.loads(report_path.read_text())
    assert report["command"] == "analyze"
    assert report["sessions"][0]["session_id"] == A.SID
    assert report["sessions"][0]["started_at"] == "2027-01-15T08:00:00.000Z"
    echo = next(c for c in report["checks"] if c["id"] == "session-echo")
    assert echo["cause"] == "echo_loop" and echo["evidence"]["session_id"] == A.SID
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "timeline drawn to" in err
    assert "Traceback" not in err


def test_human_report_names_shape_and_sessions(tmp_path: Path) -> None:
    code, out, err = analyze(str(go_array(tmp_path / "app.json")))
    assert code == 0
    assert out.startswith("session sess_aaaa")
    assert "[JSON array of events (event under 'event'" in out
    assert "session-log" in out and "lacks: close code and reason" in out
    assert "JSON array of events" in err


def test_several_inputs_and_bad_ones(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 10)
    cap = write_capture(tmp_path / "c.jsonl")
    code, out, err = analyze(str(junk), str(cap), str(go_array(tmp_path / "a.json")), "--json")
    report = assert_valid_report(json.loads(out))
    assert len(report["sessions"]) == 2
    assert f"{junk}: binary data, not a session log" in report["input_notes"]
    summaries = [c["summary"] for c in report["checks"]]
    assert all(s.startswith("[sess_") for s in summaries)
    assert err.count("agent-doctor: ") >= 3 and "Traceback" not in err
    assert code == 0


def test_nothing_analysable_exits_2_with_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\xff" * 1000)
    code, out, err = analyze(str(junk))
    assert code == 2
    assert out == ""
    assert "no session found" in err and "Traceback" not in err


def test_failing_session_exits_1(tmp_path: Path) -> None:
    p = tmp_path / "log.jsonl"
    lines = [
        {"type": "session.ready", "session_id": "sess_x", "timestamp": 1.8e9},
        {
            "type": "session.error",
            "code": "invalid_audio",
            "message": "Invalid audio data",
            "timestamp": 1.8e9 + 1,
        },
    ]
    p.write_text("\n".join(json.dumps(x) for x in lines))
    code, out, _ = analyze(str(p))
    assert code == 1
    assert "invalid_audio" in out and "Fix:" in out


def test_plot_without_matplotlib_is_one_line(tmp_path: Path) -> None:
    """matplotlib is installed here; a stub package that fails to import stands in for a
    machine without it (the only thing mocked)."""
    stub = tmp_path / "stub" / "matplotlib"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    env = cli_env({"PYTHONPATH": str(tmp_path / "stub")})
    code, _out, err = analyze(
        str(go_array(tmp_path / "a.json")), "--plot", str(tmp_path / "t.png"), env=env
    )
    assert code == 0
    assert "--plot needs matplotlib: pip install 'agent-doctor[plot]'" in err
    assert not (tmp_path / "t.png").exists()
    assert "Traceback" not in err


def test_a_log_and_the_artifacts_of_the_same_session_share_the_recording(
    tmp_path: Path,
) -> None:
    d = folder(tmp_path, echo_db=-15)
    log = tmp_path / "app.jsonl"
    lines = [
        {"type": "session.ready", "session_id": A.SID, "timestamp": 1.8e9},
        {"type": "session.ended", "session_duration_seconds": 20.0, "timestamp": 1.8e9 + 20},
    ]
    log.write_text("\n".join(json.dumps(x) for x in lines))
    code, out, err = analyze(str(d), str(log), "--json")
    assert code == 0, err
    report = assert_valid_report(json.loads(out))
    echoes = [c for c in report["checks"] if c["id"] == "session-echo"]
    assert len(echoes) == 2
    assert all(c["cause"] == "echo_loop" for c in echoes), err
    assert echoes[1]["evidence"]["recording_from"] == str(d)
