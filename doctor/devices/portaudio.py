"""Audio devices through PortAudio: enumerate, pick by index or name, open, record.

The I/O shell around `sounddevice`. `select_device` is pure (a list in, a device out) so the
selection rules are unit-tested without PortAudio; everything else talks to the real
library and is imported lazily (`import sounddevice` enumerates devices, and fails with
`OSError` when the PortAudio library is missing or broken).

Every failure is a `DeviceError` carrying a contract cause code and evidence, so checks and
the `devices` command never see a raw PortAudio exception.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import sys
import threading
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from doctor.devices.chatter import quiet_libraries
from doctor.devices.errors import PortAudioFailure, classify, from_args

if TYPE_CHECKING:
    import numpy as np

Kind = Literal["input", "output"]
PROBE_RATE_HZ = 24000
COMMON_RATES_HZ = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
PROBE_DTYPE = "int16"
PROBE_CHANNELS = 1


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate_hz: float
    is_default: bool = False  # the default of the kind it was resolved for (or either kind)
    is_default_input: bool = False
    is_default_output: bool = False

    def channels(self, kind: Kind) -> int:
        return self.max_input_channels if kind == "input" else self.max_output_channels

    def evidence(self, prefix: str = "") -> dict[str, Any]:
        return {
            f"{prefix}device": self.name,
            f"{prefix}device_index": self.index,
            f"{prefix}host_api": self.hostapi,
            f"{prefix}is_default": self.is_default,
            f"{prefix}native_rate_hz": self.default_samplerate_hz,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DeviceError(Exception):
    """An audio failure with its contract cause (`no_input_device`, `portaudio_missing`, ...)."""

    def __init__(self, cause: str, message: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.cause = cause
        self.message = message
        self.evidence = evidence or {}


def missing_device_cause(kind: Kind) -> str:
    return "no_input_device" if kind == "input" else "no_output_device"


# --- PortAudio loading and enumeration -----------------------------------------------------


def load_sounddevice() -> ModuleType:
    """`import sounddevice`, turning a missing package or PortAudio library into a DeviceError;
    its teardown at exit gets a deadline (doctor/devices/teardown.py)."""
    from doctor.devices.serverprobe import unresponsive_once
    from doctor.devices.teardown import bound_portaudio_exit

    if "sounddevice" not in sys.modules:  # its import enumerates: a frozen server hangs it
        reason = unresponsive_once()
        if reason is not None:
            raise DeviceError("server_unresponsive", reason, {"sound_server_unresponsive": True})
    try:
        with quiet_libraries():  # enumerating prints ALSA's complaints about absent cards
            import sounddevice

        bound_portaudio_exit()
    except ImportError as exc:
        raise DeviceError(
            "portaudio_missing",
            f"the sounddevice package is not installed ({exc})",
            {"portaudio_error": f"ImportError: {exc}"},
        ) from exc
    except OSError as exc:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise DeviceError(
            "portaudio_missing",
            f"the PortAudio library cannot be loaded ({exc})",
            {"portaudio_error": str(exc)},
        ) from exc
    module: ModuleType = sounddevice
    return module


def portaudio_version() -> str | None:
    try:
        return str(load_sounddevice().get_portaudio_version()[1])
    except DeviceError:
        return None


def _host_api_names(sd: ModuleType) -> list[str]:
    return [str(h["name"]) for h in sd.query_hostapis()]


def _default_indices(sd: ModuleType) -> tuple[int, int]:
    """PortAudio's default input and output (-1 when there is none)."""
    raw = sd.default.device
    idx_in, idx_out = (int(raw[0]), int(raw[1])) if hasattr(raw, "__getitem__") else (-1, -1)
    names = _host_api_names(sd)
    if idx_in < 0 or idx_out < 0:  # sounddevice leaves -1 unless the user set one: ask PortAudio
        for i, _ in enumerate(names):
            api = sd.query_hostapis(i)
            if idx_in < 0 and api.get("default_input_device", -1) >= 0:
                idx_in = int(api["default_input_device"])
            if idx_out < 0 and api.get("default_output_device", -1) >= 0:
                idx_out = int(api["default_output_device"])
            if idx_in >= 0 and idx_out >= 0:
                break
    return idx_in, idx_out


