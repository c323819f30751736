"""A sound server that freezes while `echo` plays: the CLI reports and exits, and Ctrl-C works.

A real private PulseAudio is stopped with SIGSTOP once the probe plays into its sink (its
stream appears among the sink inputs), and resumed after. Before the fix the worker thread hung in
`Stream.stop()`, and the process hung after its report in sounddevice's atexit
`Pa_Terminate`, deaf to SIGINT.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from clirun import assert_valid_report
from pulse_fixture import VOICE, PulseServer, _wait_until, private_pulse

pytestmark = pytest.mark.real_parts

# Playback timeout (7 s probe + 5 s) + one stream close (10 s) + exit (3 s) + start-up,
# with a wide margin for a loaded machine; a hang never ends.
EXIT_WITHIN_S = 90


@pytest.fixture
def frozen_mid_echo() -> Iterator[tuple[PulseServer, subprocess.Popen[str]]]:
    with private_pulse() as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "doctor", "check", "echo", "--skip", "microphone", "--json"],
            env=server.mic_env(PULSE_SINK=VOICE),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_until(lambda: _playing(server), 60, "echo playback", proc)
            os.kill(server.proc.pid, signal.SIGSTOP)
            yield server, proc
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def _playing(server: PulseServer) -> bool:
    """The probe's output stream exists on the server (recording alone runs the sink too)."""
    return bool(server.pactl("list", "short", "sink-inputs"))


def _finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"agent-doctor still running {EXIT_WITHIN_S} s after the server froze")


def test_frozen_server_mid_echo_reports_and_exits(
    frozen_mid_echo: tuple[PulseServer, subprocess.Popen[str]],
) -> None:
    _, proc = frozen_mid_echo
    out, err = _finish(proc)
    assert proc.returncode == 1, err[-2000:]
    report: dict[str, Any] = assert_valid_report(json.loads(out))
    (echo,) = [c for c in report["checks"] if c["id"] == "echo"]
    assert echo["cause"] == "sound_server_unresponsive", echo
    assert echo["fix"]["guide"] == "sound_server_unresponsive"
    assert "pactl info" in echo["fix"]["commands"]


def test_ctrl_c_while_the_server_is_frozen_exits_130(
    frozen_mid_echo: tuple[PulseServer, subprocess.Popen[str]],
) -> None:
    _, proc = frozen_mid_echo
    proc.send_signal(signal.SIGINT)
    _, err = _finish(proc)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err
