"""What the sound server behind ALSA's `pulse`/`default` device really uses (shell + parser).

Through ALSA's pulse plugin PortAudio sees one device, `pulse` (or `default`), that reports
44100 Hz whatever the hardware runs at, and opens at any rate. The server (PulseAudio, or
PipeWire's pulse server) knows the truth: which source and sink the stream lands on, their
rate (8 or 16 kHz for a Bluetooth headset in hands-free mode), and whether the source is a
monitor of an output (a loopback: the agent's voice comes straight back). `pactl -f json`
tells; without pactl, or with no server answering, there are no facts and the checks keep
PortAudio's view.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

PACTL_TIMEOUT_S = 3.0
# PortAudio device names that are ALSA's route into a pulse server
PULSE_ROUTED = ("pulse", "default", "pipewire")
HANDS_FREE_RATES_HZ = (8000, 16000)
_HANDS_FREE_WORDS = ("head_unit", "head-unit", "handsfree", "hands-free", "headset", "hfp", "hsp")


@dataclass(frozen=True)
class ServerDevice:
    """A source or sink as the server describes it."""

    name: str
    description: str
    rate_hz: int | None
    channels: int | None
    monitor_of: str | None = None  # a source that copies this sink's output (description)
    bluetooth_profile: str | None = None  # e.g. headset_head_unit, a2dp_sink
    bus: str | None = None

    @property
    def hands_free(self) -> bool:
        """A Bluetooth headset in its telephone profile (HFP/HSP): 8 or 16 kHz, narrowband."""
        profile = (self.bluetooth_profile or "").lower()
        if any(w in profile for w in _HANDS_FREE_WORDS):
            return True
        return self.bus == "bluetooth" and self.rate_hz in HANDS_FREE_RATES_HZ

    def evidence(self, prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            f"{prefix}server_device": self.name,
            f"{prefix}server_description": self.description,
            f"{prefix}server_rate_hz": self.rate_hz,
        }
        if self.monitor_of is not None:
            out[f"{prefix}monitor_of"] = self.monitor_of
        if self.bluetooth_profile:
            out[f"{prefix}bluetooth_profile"] = self.bluetooth_profile
        if self.bus:
            out[f"{prefix}bus"] = self.bus
        return out


@dataclass(frozen=True)
class ServerFacts:
    server: str  # "pulseaudio 16.1", "PulseAudio (on PipeWire 1.0.5)"
    source: ServerDevice | None
    sink: ServerDevice | None


def routed_through_server(device_name: str, hostapi: str) -> bool:
    """Whether a PortAudio device is ALSA's way into a pulse server."""
    return hostapi == "ALSA" and device_name.strip().lower() in PULSE_ROUTED


_SPEC = re.compile(r"(\d+)ch\s+(\d+)Hz")


def _spec(text: str) -> tuple[int | None, int | None]:
    m = _SPEC.search(text or "")
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def _device(
    raw: dict[str, Any],
    by_name: dict[str, dict[str, Any]],
    sinks: dict[str, dict[str, Any]],
    is_source: bool,
) -> ServerDevice:
    props = raw.get("properties") or {}
    channels, rate = _spec(str(raw.get("sample_specification", "")))
    # a monitor source names its sink (pactl's JSON calls it `monitor_source`); a filter
    # (remap, echo-cancel) names its master: follow the chain to what the source records
    monitor_of = None
    seen: set[str] = set()
    cur: dict[str, Any] | None = raw if is_source else None
    while cur is not None and cur.get("name") not in seen:
        seen.add(str(cur.get("name")))
        cprops = cur.get("properties") or {}
        sink = cur.get("monitor_source") or (
            str(cur.get("name"))[: -len(".monitor")]
            if cprops.get("device.class") == "monitor" and str(cur.get("name")).endswith(".monitor")
            else ""
        )
        if sink:
            s = sinks.get(sink)
            monitor_of = str((s or {}).get("description") or sink)
            break
        master = cprops.get("device.master_device")
        cur = by_name.get(str(master)) if master else None
    profile = props.get("bluetooth.protocol") or props.get("api.bluez5.profile")
    return ServerDevice(
        name=str(raw.get("name", "")),
        description=str(raw.get("description") or props.get("device.description") or ""),
        rate_hz=rate,
        channels=channels,
        monitor_of=monitor_of,
        bluetooth_profile=str(profile) if profile else None,
        bus=str(props["device.bus"]) if props.get("device.bus") else None,
    )


def parse(
    info: dict[str, Any],
    sources: list[dict[str, Any]],
    sinks: list[dict[str, Any]],
    env: dict[str, str] | None = None,
) -> ServerFacts:
    """Pure: pactl's JSON (info, list sources, list sinks) -> the devices a client lands on.

    PULSE_SOURCE / PULSE_SINK in the client's environment override the server's defaults,
    exactly as they do for the ALSA pulse plugin."""
    env = dict(os.environ if env is None else env)
    src_by = {str(s.get("name")): s for s in sources}
    sink_by = {str(s.get("name")): s for s in sinks}
    src_name = env.get("PULSE_SOURCE") or str(info.get("default_source_name") or "")
    sink_name = env.get("PULSE_SINK") or str(info.get("default_sink_name") or "")
    source = _device(src_by[src_name], src_by, sink_by, True) if src_name in src_by else None
    sink = _device(sink_by[sink_name], sink_by, sink_by, False) if sink_name in sink_by else None
    server = f"{info.get('server_name', 'sound server')} {info.get('server_version', '')}".strip()
    return ServerFacts(server, source, sink)


def _pactl_json(*args: str) -> Any:
    out = subprocess.run(
        ["pactl", "-f", "json", *args],
        capture_output=True,
        text=True,
        timeout=PACTL_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    if out.returncode != 0:
        raise OSError(out.stderr.strip() or f"pactl exited {out.returncode}")
    return json.loads(out.stdout)


def query() -> ServerFacts | None:
    """The facts from the running server, or None (no pactl, no server, old pactl)."""
    if shutil.which("pactl") is None:
        return None
    try:
        info = _pactl_json("info")
        sources = _pactl_json("list", "sources")
        sinks = _pactl_json("list", "sinks")
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    if not isinstance(info, dict) or not isinstance(sources, list) or not isinstance(sinks, list):
        return None
    return parse(info, sources, sinks)
