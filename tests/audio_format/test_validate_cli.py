"""validate-audio and the audio-format check through the real CLI, in a subprocess."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from audio_format_signals import resample, speech_like, to_i16, wav_bytes
from clirun import assert_valid_report, cli_env, run_cli
from realparts import need_tool

PCM = to_i16(speech_like(3.0, seed=21)).tobytes()


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    x = speech_like(3.0, seed=21)
    out = {
        "ok": PCM,
        "f32": x.astype("<f4").tobytes(),
        "wav48": wav_bytes(np.repeat(to_i16(resample(x, 24000, 48000)), 2).tobytes(), 48000, 2),
        "b64": base64.b64encode(PCM),
        "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm" + PCM,
        "empty": b"",
    }
    paths = {}
    for name, data in out.items():
        p = tmp_path / f"{name}.bin"
        p.write_bytes(data)
        paths[name] = p
    return paths


def test_valid_raw_exits_0_and_says_valid(files: dict[str, Path]) -> None:
    r = run_cli("validate-audio", str(files["ok"]))
    assert r.returncode == 0, r.stderr
    assert "Verdict: valid" in r.stdout


def test_json_report_validates_against_the_schema(files: dict[str, Path], tmp_path: Path) -> None:
    report_path = tmp_path / "r.json"
    r = run_cli("validate-audio", str(files["wav48"]), "--json", "--report", str(report_path))
    assert r.returncode == 1
    report = assert_valid_report(json.loads(r.stdout))
    assert report == json.loads(report_path.read_text()) or report["command"] == "validate-audio"
    val = report["validation"]
    assert val["verdict"] == "invalid"
    assert {"container_wav", "sample_rate_mismatch", "stereo_interleaved"} <= {
        f["code"] for f in val["findings"]
    }
    wav = next(f for f in val["findings"] if f["code"] == "container_wav")
    assert wav["evidence"]["declared_rate_hz"] == 48000 and wav["fix"]["guide"]
    rate = next(f for f in val["findings"] if f["code"] == "sample_rate_mismatch")
    assert "2.00× too slow" in rate["message"], rate["message"]  # not "0.50× too fast"
    assert report["checks"][0]["id"] == "audio-format" and report["checks"][0]["status"] == "fail"


def test_human_output_lists_findings_fixes_and_verdict(files: dict[str, Path]) -> None:
    r = run_cli("validate-audio", str(files["f32"]), "--no-color")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert any(ln.strip().startswith("ERROR") and "float32_samples" in ln for ln in lines)
    assert any(ln.strip().startswith("Fix:") for ln in lines)
    assert lines[-1].startswith("Verdict: invalid")


def test_stdin_and_base64(files: dict[str, Path]) -> None:
    r = run_cli("validate-audio", "-", "--json", input=files["b64"].read_text())
    assert r.returncode == 0, r.stdout
    assert json.loads(r.stdout)["validation"]["detected"]["input_kind"] == "base64"


@pytest.mark.parametrize("which", ["missing", "folder", "unreadable"])
def test_bad_input_is_one_line_and_exit_2(
    files: dict[str, Path], tmp_path: Path, which: str
) -> None:
    path = {
        "missing": str(tmp_path / "nope.raw"),
        "folder": str(tmp_path),
    }.get(which)
    if which == "unreadable":
        p = tmp_path / "locked.raw"
        p.write_bytes(PCM)
        p.chmod(0)
        path = str(p)
    if which == "unreadable" and os.geteuid() == 0:
        # root ignores file modes unless it drops the DAC capabilities
        need_tool("setpriv")
        drop = "-dac_override,-dac_read_search"
        r = subprocess.run(
            [
                "setpriv",
                f"--inh-caps={drop}",
                f"--bounding-set={drop}",
                "--",
                sys.executable,
                "-m",
                "doctor",
                "validate-audio",
                str(path),
            ],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=120,
        )
    else:
        r = run_cli("validate-audio", str(path))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_empty_file_is_a_report_with_the_empty_finding(files: dict[str, Path]) -> None:
    """An empty but readable file is bad audio, not a bad command line: exit 1, not 2."""
    r = run_cli("validate-audio", str(files["empty"]), "--no-color")
    assert r.returncode == 1, r.stderr
    assert any("ERROR" in ln and "empty:" in ln for ln in r.stdout.splitlines())
    assert r.stdout.splitlines()[-1].startswith("Verdict: invalid")
    j = run_cli("validate-audio", str(files["empty"]), "--json")
    assert j.returncode == 1, j.stderr
    report = assert_valid_report(json.loads(j.stdout))
    assert report["validation"]["verdict"] == "invalid"
    assert [f["code"] for f in report["validation"]["findings"]] == ["empty"]
    assert report["checks"][0]["status"] == "fail" and report["checks"][0]["cause"] == "empty"


def test_empty_stdin_is_the_same_report() -> None:
    r = run_cli("validate-audio", "-", "--json", input="")
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["validation"]["findings"][0]["code"] == "empty"


def test_empty_input_points_to_the_empty_entry_not_the_microphone(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """No bytes is a capture/write problem: the audio_empty entry, never audio_level's
    microphone permission steps; in validate-audio, a one-message input and audio-format."""
    message = tmp_path / "message.json"
    message.write_text('{"type": "input.audio", "audio": ""}')
    for path in (files["empty"], message):
        j = run_cli("validate-audio", str(path), "--json")
        report = assert_valid_report(json.loads(j.stdout))
        findings = report["validation"]["findings"]
        assert [(f["code"], f["fix"]["guide"]) for f in findings] == [("empty", "audio_empty")]
        t = run_cli("validate-audio", str(path), "--no-color")
        assert "The audio is empty" in t.stdout and "macOS" not in t.stdout
    r = run_cli("check", "audio-format", "--audio", str(files["empty"]), "--json")
    check = assert_valid_report(json.loads(r.stdout))["checks"][0]
    assert (check["cause"], check["fix"]["guide"]) == ("empty", "audio_empty")


def test_fix_on_an_empty_file_says_it_is_empty(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "fixed.raw"
    r = run_cli("validate-audio", str(files["empty"]), "--fix", str(out))
    assert r.returncode == 1
    assert "refused" in r.stderr and "empty" in r.stderr and "uncertain" not in r.stderr
    assert not out.exists()


def test_fix_converts_and_the_result_is_valid(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "fixed.raw"
    r = run_cli("validate-audio", str(files["wav48"]), "--fix", str(out))
    assert r.returncode == 1  # the input was invalid; the fix is written anyway
    assert "resampled 48000 Hz to 24000 Hz" in r.stdout and "down-mixed 2 channels" in r.stdout
    assert out.stat().st_size == len(PCM)
    back = np.frombuffer(out.read_bytes(), "<i2").astype(float)
    ref = np.frombuffer(PCM, "<i2").astype(float)
    assert np.corrcoef(back[500:-500], ref[500:-500])[0, 1] > 0.99
    assert run_cli("validate-audio", str(out)).returncode == 0


def test_fix_refuses_compressed_input(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "fixed.raw"
    r = run_cli("validate-audio", str(files["webm"]), "--fix", str(out))
    assert r.returncode == 1 and "refused" in r.stderr and "WebM" in r.stderr
    assert "container_other" in r.stdout  # the report is still shown
    assert "(confidence 100%)" in r.stdout  # the magic bytes name the container for sure
    assert not out.exists()


def test_audio_format_check_skips_without_audio_and_runs_with_it(files: dict[str, Path]) -> None:
    r = run_cli("check", "audio-format", "--json")
    check = assert_valid_report(json.loads(r.stdout))["checks"][0]
    assert (check["status"], check["cause"]) == ("skip", "no_input")
    r = run_cli("check", "audio-format", "--audio", str(files["f32"]), "--json")
    assert r.returncode == 1
    check = assert_valid_report(json.loads(r.stdout))["checks"][0]
    assert (check["status"], check["cause"]) == ("fail", "float32_samples")
    assert check["fix"]["guide"] == "audio_encoding"


def test_validate_audio_stays_light() -> None:
    code = (
        "import sys; from doctor.cli import main\n"
        "sys.argv=['agent-doctor','validate-audio','--help']\n"
        "try:\n main()\nexcept SystemExit: pass\n"
        "heavy=[m for m in ('sounddevice','websockets','httpx','scipy','numpy') "
        "if m in sys.modules]\nprint('HEAVY', heavy)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in r.stdout, r.stdout + r.stderr
