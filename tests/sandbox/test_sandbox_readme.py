"""The README's lists of sandbox faults and switches are what users read: they must match
the sandbox command."""

from __future__ import annotations

import re
from pathlib import Path

from doctor.cli import all_command
from doctor.sandbox.cli import sandbox
from doctor.sandbox.config import FAULTS, SWITCHES

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = README.read_text(encoding="utf-8").split("## The sandbox", 1)[1].split("\n## ", 1)[0]
# Options that are not behaviour switches: where to listen, what to log, keys, limits.
PLUMBING = {
    "--host", "--port", "--tls", "--api-key", "--forbidden-key", "--grace", "--fault",
    "--events", "--max-session", "--reply-seconds", "--quiet", "--help",
}  # fmt: skip
# Options of `agent-doctor all` that the section's example runs against the sandbox.
EXAMPLE_OPTIONS = {"--ws-url", "--token-url", "--ca-bundle", "--api-key", "--skip"}


def command_options(command: object) -> set[str]:
    """Every `--name` a click command takes, `--no-...` forms included."""
    return {
        opt
        for param in command.params  # type: ignore[attr-defined]
        for opt in (*param.opts, *param.secondary_opts)
        if opt.startswith("--")
    } | {"--help"}


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


def test_every_option_the_readme_names_exists() -> None:
    """A switch removed from the command but left in the README fails here: every
    `--option` in the section (prose and examples) is the sandbox's, or one of the few
    options of `agent-doctor all` its example uses (and those exist too)."""
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", SECTION))
    unknown = named - command_options(sandbox) - EXAMPLE_OPTIONS
    assert not unknown, sorted(unknown)
    assert command_options(all_command) >= EXAMPLE_OPTIONS
    assert named >= EXAMPLE_OPTIONS  # the allow-list stays small and used
