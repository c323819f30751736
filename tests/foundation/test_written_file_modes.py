"""`--report` and `validate-audio --fix` files get the mode a plain `open(path, "w")` would
give (0666 less the umask: 0644 under 022), and a file they replace keeps its own mode:
the temporary file renamed over the target came from mkstemp, so every output was 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from clirun import cli_env, run_cli
from test_report_file_kinds import _tone_48k_wav

from doctor.files.beside import create_beside


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_new_report_gets_the_umasks_mode(tmp_path: Path, umask: int, mode: int) -> None:
    report = tmp_path / "report.json"
    proc = run_cli("check", "environment", "--report", str(report), env=cli_env(), umask=umask)
    assert proc.returncode == 0, proc.stderr
    assert _mode(report) == mode


def test_a_replaced_report_keeps_its_mode(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text("old")
    report.chmod(0o640)
    proc = run_cli("check", "environment", "--report", str(report), env=cli_env(), umask=0o022)
    assert proc.returncode == 0, proc.stderr
    assert _mode(report) == 0o640 and report.read_text() != "old"


def test_a_fix_output_gets_the_umasks_mode(tmp_path: Path) -> None:
    wav = tmp_path / "tone48k.wav"
    wav.write_bytes(_tone_48k_wav())
    fixed = tmp_path / "fixed.raw"
    proc = run_cli("validate-audio", str(wav), "--fix", str(fixed), env=cli_env(), umask=0o022)
    assert fixed.stat().st_size == 48000, proc.stderr
    assert _mode(fixed) == 0o644


def test_create_beside_makes_a_fresh_file_next_to_the_target(tmp_path: Path) -> None:
    old = os.umask(0o027)  # this test's own process: no other thread reads the umask here
    try:
        fd, name = create_beside(str(tmp_path / "out.json"))
    finally:
        os.umask(old)
    os.close(fd)
    made = Path(name)
    assert made.parent == tmp_path and made.name.startswith(".agent-doctor-")
    assert _mode(made) == 0o640 and made.stat().st_size == 0
