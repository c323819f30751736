"""The README's list of sandbox faults is what users read: it must match the sandbox."""

from __future__ import annotations

import re
from pathlib import Path

from doctor.sandbox.config import FAULTS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_exactly_the_sandbox_faults() -> None:
    text = README.read_text(encoding="utf-8")
    paragraph = text.split("injects what users meet in the field:", 1)[1].split("Where ", 1)[0]
    listed = re.findall(r"`([a-z-]+)(?:=N)?`", paragraph)
    assert sorted(listed) == sorted(FAULTS)
