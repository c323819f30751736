"""Shared test configuration.

In CI (`AGENT_DOCTOR_REQUIRE_REAL_PARTS=1`, set by .ci/run) a skipped test is a failure:
CI installs every real part (PulseAudio, JACK, tinyproxy, nft, espeak-ng...), so a skip
there means a missing install step, not a missing machine feature.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

REQUIRE_ENV = "AGENT_DOCTOR_REQUIRE_REAL_PARTS"

# Fixture modules shared across areas (sandbox server, private PulseAudio...).
pytest_plugins: list[str] = ["pulse_fixture", "doctor.sandbox.pytest_plugin"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[Any, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get(REQUIRE_ENV) == "1" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped, but {REQUIRE_ENV}=1 requires every real part: {report.longrepr}"
        )
