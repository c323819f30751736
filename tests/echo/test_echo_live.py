"""The live `echo` check through a private PulseAudio: real PortAudio streams, real loops.

`--skip microphone`: a null sink's monitor is digital silence until something plays, which
the microphone check rightly fails; here the echo check is under test.
"""

from __future__ import annotations

import json
import subprocess
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clirun import assert_valid_report
from pulse_fixture import PulseServer, private_pulse, run_cli

pytestmark = pytest.mark.real_parts

LOOP_VOLUME = 0.30  # pactl volume is cubic: 30% is 20*log10(0.3**3) = -31.4 dB
LOOP_ERL_DB = 20 * np.log10(LOOP_VOLUME**3)


@pytest.fixture(scope="module")
def pulse() -> Iterator[PulseServer]:
    with private_pulse() as server:
        yield server


def run_echo(server: PulseServer, **env: str) -> dict[str, Any]:
    r = run_cli(
        ["check", "echo", "--skip", "microphone", "--json"], server.client_env(**env), timeout=90
    )
    assert r.returncode in (0, 1), r.stderr[-2000:]
    report = assert_valid_report(json.loads(r.stdout))
    (check,) = [c for c in report["checks"] if c["id"] == "echo"]
    assert "test sound" in r.stderr  # the user was told before it played
    return check  # type: ignore[no-any-return]


def test_full_loop_is_detected(pulse: PulseServer) -> None:
    check = run_echo(pulse)  # default source: probe_mic, the monitor of the played sink
    assert check["status"] == "fail" and check["cause"] == "echo_detected", check["summary"]
    ev = check["evidence"]
    assert abs(ev["delay_ms"]) <= 5  # nothing but the sound server between them
    assert abs(ev["erl_db"]) <= 1
    assert ev["sweeps_disagree"] is False
    assert ev["output_status_flags"] <= 2
    assert check["fix"]["guide"] == "echo_loop"


def test_delayed_attenuated_loop(pulse: PulseServer) -> None:
    modules = [
        pulse.load_module("module-null-sink", "sink_name=room", "rate=48000", "channels=1"),
        pulse.load_module(
            "module-loopback", "source=probe.monitor", "sink=room", "latency_msec=250"
        ),
    ]
    try:
        pulse.pactl("set-sink-volume", "room", f"{int(LOOP_VOLUME * 100)}%")
        check = run_echo(pulse, PULSE_SOURCE="room.monitor")
    finally:
        for m in reversed(modules):
            pulse.unload_module(m)
    assert check["cause"] == "echo_detected", check["summary"]
    ev = check["evidence"]
    # module-loopback steers its latency towards 250 ms adaptively; measured 217-248 ms here
    assert 200 <= ev["delay_ms"] <= 320
    d1, d2 = ev["sweep_delays_ms"]
    assert abs(d1 - d2) <= 1.0  # both sweeps see the same path
    assert abs(ev["erl_db"] - LOOP_ERL_DB) <= 2.0
    assert ev["erl_label"] == "audible"


def _noise_wav(path: Path, seconds: float = 60.0) -> Path:
    rng = np.random.default_rng(7)
    x = np.asarray(rng.standard_normal(int(seconds * 48000)) * 0.03 * 32767, dtype="<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(x.tobytes())
    return path


def test_unrelated_noise_passes(pulse: PulseServer, tmp_path: Path) -> None:
    module = pulse.load_module("module-null-sink", "sink_name=street", "rate=48000", "channels=1")
    player = subprocess.Popen(
        ["paplay", "--device=street", str(_noise_wav(tmp_path / "n.wav"))],
        env=pulse.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15  # poll the daemon until the noise is flowing
        while pulse.sink_state("street") != "RUNNING":
            assert time.monotonic() < deadline and player.poll() is None, "paplay did not start"
            time.sleep(0.05)
        check = run_echo(pulse, PULSE_SOURCE="street.monitor")
    finally:
        player.terminate()
        player.wait(5)
        pulse.unload_module(module)
    assert check["status"] == "pass", check["summary"]
    ev = check["evidence"]
    assert ev["verdict"] == "no_echo" and ev["score_s"] < 1.75
    assert ev["floor_erl_db"] < -20
    assert ev["noise_level_dbfs"] > -40  # it did hear the noise


def test_silent_mic_is_no_capture(pulse: PulseServer) -> None:
    module = pulse.load_module(
        "module-null-source", "source_name=silentmic", "rate=48000", "channels=1"
    )
    try:
        check = run_echo(pulse, PULSE_SOURCE="silentmic")
    finally:
        pulse.unload_module(module)
    assert check["status"] == "fail" and check["cause"] == "no_capture", check["summary"]
    assert check["fix"]["guide"] == "mic_permission"
