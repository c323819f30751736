"""--report that cannot be written is a usage error before anything runs (exit 2), not a
failed-check exit 1 after the whole run; a writable one is not created up front."""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import cli_env, run_cli


@pytest.mark.skipif(not Path("/proc/version").is_file(), reason="needs Linux procfs")
def test_a_report_path_in_proc_is_refused_up_front() -> None:
    # The folder /proc looks writable to root, but no file can be created in it.
    proc = run_cli("check", "environment", "--report", "/proc/version", env=cli_env())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cannot write the report to /proc/version" in proc.stderr
    assert proc.stdout == ""  # nothing ran
    assert len(proc.stderr.strip().splitlines()) <= 3 and "Traceback" not in proc.stderr


def test_a_writable_report_is_written_and_nothing_is_left_beside_it(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    proc = run_cli("check", "environment", "--report", str(report), env=cli_env())
    assert proc.returncode in (0, 1), proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
