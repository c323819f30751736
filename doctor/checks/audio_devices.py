"""`microphone` and `sample-rate`: can this machine capture and play 24 kHz mono PCM16.

Shells over `doctor.devices.portaudio` (PortAudio I/O), `doctor.devices.errors` and
`doctor.audio.levels.capture` (pure verdicts). Every PortAudio call goes through `run_blocking`:
a driver that hangs costs the check its timeout, not the run. Heavy imports stay inside.
"""

from __future__ import annotations

import asyncio
import math
import platform
from typing import TYPE_CHECKING, Any

from doctor import guide
from doctor.context import Context
from doctor.registry import check
from doctor.result import Fix, Result, Status, passed, problem
from doctor.runner import run_blocking

if TYPE_CHECKING:
    from doctor.devices.portaudio import DeviceError, DeviceInfo, Kind
    from doctor.devices.soundserver import ServerDevice

RECORD_S = 0.5
PROBE_RATE_HZ = 24000
BLUETOOTH_HFP_RATES_HZ = (8000, 16000)


def device_lock(ctx: Context) -> asyncio.Lock:
    """One audio check at a time: a stream another check opens on the same devices
    during the echo probe costs it samples (measured: ERL -9.7 dB instead of 0 on a
    loopback while `sample-rate` ran beside it)."""
    lock = ctx.shared.get("audio_device_lock")
    if lock is None:
        lock = ctx.shared["audio_device_lock"] = asyncio.Lock()
    return lock


def _portaudio_fix() -> Fix:
    from doctor.checks.environment import portaudio_install_command

    return guide.fix("portaudio", detail=portaudio_install_command())


def _missing_device(err: DeviceError, kind: Kind) -> Result:
    """no_input_device / no_output_device, with the Linux facts when nothing is listed."""
    from doctor.devices.portaudio import describe_linux_facts, linux_sound_facts

    evidence = dict(err.evidence)
    summary = err.message
    if not evidence.get(f"{kind}_devices"):
        facts = linux_sound_facts()
        evidence.update(facts)
        if facts:
            summary += f" ({describe_linux_facts(facts)})"
    return problem(
        Status.FAIL, err.cause, summary, evidence, guide.fix("audio_device", detail=err.message)
    )


def _device_failure(err: DeviceError, kind: Kind) -> Result:
    """A DeviceError from resolving or opening, as this check's result."""
    if err.cause == "portaudio_missing":
        return problem(
            Status.FAIL, "portaudio_missing", err.message, err.evidence, _portaudio_fix()
        )
    if err.cause == "server_unresponsive":
        from doctor.devices.serverprobe import server_unresponsive

        return server_unresponsive(err.message, err.evidence)
    if err.cause in ("no_input_device", "no_output_device", "no_device"):
        from doctor.devices.portaudio import DeviceError, missing_device_cause

        return _missing_device(
            DeviceError(missing_device_cause(kind), err.message, err.evidence), kind
        )
    device = err.evidence.get("device", f"the {kind} device")
    if err.cause == "permission_denied":
        from doctor.devices.portaudio import linux_sound_facts

        evidence = {**err.evidence, **linux_sound_facts()}  # audio group, sound server
        entry = "mic_permission" if kind == "input" else "audio_device"
        return problem(
            Status.FAIL,
            "permission_denied",
            err.message,
            evidence,
            guide.fix(entry, device=device, detail=err.message),
        )
    cause = err.cause if err.cause == "device_busy" else "open_failed"
    return problem(
        Status.FAIL,
        cause,
        err.message,
        err.evidence,
        guide.fix("audio_device", device=device, detail=err.message),
    )


# --- microphone ---------------------------------------------------------------------------------


def _capture(spec: str | None) -> tuple[DeviceInfo, Any, int, dict[str, Any]]:
    """Record at 24 kHz, or at the device's own rate when it takes no other (a JACK server
    or a USB mic fixed at 48 kHz): the microphone works, the app resamples (sample-rate
    names the call). The levels do not depend on the rate."""
    from doctor.devices.chatter import quiet_libraries
    from doctor.devices.portaudio import DeviceError, record, record_by_callback, resolve_device

    with quiet_libraries() as chatter:
        device = resolve_device(spec, "input")
        rate = PROBE_RATE_HZ
        try:
            samples = record(device, RECORD_S, rate)
        except DeviceError as err:
            rate = int(device.default_samplerate_hz)
            if err.cause != "rate_unsupported" or rate in (PROBE_RATE_HZ, 0):
                raise
            samples = record_by_callback(device, RECORD_S, rate)
    return device, samples, rate, chatter.evidence()


