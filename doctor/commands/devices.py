"""`agent-doctor devices`: the audio devices PortAudio sees, and which open at 24 kHz mono int16.

Light at import: PortAudio is loaded inside the command. Exit codes: 0 when at least one
device is listed, 1 when PortAudio is missing or lists nothing, 2 for bad usage.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from doctor import __version__, guide
from doctor.cli import audio_options

if TYPE_CHECKING:
    from doctor.devices.portaudio import DeviceInfo, Kind

PROBE_TIMEOUT_S = 5.0


def _probe(device: DeviceInfo, kind: Kind) -> dict[str, Any]:
    """Does `device` open at 24000 Hz mono int16 for `kind`? None when it has no such side."""
    from doctor.devices.portaudio import opens_at, with_deadline

    if device.channels(kind) == 0:
        return {"opens_at_24000_hz": None}
    try:
        err = with_deadline(opens_at, PROBE_TIMEOUT_S, device, kind)
    except TimeoutError as exc:
        return {"opens_at_24000_hz": False, "cause": "timeout", "error": str(exc)}
    if err is None:
        return {"opens_at_24000_hz": True}
    return {"opens_at_24000_hz": False, "cause": err.cause, "error": err.message}


def _selected(
    devices: list[DeviceInfo], spec: str | None, kind: Kind, default: int
) -> tuple[int | None, str | None]:
    from doctor.devices.portaudio import DeviceError, select_device

    try:
        return select_device(devices, spec, kind, default).index, None
    except DeviceError as err:
        return None, err.message


def build_listing(input_spec: str | None, output_spec: str | None) -> dict[str, Any]:
    """The JSON document of `devices --json` (also what the table is drawn from)."""
    from doctor.devices.portaudio import (
        DeviceError,
        describe_linux_facts,
        linux_sound_facts,
        list_devices,
        portaudio_version,
    )

    doc: dict[str, Any] = {
        "schema_version": 1,
        "tool": {"name": "agent-doctor", "version": __version__},
        "command": "devices",
        "generated_at": datetime.now(timezone.utc)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "probe": {"rate_hz": 24000, "channels": 1, "dtype": "int16"},
        "portaudio": None,
        "default_input": None,
        "default_output": None,
        "selected_input": None,
        "selected_output": None,
        "devices": [],
        "problems": [],
    }
    try:
        devices, idx_in, idx_out = list_devices()
    except DeviceError as err:
        from doctor.checks.environment import portaudio_install_command

        fix = (
            guide.fix("sound_server_unresponsive", detail=err.message)
            if err.cause == "server_unresponsive"
            else guide.fix("portaudio", detail=portaudio_install_command())
        )
        doc["problems"].append({"cause": err.cause, "message": err.message, "fix": fix.to_dict()})
        return doc
    doc["portaudio"] = portaudio_version()
    doc["default_input"] = idx_in if idx_in >= 0 else None
    doc["default_output"] = idx_out if idx_out >= 0 else None
    wanted: tuple[tuple[Kind, str | None], ...] = (("input", input_spec), ("output", output_spec))
    for kind, spec in wanted:
        index, problem = _selected(devices, spec, kind, idx_in if kind == "input" else idx_out)
        doc[f"selected_{kind}"] = index
        if problem and devices:
            doc["problems"].append({"cause": f"no_{kind}_device", "message": problem})
    for d in devices:
        doc["devices"].append(
            {**d.to_dict(), "input_probe": _probe(d, "input"), "output_probe": _probe(d, "output")}
        )
    if not devices:
        facts = linux_sound_facts()
        doc["sound_system"] = facts
        why = describe_linux_facts(facts)
        doc["problems"].append(
            {
                "cause": "no_devices",
                "message": f"PortAudio lists no audio device{' (' + why + ')' if why else ''}",
                "fix": guide.fix("audio_device").to_dict(),
            }
        )
    return doc


def _mark(probe: dict[str, Any]) -> str:
    ok = probe.get("opens_at_24000_hz")
    if ok is None:
        return "-"
    return "yes" if ok else f"no ({probe.get('cause')})"


def render_table(doc: dict[str, Any]) -> str:
    from tabulate import tabulate

    rows = []
    for d in doc["devices"]:
        marks = []
        if d["index"] == doc["default_input"]:
            marks.append("default in")
        if d["index"] == doc["default_output"]:
            marks.append("default out")
        if d["index"] == doc["selected_input"] and d["index"] != doc["default_input"]:
            marks.append("selected in")
        if d["index"] == doc["selected_output"] and d["index"] != doc["default_output"]:
            marks.append("selected out")
        rows.append(
            [
                ("* " if d["is_default"] else "  ") + str(d["index"]),
                d["name"],
                d["hostapi"],
                d["max_input_channels"],
                d["max_output_channels"],
                f"{d['default_samplerate_hz']:g}",
                _mark(d["input_probe"]),
                _mark(d["output_probe"]),
                ", ".join(marks),
            ]
        )
    lines = []
    if doc["portaudio"]:
        lines.append(f"{doc['portaudio']}; probe: 24000 Hz, mono, int16")
    if rows:
        lines.append(
            tabulate(
                rows,
                headers=[
                    "#",
                    "name",
                    "host API",
                    "in",
                    "out",
                    "rate Hz",
                    "in @24k",
                    "out @24k",
                    "default",
                ],
            )
        )
    for p in doc["problems"]:
        lines.append(f"problem ({p['cause']}): {p['message']}")
        fix = p.get("fix")
        if fix:
            lines.append(f"  Fix: {fix['title']}")
            lines += [f"  - {step}" for step in fix["steps"]]
            lines += [f"    $ {c}" for c in fix["commands"]]
    return "\n".join(lines) + "\n"


@click.command("devices")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout instead of a table.")
@audio_options
def devices_command(as_json: bool, input_device: str | None, output_device: str | None) -> None:
    """List audio devices and whether each opens at 24000 Hz mono int16.

    `*` marks the default devices; --input-device/--output-device mark your choice.
    Exits 1 when PortAudio is missing or lists no device.
    """
    from doctor.cli import device_options

    chosen = device_options({"input_device": input_device, "output_device": output_device})
    doc = build_listing(chosen["input_device"], chosen["output_device"])
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        sys.stdout.write(render_table(doc))
    sys.stdout.flush()
    if not doc["devices"] or any(p["cause"] == "portaudio_missing" for p in doc["problems"]):
        sys.exit(1)
