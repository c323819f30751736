"""A loopback input through a private PulseAudio: named as one, and measured as the loop it is.

The fixture's default source is a remap of the default sink's monitor, with nothing else
playing: the microphone check hears digital silence, and the echo check must still run (an
input that opens is all it needs) and find the loop. A delayed, attenuated software loop
mixed with room noise, recorded from a source whose name says nothing, must read as an
ordinary echo, not as a loopback.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clirun import assert_valid_report
from pulse_fixture import STARTUP_S, PulseServer, private_pulse, run_cli
from realparts import need_tool

pytestmark = pytest.mark.real_parts
NOISE = 0.01  # room noise at -40 dBFS RMS, about the level of the echo


@pytest.fixture(scope="module")
def pulse() -> Iterator[PulseServer]:
    with private_pulse() as server:
        yield server


def run_checks(args: list[str], env: dict[str, str]) -> dict[str, dict[str, Any]]:
    r = run_cli([*args, "--json"], env, timeout=90)
    assert r.returncode in (0, 1), r.stderr[-2000:]
    report = assert_valid_report(json.loads(r.stdout))
    return {c["id"]: c for c in report["checks"]}


def test_monitor_as_default_source_is_a_loopback_and_echo_still_runs(pulse: PulseServer) -> None:
    checks = run_checks(["check", "echo"], pulse.client_env())
    mic = checks["microphone"]
    assert (mic["status"], mic["cause"]) == ("fail", "loopback_input"), mic["summary"]
    assert mic["evidence"]["zero_fraction"] == 1.0  # digital silence at rest
    assert mic["evidence"]["input_monitor_of"] == "Probe"
    assert "'ProbeMic' records 'Probe'" in mic["summary"]
    assert mic["fix"]["guide"] == "loopback_input"

    echo = checks["echo"]
    assert (echo["status"], echo["cause"]) == ("fail", "echo_detected"), echo["summary"]
    ev = echo["evidence"]
    assert abs(ev["delay_ms"]) <= 10 and abs(ev["erl_db"]) <= 1
    assert ev["loopback_input"] is True and ev["loopback_by_behaviour"] is True
    assert (
        "is a loopback of the output" in echo["summary"] and "ms after playback" in echo["summary"]
    )
    assert echo["fix"]["guide"] == "loopback_input"
    assert any("real microphone" in s for s in echo["fix"]["steps"])


def _noise_wav(path: Path, level: float, seconds: float = 60.0) -> Path:
    rng = np.random.default_rng(11)
    x = np.asarray(rng.standard_normal(int(seconds * 48000)) * level * 32767, dtype="<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(x.tobytes())
    return path


def _wait_for_sink_input(server: PulseServer, needle: str) -> str:
    """Index of the first sink input whose full description mentions `needle` (polled:
    the daemon shows it once the stream runs)."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        for block in server.pactl("list", "sink-inputs").split("Sink Input #")[1:]:
            if needle in block:
                return block.split("\n", 1)[0].strip()
        time.sleep(0.05)
    raise AssertionError(f"no sink input {needle!r}")