def list_devices() -> tuple[list[DeviceInfo], int, int]:
    """Every device PortAudio enumerated at import, with the default input and output index."""
    sd = load_sounddevice()
    names = _host_api_names(sd)
    idx_in, idx_out = _default_indices(sd)
    out = []
    for raw in sd.query_devices():
        index = int(raw["index"])
        api = int(raw["hostapi"])
        out.append(
            DeviceInfo(
                index=index,
                name=str(raw["name"]),
                hostapi=names[api] if 0 <= api < len(names) else str(api),
                max_input_channels=int(raw["max_input_channels"]),
                max_output_channels=int(raw["max_output_channels"]),
                default_samplerate_hz=float(raw["default_samplerate"]),
                is_default=index in (idx_in, idx_out),
                is_default_input=index == idx_in,
                is_default_output=index == idx_out,
            )
        )
    return out, idx_in, idx_out


# --- selection (pure) ------------------------------------------------------------------------


def _listing(devices: list[DeviceInfo], kind: Kind) -> list[str]:
    return [f"{d.index}: {d.name} ({d.hostapi})" for d in devices if d.channels(kind) > 0]


def select_device(
    devices: list[DeviceInfo], spec: str | None, kind: Kind, default_index: int
) -> DeviceInfo:
    """The device a user means: the default when `spec` is None, else an index or a
    case-insensitive part of the name (an exact name wins; several matches are an error).

    Raises DeviceError with `no_input_device`/`no_output_device` when nothing fits.
    """
    missing = missing_device_cause(kind)
    usable = [d for d in devices if d.channels(kind) > 0]
    evidence: dict[str, Any] = {"devices_total": len(devices), f"{kind}_devices": len(usable)}
    if spec is None or not spec.strip():
        if not usable:
            raise DeviceError(missing, f"PortAudio lists no {kind} device at all", evidence)
        chosen = next((d for d in usable if d.index == default_index), None)
        if chosen is None:
            evidence["available"] = _listing(devices, kind)
            raise DeviceError(
                missing,
                f"there is no default {kind} device; pick one of "
                f"{len(usable)} with --{kind}-device",
                evidence,
            )
        return _as_default(chosen, True)
    spec = spec.strip()
    evidence["requested"] = spec
    if spec.lstrip("-").isdigit():
        index = int(spec)
        match = next((d for d in devices if d.index == index), None)
        if match is None or match.channels(kind) == 0:
            what = "no device" if match is None else f"device {index} ({match.name}) has no {kind}s"
            evidence["available"] = _listing(devices, kind)
            raise DeviceError(
                missing, f"{what}: --{kind}-device {index} does not name an {kind} device", evidence
            )
        return _as_default(match, match.index == default_index)
    low = spec.lower()
    exact = [d for d in usable if d.name.lower() == low]
    partial = exact or [d for d in usable if low in d.name.lower()]
    if len(partial) == 1:
        return _as_default(partial[0], partial[0].index == default_index)
    evidence["available"] = _listing(devices, kind)
    if not partial:
        raise DeviceError(missing, f"no {kind} device name contains {spec!r}", evidence)
    evidence["matches"] = [f"{d.index}: {d.name}" for d in partial]
    raise DeviceError(
        missing,
        f"{len(partial)} {kind} devices match {spec!r}: pass an index or a longer part of the name",
        evidence,
    )


def _as_default(device: DeviceInfo, is_default: bool) -> DeviceInfo:
    from dataclasses import replace

    return replace(device, is_default=is_default)


def resolve_device(spec: str | None, kind: Kind) -> DeviceInfo:
    """The device `--input-device`/`--output-device` names (None: the system default)."""
    devices, idx_in, idx_out = list_devices()
    return select_device(devices, spec, kind, idx_in if kind == "input" else idx_out)


# --- opening and recording ---------------------------------------------------------------------


def failure_of(exc: BaseException, sd: ModuleType | None = None) -> PortAudioFailure:
    """A sounddevice exception as plain data for `portaudio_errors.classify`."""
    names: list[str] = []
    if sd is not None:
        with contextlib.suppress(Exception):
            names = _host_api_names(sd)
    if sd is not None and isinstance(exc, sd.PortAudioError):
        return from_args(tuple(exc.args), names)
    return PortAudioFailure(f"{type(exc).__name__}: {exc}")


