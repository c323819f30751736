"""Is the PulseAudio/PipeWire server answering? Asked with a short deadline before PortAudio.

`import sounddevice` enumerates devices, and ALSA's `pulse` plugin waits for a server that
accepts its connection but never answers (a frozen daemon) with no deadline we control:
`devices` took 62 s to say "no sound server reachable" and `microphone` hit its 60 s check
timeout with no fix. `pactl info` under an 8 s timeout tells first. No server at all (no
socket) is not this problem: PortAudio then falls back to the ALSA cards, as before.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

from doctor.result import Result, Status, problem

PROBE_TIMEOUT_S = 8.0  # a healthy server answers in milliseconds, a loaded one in a few s
CAUSE = "sound_server_unresponsive"


def server_socket(env: dict[str, str] | None = None) -> Path | None:
    """The native-protocol socket PulseAudio clients would use, when it exists."""
    env = dict(os.environ) if env is None else env
    spec = env.get("PULSE_SERVER", "")
    candidates: list[str] = []
    for part in spec.split():  # a list of servers; only local unix sockets are probed
        part = part.split("}", 1)[-1]  # {machine-id}unix:/path
        if part.startswith("unix:"):
            candidates.append(part[len("unix:") :])
        elif part.startswith("/"):
            candidates.append(part)
    if not spec:
        runtime = env.get("PULSE_RUNTIME_PATH") or (
            f"{env['XDG_RUNTIME_DIR']}/pulse" if env.get("XDG_RUNTIME_DIR") else ""
        )
        if runtime:
            candidates.append(f"{runtime}/native")
    for c in candidates:
        if Path(c).exists():
            return Path(c)
    return None


def unresponsive_reason(timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """A sentence when a local sound server's socket exists but it does not answer within
    `timeout_s`; None when it answers, when there is none, or when this cannot be told."""
    sock = server_socket()
    if sock is None:
        return None
    if shutil.which("pactl") is not None:
        try:
            subprocess.run(
                ["pactl", "info"],
                capture_output=True,
                timeout=timeout_s,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return (
                f"the sound server at {sock} does not answer: `pactl info` got no reply "
                f"within {timeout_s:g} s"
            )
        except OSError:
            return None
        return None
    # Without pactl: a socket nobody accepts on (a dead daemon's leftover) still tells.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout_s)
    try:
        s.connect(str(sock))
    except TimeoutError:
        return f"the sound server at {sock} does not accept connections within {timeout_s:g} s"
    except OSError:
        return None  # refused: nothing listens, PortAudio falls back to the ALSA cards
    finally:
        s.close()
    return None


_checked: list[str | None] = []


def unresponsive_once() -> str | None:
    """`unresponsive_reason()`, asked once per process (before PortAudio first loads)."""
    if not _checked:
        _checked.append(unresponsive_reason())
    return _checked[0]


def server_unresponsive(detail: str, evidence: dict[str, Any]) -> Result:
    """The check's result when the sound server stopped answering."""
    from doctor import guide

    return problem(
        Status.FAIL,
        CAUSE,
        detail,
        {**evidence, "sound_server_unresponsive": True},
        guide.fix(CAUSE, detail=detail),
    )
