"""`agent-doctor devices`: table and JSON from real PortAudio enumerations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from devices_helpers import broken_portaudio_env
from pulse_fixture import JackServer, PulseServer, run_cli


def listing(args: list[str], env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    proc = run_cli(["devices", "--json", *args], env)
    return proc.returncode, json.loads(proc.stdout)


def by_name(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in doc["devices"] if d["name"] == name)


def test_json_lists_pulse_devices_with_defaults_and_probes(pulse_server: PulseServer) -> None:
    code, doc = listing([], pulse_server.env)
    assert code == 0
    default = by_name(doc, "default")
    assert doc["default_input"] == doc["default_output"] == default["index"]
    assert default["is_default_input"] and default["is_default_output"]
    assert default["hostapi"] == "ALSA" and default["max_input_channels"] > 0
    assert default["input_probe"] == {"opens_at_24000_hz": True}
    assert default["output_probe"] == {"opens_at_24000_hz": True}
    assert not by_name(doc, "pulse")["is_default"]
    assert doc["portaudio"].startswith("PortAudio") and doc["problems"] == []


def test_table_marks_defaults(pulse_server: PulseServer) -> None:
    proc = run_cli(["devices"], pulse_server.env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if "in @24k" in line)
    assert "host API" in header and "rate Hz" in header
    default_row = next(line for line in lines if " default " in line and "ALSA" in line)
    assert default_row.lstrip().startswith("*")
    assert "default in, default out" in default_row


def test_selected_devices_are_marked(pulse_server: PulseServer) -> None:
    code, doc = listing(["--input-device", "pulse", "--output-device", "1"], pulse_server.env)
    assert code == 0
    assert doc["selected_input"] == by_name(doc, "pulse")["index"]
    assert doc["selected_output"] == 1
    assert doc["problems"] == []


def test_a_mistyped_device_is_a_usage_error(pulse_server: PulseServer) -> None:
    """Before: exit 0 with a `no_output_device` "problem", as if hardware were missing."""
    r = run_cli(["devices", "--output-device", "nothing-like-this"], pulse_server.env)
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    (line,) = r.stderr.strip().splitlines()
    assert "'nothing-like-this' names no output device" in line
    assert "0: pulse" in line and "1: default" in line


def test_jack_device_refuses_24k(jack_server: JackServer) -> None:
    code, doc = listing([], jack_server.env)
    assert code == 0
    system = by_name(doc, "system")
    assert system["hostapi"] == "JACK Audio Connection Kit"
    assert system["default_samplerate_hz"] == 48000.0
    assert system["input_probe"]["opens_at_24000_hz"] is False
    assert system["input_probe"]["cause"] == "rate_unsupported"
    assert system["output_probe"]["cause"] == "rate_unsupported"


def test_no_devices_exits_1_with_the_reason(no_sound_env: dict[str, str]) -> None:
    if os.path.isdir("/dev/snd"):
        pytest.skip("this machine has sound cards, so PortAudio lists devices without a server")
    code, doc = listing([], no_sound_env)
    assert code == 1
    assert doc["devices"] == []
    assert [p["cause"] for p in doc["problems"]] == ["no_devices"]
    assert doc["sound_system"]["sound_server_reachable"] is False
    text = run_cli(["devices"], no_sound_env)
    assert text.returncode == 1 and "no sound server reachable" in text.stdout
    assert "Traceback" not in text.stderr


def test_missing_portaudio_is_one_problem_not_a_traceback(
    pulse_server: PulseServer, tmp_path: Path
) -> None:
    env = broken_portaudio_env(pulse_server.env, tmp_path)
    code, doc = listing([], env)
    assert code == 1
    assert doc["portaudio"] is None
    assert [p["cause"] for p in doc["problems"]] == ["portaudio_missing"]
    assert doc["problems"][0]["fix"]["guide"] == "portaudio"
    text = run_cli(["devices"], env)
    assert text.returncode == 1 and "Traceback" not in text.stderr
    assert "problem (portaudio_missing)" in text.stdout and "libportaudio" in text.stdout


def test_modules_are_light_at_import() -> None:
    code = (
        "import sys, doctor.commands.devices, doctor.checks.audio_devices, "
        "doctor.devices.portaudio, doctor.audio.levels.capture, doctor.devices.errors; "
        "heavy = {'sounddevice', 'numpy', 'scipy'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_bad_option_is_usage_error(pulse_server: PulseServer) -> None:
    proc = run_cli(["devices", "--no-such-flag"], pulse_server.env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
