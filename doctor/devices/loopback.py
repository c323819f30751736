"""Is an input a loopback of an output? What its name says (pure).

A monitor or loopback input records what the machine plays, digitally: everything the
agent says comes straight back as "user speech". Hosts name such inputs plainly: PulseAudio
and PipeWire monitor sources ("Monitor of Built-in Audio", `*.monitor`), virtual cables on
macOS (BlackHole, Loopback, Soundflower), Windows' "Stereo Mix" and Creative's "What U Hear".
The echo check also recognises one by behaviour, whatever its name. Pure but for
`input_loopback_facts`, which asks the sound server (pactl) about ALSA's route into it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from doctor.devices.soundserver import ServerDevice

if TYPE_CHECKING:
    from doctor.devices.portaudio import DeviceInfo

_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"\bmonitor of\b", "a monitor of an output"),
    (r"\.monitor$", "a monitor of an output"),
    (r"\bblackhole\b", "BlackHole, a virtual loopback cable"),
    (r"\bloopback\b", "a loopback device"),
    (r"\bsoundflower\b", "Soundflower, a virtual loopback cable"),
    (r"\bvb-?audio\b|\bcable output\b", "a virtual audio cable"),
    (r"\bstereo mix\b", "Stereo Mix, a copy of what plays"),
    (r"\bwhat u hear\b|\bwave out mix\b", "a copy of what plays"),
)


def loopback_by_name(device_name: str, server_source: ServerDevice | None = None) -> str | None:
    """Why this input looks like a loopback of an output, or None.

    `server_source`: what the sound server says the stream records (a remap or filter over
    a monitor counts: the server follows its master chain)."""
    if server_source is not None and server_source.monitor_of is not None:
        return (
            f"the sound server's {server_source.description!r} records {server_source.monitor_of!r}"
        )
    names = [device_name]
    if server_source is not None:
        names += [server_source.name, server_source.description]
    for name in names:
        low = name.strip().lower()
        for pattern, what in _PATTERNS:
            if re.search(pattern, low):
                return f"{name!r} is {what}"
    return None


def input_loopback_facts(device: DeviceInfo) -> dict[str, Any]:
    """Blocking. Evidence on whether the input is named as a loopback of an output, by
    PortAudio or, for ALSA's route into a sound server, by the server's source."""
    from doctor.devices import soundserver

    source = None
    if soundserver.routed_through_server(device.name, device.hostapi):
        facts = soundserver.query()
        source = facts.source if facts is not None else None
    reason = loopback_by_name(device.name, source)
    out: dict[str, Any] = source.evidence("input_") if source is not None else {}
    if reason is not None:
        out["loopback_input"] = True
        out["loopback_reason"] = reason
    return out