@check("microphone", "Microphone opens and delivers sound", needs=("environment",), timeout=30.0)
async def microphone(ctx: Context) -> Result:
    """Open the input at 24 kHz mono int16 on its own stream and record half a second."""
    async with device_lock(ctx):
        return await _microphone(ctx)


async def _microphone(ctx: Context) -> Result:
    from doctor.audio.levels.capture import judge, level_stats
    from doctor.devices.loopback import input_loopback_facts
    from doctor.devices.portaudio import DeviceError

    try:
        device, samples, rate, chatter = await run_blocking(_capture, ctx.input_device)
    except DeviceError as err:
        if err.cause == "rate_unsupported":  # sample-rate names the rates; here it is an open
            err = DeviceError("open_failed", err.message, err.evidence)
        return _device_failure(err, "input")
    stats = level_stats(samples)
    evidence: dict[str, Any] = {
        **device.evidence(),
        "rate_hz": rate,
        "opens_at_24000_hz": rate == PROBE_RATE_HZ,
        "duration_s": round(stats.samples / rate, 3),
        **stats.evidence(),
        **chatter,
        **await run_blocking(input_loopback_facts, device),
    }
    verdict = judge(stats)
    name = f"{device.name!r} ({device.hostapi})"
    if evidence.get("loopback_input"):
        heard = (
            "digital silence, because nothing was playing"
            if verdict == "silent"
            else f"{stats.rms_dbfs:.0f} dBFS of whatever is playing"
        )
        others = await run_blocking(_real_sources, device, evidence.get("input_server_device"))
        if others is not None:
            evidence["server_real_sources"] = others
        none_real = (
            "; the sound server has no microphone at all: every source is a monitor of an output"
            if others == []
            else ""
        )
        return problem(
            Status.FAIL,
            "loopback_input",
            f"{name} is a loopback of an output, not a microphone "
            f"({evidence['loopback_reason']}); it recorded {heard}, and the agent's "
            f"voice would come straight back into the session{none_real}",
            evidence,
            guide.fix("loopback_input", device=device.name, detail=evidence["loopback_reason"]),
        )
    if verdict == "silent":
        mac = platform.system() == "Darwin"
        why = (
            "on macOS this is what a denied microphone permission looks like"
            if mac
            else "a muted input, a null device or a denied permission"
        )
        return problem(
            Status.FAIL,
            "silent_input",
            f"{name} delivered digital silence ({stats.zero_fraction:.0%} zero samples): {why}",
            evidence,
            guide.fix(
                "audio_level",
                device=device.name,
                detail=f"{stats.zero_fraction:.0%} of the samples were 0",
            ),
        )
    if verdict == "low":
        return problem(
            Status.WARN,
            "low_level",
            f"{name} level is very low ({stats.rms_dbfs:.0f} dBFS RMS, peak "
            f"{stats.peak_dbfs:.0f} dBFS)",
            evidence,
            guide.fix("audio_level", device=device.name, detail=f"level {stats.rms_dbfs:.0f} dBFS"),
        )
    at = (
        "at 24 kHz"
        if rate == PROBE_RATE_HZ
        else f"at {rate} Hz (it does not open at 24 kHz: resample, see `check sample-rate`)"
    )
    return passed(
        f"{name} records {at}: {stats.rms_dbfs:.0f} dBFS RMS, peak {stats.peak_dbfs:.0f} dBFS",
        evidence,
    )


def _real_sources(device: DeviceInfo, loopback: str | None = None) -> list[str] | None:
    """The server's sources that are not `.monitor`s, when `device` routes to a server;
    the source just found to be a loopback (a remap of a monitor) is not one either."""
    from doctor.devices.choose import server_names
    from doctor.devices.soundserver import routed_through_server

    if not routed_through_server(device.name, device.hostapi):
        return None
    names = server_names("input")
    return [n for n in names if not n.endswith(".monitor") and n != loopback] if names else None


