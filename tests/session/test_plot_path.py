"""--plot to a path that cannot take a drawing: one line, exit 2, before any analysis
(review r15 #9)."""

from __future__ import annotations

import json
from pathlib import Path

import artifacts as A
import pytest
from clirun import run_cli


@pytest.mark.parametrize(
    ("name", "expect"),
    [("missing/dir/x.png", "is not a writable folder"), ("x.txt", "name the file .png")],
)
def test_bad_plot_path_is_a_usage_error(tmp_path: Path, name: str, expect: str) -> None:
    tl = tmp_path / "timeline.json"
    tl.write_text(json.dumps(A.normal_timeline()))
    p = run_cli("analyze", str(tl), "--plot", str(tmp_path / name))
    assert p.returncode == 2, p.stderr
    assert expect in p.stderr
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr.lower()
    assert not (tmp_path / name).exists()
