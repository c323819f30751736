"""The private PulseAudio the device tests share: no real-time threads that a loaded machine's
RLIMIT_RTTIME could kill, and a death that costs one test, not every later one (ci22: the
shared daemon died after the first microphone test and seven tests failed behind it)."""

from __future__ import annotations

import signal
import subprocess

import pytest
from pulse_fixture import PulseServer, _SharedPulse, private_pulse


def test_the_daemon_runs_no_real_time_thread() -> None:
    with private_pulse() as server:
        out = subprocess.run(
            ["ps", "-L", "-o", "cls=", "-p", str(server.proc.pid)],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.split()
    assert out and set(out) == {"TS"}, out


def test_a_dead_shared_daemon_is_named_and_replaced(_shared_pulse: _SharedPulse) -> None:
    first: PulseServer = _shared_pulse.alive()
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    with pytest.warns(UserWarning, match=r"shared PulseAudio exited \(-9\), started again"):
        second = _shared_pulse.alive()
    assert second.proc.pid != first.proc.pid
    assert "probe" in second.pactl("list", "short", "sinks")
    assert _shared_pulse.alive() is second