def test_attenuated_delayed_loop_in_a_noisy_room_is_an_ordinary_echo(
    pulse: PulseServer, tmp_path: Path
) -> None:
    """The topology of test_echo_live's delayed loop (one stereo null sink, so one clock):
    the check plays into its left channel, a module-loopback copies that into the right one
    120 ms later at -18 dB, room noise plays into the right one too, and the check records
    the right channel through a source whose properties say "sound card", as a USB
    microphone's would (the server cannot tell the two apart)."""
    need_tool("paplay")
    modules = [
        pulse.load_module(
            "module-null-sink",
            "sink_name=meter",
            "rate=48000",
            "channels=2",
            "channel_map=front-left,front-right",
        ),
    ]
    for kind, name, master, side, props in (
        ("sink", "direct", "meter", "front-left", ""),
        ("sink", "delayed", "meter", "front-right", ""),
        ("source", "played", "meter.monitor", "front-left", ""),
        (
            "source",
            "usbmic",
            "meter.monitor",
            "front-right",
            "source_properties='device.description=USBMic device.class=sound "
            "device.master_device=usb-card'",
        ),
    ):
        modules.append(
            pulse.load_module(
                f"module-remap-{kind}",
                f"{kind}_name={name}",
                f"master={master}",
                "channels=1",
                "channel_map=mono",
                f"master_channel_map={side}",
                "remix=no",
                *([props] if props else []),
            )
        )
    modules.append(
        pulse.load_module(
            "module-loopback", "source=played", "sink=delayed", "latency_msec=120", "adjust_time=0"
        )
    )
    player = None
    try:
        stream = _wait_for_sink_input(pulse, "module-loopback")
        pulse.pactl("set-sink-input-volume", stream, "50%")  # -18 dB on pulse's cubic scale
        player = subprocess.Popen(
            ["paplay", "--device=delayed", str(_noise_wav(tmp_path / "room.wav", NOISE))],
            env=pulse.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_sink_input(pulse, 'application.name = "paplay"')
        checks = run_checks(
            ["check", "echo"], pulse.client_env(PULSE_SINK="direct", PULSE_SOURCE="usbmic")
        )
    finally:
        if player is not None:
            player.terminate()
            player.wait(5)
        for m in reversed(modules):
            pulse.unload_module(m)
    mic = checks["microphone"]
    assert mic["cause"] != "loopback_input", mic["summary"]
    echo = checks["echo"]
    ev = echo["evidence"]
    assert (echo["status"], echo["cause"]) == ("fail", "echo_detected"), (echo["summary"], str(ev))
    assert ev["input_server_description"] == "USBMic" and "input_monitor_of" not in ev
    assert "loopback_input" not in ev and ev["loopback_by_behaviour"] is False
    assert ev["noise_level_dbfs"] > -60  # the room was heard
    assert -24 <= ev["erl_db"] <= -12, ev["erl_db"]
    assert 100 <= ev["delay_ms"] <= 200, ev["delay_ms"]
    assert "loopback" not in echo["summary"] and echo["fix"]["guide"] == "echo_loop"


def _sink_index(pulse: PulseServer, name: str) -> str:
    for line in pulse.pactl("list", "short", "sinks").splitlines():
        cols = line.split("\t")
        if len(cols) > 1 and cols[1] == name:
            return cols[0]
    raise AssertionError(f"no sink {name!r}")


def _playing_into(pulse: PulseServer, sink: str) -> bool:
    rows = [line.split("\t") for line in pulse.pactl("list", "short", "sink-inputs").splitlines()]
    return any(len(cols) > 1 and cols[1] == sink for cols in rows)


def _pause_while_playing(
    pulse: PulseServer, sink: str, proc: subprocess.Popen[str], pauses: int, pause_s: float
) -> None:
    """Wait until the doctor's playback stream exists on `sink`, then stop the process
    `pauses` times for `pause_s` each: the server drains the stream's 0.1 s buffer while
    the writer is frozen, and the stream under-runs whatever the machine's load."""
    index = _sink_index(pulse, sink)
    deadline = time.monotonic() + 30
    while not _playing_into(pulse, index):  # polls the server's own state, with a deadline
        assert proc.poll() is None and time.monotonic() < deadline, "the doctor never played"
    for _ in range(pauses):
        proc.send_signal(signal.SIGSTOP)
        time.sleep(pause_s)  # the stimulus's length, not a wait for anything
        proc.send_signal(signal.SIGCONT)
        time.sleep(pause_s)


def test_alsa_underruns_are_counted_not_printed(pulse: PulseServer) -> None:
    """Under-runs on the probe's output stream are counted, and ALSA's own lines
    (`ALSA lib pcm.c:8570:(snd_pcm_recover) underrun occurred`, which reached the terminal
    before this was fixed) never do. A loopback from one null sink's monitor into another
    made them on one machine (~280 status flags) and not on the CI machine (1), so the
    under-runs are made on purpose: the doctor is frozen (SIGSTOP) three times for 0.4 s
    while it plays, far longer than its output buffer."""
    modules = [
        pulse.load_module("module-null-sink", "sink_name=spk", "rate=48000", "channels=1"),
        pulse.load_module("module-null-sink", "sink_name=far", "rate=48000", "channels=1"),
        pulse.load_module("module-remap-source", "master=spk.monitor", "source_name=spk_tap"),
        pulse.load_module("module-remap-source", "master=far.monitor", "source_name=farmic"),
        pulse.load_module(
            "module-loopback", "source=spk_tap", "sink=far", "latency_msec=120", "adjust_time=0"
        ),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "doctor", "check", "echo", "--skip", "microphone", "--json"],
        env=pulse.client_env(PULSE_SINK="spk", PULSE_SOURCE="farmic"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _pause_while_playing(pulse, "spk", proc, pauses=3, pause_s=0.4)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for m in reversed(modules):
            pulse.unload_module(m)
    assert proc.returncode in (0, 1), stderr[-2000:]
    (echo,) = [c for c in json.loads(stdout)["checks"] if c["id"] == "echo"]
    ev = echo["evidence"]
    assert ev["output_status_flags"] >= 3, str(ev)  # the under-runs happened
    assert ev["alsa_underruns"] > 0 and ev["library_messages"] >= ev["alsa_underruns"], str(ev)
    assert "underrun occurred" in ev["library_message_samples"][0]
    assert "ALSA lib" not in stderr
    assert "test sound" in stderr  # the doctor's own line still reaches the user
