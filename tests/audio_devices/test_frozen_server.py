"""A sound server that is already frozen: named within seconds, not a 60 s hang.

A real private PulseAudio stopped with SIGSTOP (resumed after): its socket still accepts
connections but nothing answers, which made `import sounddevice` wait about 60 s (`devices`
then said "no sound server reachable"; `check microphone` timed out in `environment`).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator

import pytest
from clirun import assert_valid_report
from pulse_fixture import PulseServer, private_pulse, run_cli

pytestmark = pytest.mark.real_parts

# the probe waits 8 s; start-up on a loaded machine takes a few more. Before: 62 s.
WITHIN_S = 45


@pytest.fixture
def frozen() -> Iterator[PulseServer]:
    with private_pulse() as server:
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            yield server
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)


def test_devices_names_the_frozen_server(frozen: PulseServer) -> None:
    r = run_cli(["devices", "--json"], frozen.mic_env(), timeout=WITHIN_S)
    assert r.returncode == 1, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    (problem,) = doc["problems"]
    assert problem["cause"] == "server_unresponsive", problem
    assert problem["fix"]["guide"] == "sound_server_unresponsive"
    assert "does not answer" in problem["message"]


def test_checks_name_the_frozen_server_with_its_fix(frozen: PulseServer) -> None:
    r = run_cli(
        ["check", "microphone", "sample-rate", "--json"], frozen.mic_env(), timeout=WITHIN_S
    )
    assert r.returncode == 1, r.stderr[-2000:]
    report = assert_valid_report(json.loads(r.stdout))
    env = next(c for c in report["checks"] if c["id"] == "environment")
    assert (env["status"], env["cause"]) == ("fail", "sound_server_unresponsive"), env
    assert "pactl info" in env["fix"]["commands"]
    assert any("restart" in step for step in env["fix"]["steps"])
