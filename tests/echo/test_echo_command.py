"""`agent-doctor echo --played --recorded` as a user runs it (real subprocess, real files)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from clirun import assert_valid_report, run_cli
from echo_cases import corpus


def write_raw(path: Path, x: np.ndarray) -> Path:
    np.asarray(np.clip(np.round(x * 32768), -32768, 32767), dtype="<i2").tofile(path)
    return path


def write_wav(path: Path, x: np.ndarray, rate: int = corpus.RATE_HZ) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(
            np.asarray(np.clip(np.round(x * 32768), -32768, 32767), dtype="<i2").tobytes()
        )
    return path


@pytest.fixture(scope="module")
def echo_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("echo")
    case = corpus.make_case(
        "cli", corpus.speech_like(6, seed=31), seed=32, erl_db=-25, delay_ms=210, nrl_db=-60
    )
    return write_raw(d / "played.raw", case.played), write_wav(d / "recorded.wav", case.recorded)


def test_echo_files_fail_with_delay_and_fix(echo_files: tuple[Path, Path]) -> None:
    played, recorded = echo_files
    r = run_cli("echo", "--played", str(played), "--recorded", str(recorded), "--json")
    assert r.returncode == 1, r.stderr
    report = assert_valid_report(json.loads(r.stdout))
    (check,) = report["checks"]
    assert check["id"] == "echo" and check["status"] == "fail"
    assert check["cause"] == "echo_detected"
    ev = check["evidence"]
    assert abs(ev["delay_ms"] - 210) <= 2
    assert abs(ev["erl_db"] - -25) <= 3
    assert ev["played_file"] == "played.raw" and ev["recorded_rate_hz"] == 24000
    assert check["fix"]["guide"] == "echo_loop"
    assert any("210 ms" in step for step in check["fix"]["steps"])


def test_human_report_and_report_file(echo_files: tuple[Path, Path], tmp_path: Path) -> None:
    played, recorded = echo_files
    out = tmp_path / "r.json"
    r = run_cli("echo", "--played", str(played), "--recorded", str(recorded), "--report", str(out))
    assert r.returncode == 1
    assert "echo found 210 ms after playback" in r.stdout
    assert "headphones" in r.stdout.lower()
    assert_valid_report(json.loads(out.read_text()))


def test_no_echo_passes_with_floor(tmp_path: Path) -> None:
    case = corpus.make_case(
        "quiet", corpus.speech_like(6, seed=33), seed=34, echo=False, nrl_db=-50
    )
    played = write_raw(tmp_path / "p.raw", case.played)
    recorded = write_raw(tmp_path / "r.raw", case.recorded)
    r = run_cli("echo", "--played", str(played), "--recorded", str(recorded), "--json")
    assert r.returncode == 0, r.stderr
    (check,) = assert_valid_report(json.loads(r.stdout))["checks"]
    assert check["status"] == "pass" and check["cause"] is None
    assert check["evidence"]["floor_erl_db"] < -60
    assert "would have been found" in check["summary"]


def test_silent_recording_is_no_capture(tmp_path: Path) -> None:
    played = write_raw(tmp_path / "p.raw", corpus.speech_like(3, seed=35))
    recorded = write_raw(tmp_path / "r.raw", np.zeros(3 * corpus.RATE_HZ))
    r = run_cli("echo", "--played", str(played), "--recorded", str(recorded), "--json")
    assert r.returncode == 1
    (check,) = assert_valid_report(json.loads(r.stdout))["checks"]
    assert check["cause"] == "no_capture"
    assert "microphone" in " ".join(check["fix"]["steps"])


def test_search_window_finds_an_offset_recording(tmp_path: Path) -> None:
    case = corpus.make_case(
        "off", corpus.speech_like(6, seed=36), seed=37, erl_db=-20, delay_ms=100, nrl_db=-60
    )
    rec = np.concatenate([np.zeros(int(2.0 * corpus.RATE_HZ)), case.recorded])
    played = write_raw(tmp_path / "p.raw", case.played)
    recorded = write_raw(tmp_path / "r.raw", rec)
    r = run_cli(
        "echo",
        "--played",
        str(played),
        "--recorded",
        str(recorded),
        "--json",
        "--search-window",
        "4",
    )
    (check,) = json.loads(r.stdout)["checks"]
    assert check["cause"] == "echo_detected"
    assert abs(check["evidence"]["delay_ms"] - 2100) <= 2
    assert check["evidence"]["lag_window_s"] == [-4.0, 4.0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--played", "/nonexistent/p.raw", "--recorded", "{r}"], "--played"),
        (["--played", "{p}", "--recorded", "{text}"], "--recorded"),
        (["--played", "{p}", "--recorded", "{r}", "--search-window", "-1"], "--search-window"),
        (["--played", "{p}"], "--recorded"),
        (["--played", "{p}", "--recorded", "{r}", "--plot", "/nonexistent/dir/x.png"], "plot"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    echo_files: tuple[Path, Path], tmp_path: Path, args: list[str], needle: str
) -> None:
    played, recorded = echo_files
    text = tmp_path / "notes.txt"
    text.write_bytes(b"OggS" + b"\0" * 200)
    filled = [a.format(p=played, r=recorded, text=text) for a in args]
    r = run_cli("echo", *filled)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None, reason="the plot extra is not installed"
)
def test_plot_is_a_png(echo_files: tuple[Path, Path], tmp_path: Path) -> None:
    played, recorded = echo_files
    png = tmp_path / "echo.png"
    r = run_cli("echo", "--played", str(played), "--recorded", str(recorded), "--plot", str(png))
    assert r.returncode == 1, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000


def test_missing_matplotlib_is_a_clear_message(
    echo_files: tuple[Path, Path], tmp_path: Path
) -> None:
    """matplotlib hidden from the subprocess (it may be installed here)."""
    played, recorded = echo_files
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None  # import matplotlib now raises ImportError\n"
        "from doctor.cli import main\n"
        f"main(['echo', '--played', {str(played)!r}, '--recorded', {str(recorded)!r},"
        f" '--plot', {str(tmp_path / 'x.png')!r}])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "matplotlib" in r.stderr and "agent-doctor[plot]" in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_echo_help_is_light() -> None:
    code = (
        "import sys\nfrom doctor.cli import main\n"
        "try:\n    main(['echo', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'scipy', 'sounddevice', 'matplotlib')"
        " if m in sys.modules]\nprint('HEAVY', heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "--played" in r.stdout
    assert "HEAVY []" in r.stdout