def open_error(
    exc: BaseException, sd: ModuleType, device: DeviceInfo, kind: Kind, rate_hz: int
) -> DeviceError:
    failure = failure_of(exc, sd)
    verdict = classify(failure)
    evidence = {
        **device.evidence(),
        **verdict.evidence,
        "requested_rate_hz": rate_hz,
        "error": str(exc),
    }
    reason = (
        f"does not open at {rate_hz} Hz mono int16"
        if verdict.cause == "rate_unsupported"
        else verdict.reason
    )
    return DeviceError(verdict.cause, f"{kind} device {device.name!r}: {reason} ({exc})", evidence)


def _stream(sd: ModuleType, device: DeviceInfo, kind: Kind, rate_hz: int) -> Any:
    """A blocking-mode stream at PortAudio's default latency. (Measured through ALSA's pulse
    plugin: the first capture in a process takes ~2.4 s to deliver half a second, later ones
    ~0.56 s, whatever the latency setting.)"""
    cls = sd.InputStream if kind == "input" else sd.OutputStream
    return cls(
        device=device.index,
        samplerate=rate_hz,
        channels=PROBE_CHANNELS,
        dtype=PROBE_DTYPE,
    )


def record(
    device: DeviceInfo, duration_s: float, rate_hz: int = PROBE_RATE_HZ, discard_s: float = 0.05
) -> np.ndarray[Any, Any]:
    """Capture mono int16 on its own input stream (never full duplex: `playrec` through
    ALSA plugins can return zeros without an error). The first `discard_s` is dropped,
    it holds the stream's start-up. Blocking: call it through `run_blocking`."""
    sd = load_sounddevice()
    skip = int(discard_s * rate_hz)
    frames = int(duration_s * rate_hz) + skip
    try:
        with quiet_libraries(), _stream(sd, device, "input", rate_hz) as stream:
            data, _overflowed = stream.read(frames)
    except Exception as exc:
        raise open_error(exc, sd, device, "input", rate_hz) from exc
    return data[skip:, 0].copy()  # type: ignore[no-any-return]


def record_by_callback(
    device: DeviceInfo, duration_s: float, rate_hz: int, discard_s: float = 0.05
) -> np.ndarray[Any, Any]:
    """`record` through a callback stream: PortAudio 19.6's blocking read on JACK crashes
    the process (SIGSEGV in `Pa_ReadStream`), while callbacks are what JACK is made for.
    Raises DeviceError when the device delivers too little within the deadline."""
    import numpy as np

    sd = load_sounddevice()
    skip = int(discard_s * rate_hz)
    frames = int(duration_s * rate_hz) + skip
    chunks: list[Any] = []
    count = [0]
    enough = threading.Event()

    def on_input(indata: Any, n: int, _t: Any, _status: Any) -> None:
        if count[0] < frames:
            chunks.append(indata[:, 0].copy())
            count[0] += n
        if count[0] >= frames:
            enough.set()

    try:
        with quiet_libraries():
            stream = sd.InputStream(
                device=device.index,
                samplerate=rate_hz,
                channels=PROBE_CHANNELS,
                dtype=PROBE_DTYPE,
                callback=on_input,
            )
    except Exception as exc:
        raise open_error(exc, sd, device, "input", rate_hz) from exc
    with stream:
        got = enough.wait(duration_s + discard_s + 5.0)
    if not got:
        raise DeviceError(
            "open_failed",
            f"input device {device.name!r} delivered {count[0]} of {frames} frames at {rate_hz} Hz",
            device.evidence(),
        )
    return np.concatenate(chunks)[skip:frames]


def play_silence(device: DeviceInfo, duration_s: float, rate_hz: int = PROBE_RATE_HZ) -> None:
    """Open an output stream and write silence through it: proves playback runs at the rate."""
    import numpy as np

    sd = load_sounddevice()
    try:
        with quiet_libraries(), _stream(sd, device, "output", rate_hz) as stream:
            stream.write(np.zeros((int(duration_s * rate_hz), PROBE_CHANNELS), dtype=np.int16))
    except Exception as exc:
        raise open_error(exc, sd, device, "output", rate_hz) from exc


def exercise(
    device: DeviceInfo, kind: Kind, rate_hz: int = PROBE_RATE_HZ, duration_s: float = 0.05
) -> None:
    """Open the device at `rate_hz` mono int16 and move a little audio through it."""
    if kind == "input":
        record(device, duration_s, rate_hz, discard_s=0.0)
    else:
        play_silence(device, duration_s, rate_hz)


