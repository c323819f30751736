"""Run the real CLI in a subprocess, as a user's shell would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

TESTS = Path(__file__).resolve().parent
SCHEMA = TESTS.parent / "doctor" / "report" / "schema.json"


def cli_env(extra: dict[str, str] | None = None, plugins: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSEMBLYAI_")}
    env.pop("NO_COLOR", None)
    if plugins:
        env["AGENT_DOCTOR_PLUGINS"] = "doctor_test_plugins"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    plugins: bool = False,
    timeout: float = 120,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "doctor", *args],
        capture_output=True,
        text=True,
        env=env or cli_env(plugins=plugins),
        timeout=timeout,
        **kwargs,
    )


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))


def assert_valid_report(report: dict[str, Any]) -> dict[str, Any]:
    """Every report a test sees must satisfy the shipped schema."""
    _validator().validate(report)
    return report
