"""The README's lists of sandbox faults and switches are what users read: they must match
the sandbox command."""

from __future__ import annotations

import re
from pathlib import Path

from doctor.sandbox.cli import sandbox
from doctor.sandbox.config import FAULTS, SWITCHES

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = README.read_text(encoding="utf-8").split("## The sandbox", 1)[1].split("\n## ", 1)[0]
# Options that are not behaviour switches: where to listen, what to log, keys, limits.
PLUMBING = {
    "--host", "--port", "--tls", "--api-key", "--forbidden-key", "--grace", "--fault",
    "--events", "--max-session", "--reply-seconds", "--quiet", "--help",
}  # fmt: skip


def test_readme_lists_exactly_the_sandbox_faults() -> None:
    flat = " ".join(SECTION.split())
    paragraph = flat.split("injects what users meet in the field:", 1)[1].split("In tests", 1)[0]
    listed = re.findall(r"`([a-z-]+)(?:=N)?`", paragraph)
    assert sorted(listed) == sorted(FAULTS)


def test_readme_names_every_switch_of_the_command() -> None:
    options = {
        opt for param in sandbox.params for opt in param.opts if opt.startswith("--")
    } - PLUMBING
    named = set(re.findall(r"`(--[a-z-]+)", SECTION))
    assert options <= named, sorted(options - named)
    assert {"--" + name.replace("_", "-") for name in SWITCHES} <= options
