"""`--input-device`/`--output-device` checked before any check runs: a typo is a usage error.

A name that matches no device, or several, is the user's to fix (exit 2, one line naming
the matches or the devices there are), not missing hardware with a "plug in a mic" fix.
Under PulseAudio/PipeWire PortAudio lists only `pulse`/`default`; a server source or sink
name (`voice_mic`, `alsa_input.usb-...`) is accepted and routed through that device with
PULSE_SOURCE/PULSE_SINK, which libpulse reads when each stream connects.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from doctor.devices.portaudio import (
    DeviceError,
    DeviceInfo,
    Kind,
    list_devices,
    select_device,
)
from doctor.devices.soundserver import PACTL_TIMEOUT_S, PULSE_ROUTED

_SERVER_VAR: dict[Kind, str] = {"input": "PULSE_SOURCE", "output": "PULSE_SINK"}


class DeviceUsageError(ValueError):
    """The option names no device, or several: the message says which there are."""


def server_names(kind: Kind) -> list[str]:
    """The sound server's source (input) or sink (output) names; [] without one."""
    if shutil.which("pactl") is None:
        return []
    what = "sources" if kind == "input" else "sinks"
    try:
        out = subprocess.run(
            ["pactl", "list", "short", what],
            capture_output=True,
            text=True,
            timeout=PACTL_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode != 0:
        return []
    return [cols[1] for line in out.stdout.splitlines() if len(cols := line.split("\t")) > 1]


def _routed(devices: list[DeviceInfo], kind: Kind) -> DeviceInfo | None:
    usable = [d for d in devices if d.channels(kind) > 0]
    for name in PULSE_ROUTED:
        match = next((d for d in usable if d.name.lower() == name), None)
        if match is not None:
            return match
    return None


def choose(spec: str | None, kind: Kind) -> str | None:
    """The spec to use for `kind`: unchanged when it names one device (or is None, or
    PortAudio cannot tell: the checks report that); a server name becomes the ALSA device
    that reaches the server, with PULSE_SOURCE/PULSE_SINK set. Raises DeviceUsageError."""
    if spec is None or not spec.strip():
        return spec
    try:
        devices, idx_in, idx_out = list_devices()
        select_device(devices, spec, kind, idx_in if kind == "input" else idx_out)
        return spec
    except DeviceError as err:
        if not err.evidence.get(f"{kind}_devices") or "available" not in err.evidence:
            return spec  # no device of this kind at all, or no PortAudio: the checks say so
        failure = err
    names = server_names(kind)
    routed = _routed(devices, kind)
    wanted = spec.strip()
    if routed is not None and wanted in names and "matches" not in failure.evidence:
        os.environ[_SERVER_VAR[kind]] = wanted
        return str(routed.index)
    option = f"--{kind}-device"
    if "matches" in failure.evidence:
        listed = "; ".join(failure.evidence["matches"])
        raise DeviceUsageError(
            f"{option} {wanted!r} matches {len(failure.evidence['matches'])} {kind} devices "
            f"({listed}): pass an index or a longer part of the name"
        )
    listed = "; ".join(failure.evidence["available"])
    server = f"; sound server {kind}s: {', '.join(names)}" if names and routed else ""
    raise DeviceUsageError(
        f"{option} {wanted!r} names no {kind} device; {kind} devices: {listed}{server}"
    )


def apply_device_options(params: dict[str, Any]) -> dict[str, Any]:
    """`params` with `input_device`/`output_device` checked and resolved (see `choose`)."""
    out = dict(params)
    for kind in ("input", "output"):
        spec = out.get(f"{kind}_device")
        if isinstance(spec, str):
            out[f"{kind}_device"] = choose(spec, kind)
    return out
