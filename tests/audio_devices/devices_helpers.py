"""Helpers shared by the audio device tests: run a check through the real CLI, read its JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from clirun import assert_valid_report
from pulse_fixture import run_cli


def report_of(args: list[str], env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Run `agent-doctor ARGS --json`; the exit code and the (schema-valid) report."""
    proc = run_cli([*args, "--json"], env)
    assert proc.stdout.strip(), f"no JSON on stdout; stderr: {proc.stderr[-2000:]}"
    return proc.returncode, assert_valid_report(json.loads(proc.stdout))


def check_of(report: dict[str, Any], check_id: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["id"] == check_id)


def broken_portaudio_env(base: dict[str, str], folder: Path) -> dict[str, str]:
    """The real loader finds a zero-byte `libportaudio.so.2` first ("file too short")."""
    (folder / "libportaudio.so.2").write_bytes(b"")
    paths = [str(folder), base.get("LD_LIBRARY_PATH", "")]
    return {**base, "LD_LIBRARY_PATH": os.pathsep.join(p for p in paths if p)}


def refusing_pcm_env(base: dict[str, str], home: Path) -> dict[str, str]:
    """An ALSA PCM `badmic` on the pulse plugin pointing at a source that does not exist:
    listed by PortAudio, refused on open (recipes §1.6)."""
    (home / ".asoundrc").write_text('pcm.badmic { type pulse device "no_such_source" }\n')
    return {**base, "HOME": str(home)}