# --- sample-rate --------------------------------------------------------------------------------


def resample_hint(kind: Kind, device_hz: int, target_hz: int = PROBE_RATE_HZ) -> str:
    """The polyphase call an app needs around a device stuck at `device_hz`: capture goes
    device -> 24 kHz, playback 24 kHz -> device."""
    g = math.gcd(device_hz, target_hz)
    if kind == "input":
        return f"mic_24k = scipy.signal.resample_poly(mic, {target_hz // g}, {device_hz // g})"
    return f"out = scipy.signal.resample_poly(reply_24k, {device_hz // g}, {target_hz // g})"


def _probe_kind(spec: str | None, kind: Kind) -> dict[str, Any]:
    """Resolve, open at 24 kHz mono int16 moving a little audio, list accepted rates."""
    from doctor.devices.portaudio import DeviceError, accepted_rates, exercise, resolve_device

    device = resolve_device(spec, kind)
    out: dict[str, Any] = {
        "device": device,
        "error": None,
        "accepted": accepted_rates(device, kind),
    }
    try:
        exercise(device, kind, PROBE_RATE_HZ)
    except DeviceError as err:
        out["error"] = err
    return out


def _evidence(kind: Kind, probe: dict[str, Any]) -> dict[str, Any]:
    device: DeviceInfo = probe["device"]
    err: DeviceError | None = probe["error"]
    ev = {f"{kind}_{k}": v for k, v in device.evidence().items()}
    ev[f"{kind}_opens_at_24000_hz"] = err is None
    ev[f"{kind}_accepted_rates_hz"] = probe["accepted"]
    if err is not None:
        ev[f"{kind}_error"] = err.message
        ev[f"{kind}_error_cause"] = err.cause
    return ev


def _rates_text(rates: list[int]) -> str:
    return ", ".join(f"{r} Hz" for r in rates) if rates else "none of the common rates"


@check(
    "sample-rate",
    "Input and output open at 24 kHz mono int16",
    needs=("environment",),
    timeout=30.0,
)
async def sample_rate(ctx: Context) -> Result:
    """Open the input and output devices at exactly 24000 Hz mono int16 (separate streams)."""
    async with device_lock(ctx):
        return await _sample_rate(ctx)


async def _sample_rate(ctx: Context) -> Result:
    from doctor.devices.portaudio import DeviceError

    probes: dict[Kind, dict[str, Any]] = {}
    missing: dict[Kind, DeviceError] = {}
    evidence: dict[str, Any] = {"probe_rate_hz": PROBE_RATE_HZ}
    wanted: tuple[tuple[Kind, str | None], ...] = (
        ("input", ctx.input_device),
        ("output", ctx.output_device),
    )
    from doctor.devices import soundserver

    # Asked before any stream opens: a sound server may move an idle device's rate to
    # suit the first stream, which would hide the rate the device runs at for the app.
    facts = await run_blocking(soundserver.query)
    for kind, spec in wanted:
        try:
            probes[kind] = await run_blocking(_probe_kind, spec, kind)
            device = probes[kind]["device"]
            routed = soundserver.routed_through_server(device.name, device.hostapi)
            on_server = None if facts is None else facts.source if kind == "input" else facts.sink
            probes[kind]["server"] = on_server if routed else None
        except DeviceError as exc:
            if exc.cause in ("portaudio_missing", "server_unresponsive"):
                return _device_failure(exc, kind)
            missing[kind] = exc
            continue
        evidence.update(_evidence(kind, probes[kind]))
    if missing:
        kind, first = next(iter(missing.items()))
        if len(missing) == 2:
            first = DeviceError(
                first.cause, f"{first.message}; {missing['output'].message}", first.evidence
            )
        result = _device_failure(first, kind)
        result.evidence.update(evidence)
        return result

    failed = [(k, p) for k, p in probes.items() if p["error"] is not None]
    rate_bad = [(k, p) for k, p in failed if p["error"].cause == "rate_unsupported"]
    if rate_bad:
        kind, probe = rate_bad[0]
        device = probe["device"]
        accepted = probe["accepted"]
        evidence["suggested_resample"] = [
            resample_hint(k, max(p["accepted"])) for k, p in rate_bad if p["accepted"]
        ]
        which = " and ".join(f"{k} {p['device'].name!r}" for k, p in rate_bad)
        narrow = bool(accepted) and max(accepted) in BLUETOOTH_HFP_RATES_HZ
        return problem(
            Status.FAIL,
            "rate_unsupported",
            f"{which} cannot open at 24000 Hz mono int16; "
            f"{device.name!r} accepts {_rates_text(accepted)}"
            + (
                " (a telephone rate, as a Bluetooth hands-free profile runs: speech above "
                f"{max(accepted) // 2} Hz is lost)"
                if narrow
                else ""
            ),
            evidence,
            guide.fix("sample_rate", device=device.name, rates=_rates_text(accepted)),
        )
    if failed:
        kind, probe = failed[0]
        result = _device_failure(probe["error"], kind)
        result.evidence.update(evidence)
        return result

    return _native_rate_result(probes, evidence)


