"""Helpers for tests that need real system parts: skip locally, fail in CI (see conftest)."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest


def need_tool(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (CI installs it)")


def can_unshare_net() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


def need_unshare() -> None:
    if not can_unshare_net():
        pytest.skip("needs `unshare -n` (network namespaces)")


def is_root() -> bool:
    return os.geteuid() == 0


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """Stop a daemon a test started: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