def opens_at(device: DeviceInfo, kind: Kind, rate_hz: int = PROBE_RATE_HZ) -> DeviceError | None:
    """Open and close a stream (no audio moved); None when it opened."""
    sd = load_sounddevice()
    try:
        with quiet_libraries():
            stream = _stream(sd, device, kind, rate_hz)
            stream.close()
    except Exception as exc:
        return open_error(exc, sd, device, kind, rate_hz)
    return None


def accepted_rates(
    device: DeviceInfo, kind: Kind, rates: tuple[int, ...] = COMMON_RATES_HZ
) -> list[int]:
    """The rates PortAudio says the device takes (mono int16), by `Pa_IsFormatSupported`."""
    sd = load_sounddevice()
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    ok = []
    with quiet_libraries():
        for rate in rates:
            try:
                check(
                    device=device.index, samplerate=rate, channels=PROBE_CHANNELS, dtype=PROBE_DTYPE
                )
            except Exception:
                continue
            ok.append(rate)
    return ok


def with_deadline(fn: Any, timeout_s: float, *args: Any) -> Any:
    """Run blocking PortAudio work in a daemon thread, for callers outside the check runner
    (the `devices` command). A call stuck in a driver raises TimeoutError; its thread is
    abandoned rather than joined."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=work, name="doctor-device-probe", daemon=True)
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        raise TimeoutError(f"no answer from the audio driver within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


# --- why there may be no device at all (Linux) ----------------------------------------------------


def _socket_reachable(address: str, timeout_s: float = 1.0) -> tuple[bool, str]:
    """Can we connect to a sound server socket (`unix:/path` or `host[:port]`)?"""
    try:
        if address.startswith("unix:") or address.startswith("/"):
            path = address.removeprefix("unix:")
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout_s)
                s.connect(path)
        else:
            host, _, port = address.removeprefix("tcp:").partition(":")
            with socket.create_connection((host or "127.0.0.1", int(port or 4713)), timeout_s):
                pass
    except (OSError, ValueError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return True, "connected"


def sound_server_candidates(env: dict[str, str] | None = None) -> list[str]:
    env = dict(os.environ if env is None else env)
    out: list[str] = []
    if env.get("PULSE_SERVER"):
        out.extend(s for s in env["PULSE_SERVER"].split() if s)
    runtime = env.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    out += [
        f"unix:{runtime}/pulse/native",
        f"unix:{runtime}/pipewire-0",
        "unix:/var/run/pulse/native",
    ]
    seen: list[str] = []
    for c in out:
        if c not in seen:
            seen.append(c)
    return seen


def linux_sound_facts() -> dict[str, Any]:
    """What a Linux user needs to know when PortAudio sees no device: is a sound server
    reachable, does /dev/snd exist, is the user in the `audio` group."""
    if platform.system() != "Linux":
        return {}
    servers: dict[str, str] = {}
    reachable = None
    for cand in sound_server_candidates():
        path = cand.removeprefix("unix:")
        if cand.startswith("unix:") and not os.path.exists(path):
            servers[cand] = "no such socket"
            continue
        ok, why = _socket_reachable(cand)
        servers[cand] = why
        if ok and reachable is None:
            reachable = cand
    import grp  # POSIX only, and this function only runs on Linux

    try:
        audio_gid = grp.getgrnam("audio").gr_gid
        in_audio: bool | None = audio_gid in os.getgroups() or os.getgid() == audio_gid
    except KeyError:
        in_audio = None
    dev_snd = os.path.isdir("/dev/snd")
    return {
        "sound_server_reachable": reachable is not None,
        "sound_server": reachable,
        "sound_server_probes": servers,
        "dev_snd_exists": dev_snd,
        "dev_snd_entries": len(os.listdir("/dev/snd")) if dev_snd else 0,
        "user_in_audio_group": in_audio,
        "user_is_root": os.geteuid() == 0,
    }


def describe_linux_facts(facts: dict[str, Any]) -> str:
    """One clause for a summary line, e.g. 'no sound server reachable, no /dev/snd'."""
    if not facts:
        return ""
    parts = [
        "a sound server answers at " + str(facts["sound_server"])
        if facts["sound_server_reachable"]
        else "no sound server reachable",
        "/dev/snd exists" if facts["dev_snd_exists"] else "no /dev/snd",
    ]
    if facts["user_in_audio_group"] is False and not facts["user_is_root"]:
        parts.append("you are not in the audio group")
    elif facts["user_in_audio_group"]:
        parts.append("you are in the audio group")
    return ", ".join(parts)