def _narrow_rate_kind(server: ServerDevice | None) -> str:
    """What an 8/16 kHz device is, as far as the host tells: only a Bluetooth device (or an
    unknown bus) is called a hands-free profile; a USB or built-in one is named as such."""
    if server is not None and server.hands_free:
        return "a Bluetooth hands-free (telephone) profile"
    bus = server.bus if server is not None else None
    if bus and bus != "bluetooth":
        return f"a {bus.upper() if len(bus) <= 4 else bus} device set to a telephone rate"
    return "a telephone rate, as a Bluetooth hands-free profile runs"


def _narrow_harm(hfp: list[str]) -> str:
    """What a telephone rate costs: the input's hurts recognition; the output's only makes
    the agent's voice sound muffled (it never reaches the recogniser)."""
    if any(h.startswith("input") for h in hfp):
        return "which hurts recognition even after resampling"
    return "so the agent's voice sounds muffled (recognition is not affected)"


def _native_rate_result(probes: dict[Kind, dict[str, Any]], evidence: dict[str, Any]) -> Result:
    """Both directions opened at 24 kHz: pass, unless the hardware behind one of them runs
    at a hands-free rate (8/16 kHz). A device at 44.1/48 kHz that the host resamples is the
    normal, healthy desktop: its rate is evidence, not a warning."""
    natives: dict[Kind, tuple[float, str]] = {}
    hfp: list[str] = []
    narrow_hz = 24000.0
    for kind, probe in probes.items():
        device: DeviceInfo = probe["device"]
        server = probe.get("server")
        rate, where = float(device.default_samplerate_hz), "PortAudio's default rate"
        if server is not None and server.rate_hz:
            rate, where = float(server.rate_hz), f"the sound server's {server.name!r}"
            evidence.update(server.evidence(f"{kind}_"))
        natives[kind] = (rate, where)
        evidence[f"{kind}_native_rate_hz"] = rate
        evidence[f"{kind}_native_rate_from"] = where
        label = server.description if server is not None else device.name
        if round(rate) in BLUETOOTH_HFP_RATES_HZ or (server is not None and server.hands_free):
            hfp.append(f"{kind} {label!r} runs at {rate:g} Hz ({_narrow_rate_kind(server)})")
            narrow_hz = min(narrow_hz, rate)
    if hfp:
        kind = next(k for k in probes if any(h.startswith(k) for h in hfp))
        device = probes[kind]["device"]
        return problem(
            Status.WARN,
            "native_rate_differs",
            f"both open at 24000 Hz, but {'; '.join(hfp)}: a telephone rate loses "
            f"everything above {narrow_hz / 2:g} Hz, {_narrow_harm(hfp)}",
            evidence,
            guide.fix(
                "native_rate",
                device=device.name,
                rates=f"{natives[kind][0]:g} Hz",
                detail="; ".join(hfp),
            ),
        )
    rates = {f"{r:g}" for r, _ in natives.values()}
    how = (
        "natively at 24000 Hz"
        if rates == {"24000"}
        else "natively at " + " and ".join(sorted(rates)) + " Hz, resampled by the host"
    )
    return passed(f"input and output open at 24000 Hz mono int16 ({how})", evidence)
