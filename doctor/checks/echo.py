"""`echo`: play a short test sound and listen for it on the microphone.

The shell around `doctor.audio.echo.probe`: plays the two-sweep probe on the output device
while recording the input on a separate stream (full-duplex streams can return silent
zeros through ALSA plugins), puts both on one timeline with PortAudio's DAC/ADC timestamps
(the callbacks' arrival clock when the host API has none), and hands the pair to the pure
analysis.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from doctor.context import Context
from doctor.registry import check
from doctor.result import Result, Status, problem
from doctor.runner import run_blocking

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from doctor.audio.echo.probe import Probe
    from doctor.devices.portaudio import DeviceError, DeviceInfo, Kind

API_RATE_HZ = 24000
START_TIMEOUT_S = 5.0
CALL_TIMEOUT_S = 10.0  # opening/starting/stopping a stream: milliseconds unless the server is stuck
AFTER_S = 0.5  # recorded beyond the probe's end, for late echoes at the window's edge
T = TypeVar("T")
SHARED_CLOCK_MAX_S = 0.25  # paired callbacks further apart than this: separate clocks


class PlaybackError(Exception):
    """The probe did not (fully) play; the message says what happened."""


@dataclass
class _Recorder:
    """State shared with the PortAudio callbacks (they run on PortAudio's threads)."""

    probe: NDArray[np.int16]
    in_rate: int
    chunks: list[NDArray[np.int16]] = field(default_factory=list)
    arrivals: list[tuple[float, int]] = field(default_factory=list)  # (clock, frames so far)
    frames_in: int = 0
    out_pos: int = 0
    out_started_at: float | None = None
    needed_frames: int | None = None
    out_rate: int = 24000
    # (callback time, stream-clock time of capture sample 0 / of probe sample 0)
    adc_starts: list[tuple[float, float]] = field(default_factory=list)
    dac_starts: list[tuple[float, float]] = field(default_factory=list)
    timeline: str = ""  # how capture and playback were put on one timeline
    input_flags: int = 0
    output_flags: int = 0
    first_input: threading.Event = field(default_factory=threading.Event)
    played: threading.Event = field(default_factory=threading.Event)
    enough: threading.Event = field(default_factory=threading.Event)

    def on_input(self, indata: Any, frames: int, t: Any, status: Any) -> None:
        now = time.monotonic()
        self.adc_starts.append(
            (float(t.currentTime), float(t.inputBufferAdcTime) - self.frames_in / self.in_rate)
        )
        self.chunks.append(indata[:, 0].copy())
        self.frames_in += frames
        self.arrivals.append((now, self.frames_in))
        if status:
            self.input_flags += 1
        self.first_input.set()
        if self.needed_frames is not None and self.frames_in >= self.needed_frames:
            self.enough.set()

    def on_output(self, outdata: Any, frames: int, t: Any, status: Any) -> None:
        if self.out_started_at is None:
            self.out_started_at = time.monotonic()
        self.dac_starts.append(
            (float(t.currentTime), float(t.outputBufferDacTime) - self.out_pos / self.out_rate)
        )
        if status:
            self.output_flags += 1
        n = max(0, min(frames, len(self.probe) - self.out_pos))
        outdata[:n, 0] = self.probe[self.out_pos : self.out_pos + n]
        outdata[n:] = 0
        self.out_pos += n

    def start_index(self) -> float:
        """Capture sample index at which the probe's first sample left the speaker.

        From PortAudio's own timestamps when the host API gives them: the stream-clock
        time of probe sample 0 (DAC) minus that of capture sample 0 (ADC), each taken
        from callbacks that ran at the same moment, because the two estimates wander
        together (by 50 ms over a run through a PulseAudio loopback) while their
        difference stays put. Callback arrival times are the fallback: they ignore the
        output buffer and mislead when a source delivers in bursts (a PulseAudio
        loopback: 60-135 ms off, where the timestamps stay within 5 ms).
        """
        import numpy as np

        adc = np.asarray([a for a in self.adc_starts if a[0] > 0 and a[1] > 0])
        dac = np.asarray([d for d in self.dac_starts if d[0] > 0 and d[1] > 0])
        if len(adc) >= 2 and len(dac) >= 2:
            j = np.clip(np.searchsorted(adc[:, 0], dac[:, 0]), 0, len(adc) - 1)
            # Paired callbacks ran within a buffer of each other, unless the two streams'
            # clocks differ (a host API may give each stream its own): then do not trust them.
            if float(np.median(np.abs(dac[:, 0] - adc[j, 0]))) < SHARED_CLOCK_MAX_S:
                self.timeline = "portaudio timestamps"
                return float(np.median(dac[:, 1] - adc[j, 1])) * self.in_rate
        assert self.out_started_at is not None
        self.timeline = "callback arrival"
        return self.capture_index_at(self.out_started_at)

    def capture_index_at(self, t: float) -> float:
        """Capture sample index at clock time t. A callback runs when its last sample is
        in, or later: the earliest-looking callback is the truest."""
        offset = max(count - self.in_rate * when for when, count in self.arrivals)
        return offset + self.in_rate * t


def _play_and_record(
    inp: DeviceInfo, out: DeviceInfo, in_rate: int, probe: Probe
) -> tuple[NDArray[np.int16], dict[str, Any]]:
    """Blocking. Returns the capture aligned so that its sample 0 is the probe's start;
    what the C libraries printed meanwhile (underruns) is counted into the evidence."""
    from doctor.devices.chatter import quiet_libraries

    with quiet_libraries() as chatter:
        captured, evidence = _play_and_record_quietly(inp, out, in_rate, probe)
    evidence.update(chatter.evidence())
    return captured, evidence


def _play_and_record_quietly(
    inp: DeviceInfo, out: DeviceInfo, in_rate: int, probe: Probe
) -> tuple[NDArray[np.int16], dict[str, Any]]:
    import numpy as np

    from doctor.devices import portaudio as dev

    sd = dev.load_sounddevice()
    samples = np.asarray(np.round(probe.samples * 32767), dtype=np.int16)
    rec = _Recorder(samples, in_rate, out_rate=probe.rate_hz)
    done = threading.Event()
    evidence: dict[str, Any] = {}
    try:
        istream = _bounded(
            lambda: sd.InputStream(
                device=inp.index,
                samplerate=in_rate,
                channels=1,
                dtype="int16",
                callback=rec.on_input,
            ),
            "opening the input stream",
            inp,
        )
    except dev.DeviceError:
        raise
    except Exception as exc:
        raise dev.open_error(exc, sd, inp, "input", in_rate) from exc
    _bounded(istream.start, "starting the input stream", inp)
    try:
        start = _record_around_playback(sd, istream, inp, out, probe, rec, done, evidence)
    except dev.DeviceError as exc:
        if exc.cause != "server_unresponsive":  # else closing would block as well: abandon it
            _close(istream, "input", inp)
        raise
    except BaseException:
        _close(istream, "input", inp)
        raise
    _close(istream, "input", inp)
    captured = np.concatenate(rec.chunks) if rec.chunks else np.zeros(0, dtype=np.int16)
    first = max(0, round(start))
    evidence.update(
        {
            "input_status_flags": rec.input_flags,
            "output_status_flags": rec.output_flags,
            "capture_lead_s": round(start / in_rate, 3),
            "timeline": rec.timeline,
        }
    )
    return captured[first : first + int((probe.duration_s + AFTER_S) * in_rate)], evidence


def _record_around_playback(
    sd: Any,
    istream: Any,
    inp: DeviceInfo,
    out: DeviceInfo,
    probe: Probe,
    rec: _Recorder,
    done: threading.Event,
    evidence: dict[str, Any],
) -> float:
    """With the input running: play the probe, record until its end plus AFTER_S; returns
    the capture index of the probe's start."""
    from doctor.devices import portaudio as dev

    if not rec.first_input.wait(START_TIMEOUT_S):
        raise dev.DeviceError(
            "open_failed",
            f"input device {inp.name!r} delivered no audio within {START_TIMEOUT_S:g} s",
        )
    try:
        ostream = _bounded(
            lambda: sd.OutputStream(
                device=out.index,
                samplerate=probe.rate_hz,
                channels=1,
                dtype="int16",
                callback=_stopping(rec, sd),
                finished_callback=done.set,
                latency=0.1,
            ),
            "opening the output stream",
            out,
        )
    except dev.DeviceError:
        raise
    except Exception as exc:
        raise PlaybackError(
            f"output device {out.name!r} did not open at {probe.rate_hz} Hz: {exc}"
        ) from exc
    try:
        _bounded(ostream.start, "starting the output stream", out)
        if not done.wait(probe.duration_s + START_TIMEOUT_S):
            raise PlaybackError(
                f"playback on {out.name!r} did not finish within "
                f"{probe.duration_s + START_TIMEOUT_S:g} s "
                f"({rec.out_pos} of {len(rec.probe)} samples written)"
            )
        evidence["output_latency_ms"] = round(float(ostream.latency) * 1000, 1)
    finally:
        _close(ostream, "output", out)
    if rec.out_started_at is None:
        raise PlaybackError(f"output device {out.name!r} never asked for audio")
    start = rec.start_index()
    rec.needed_frames = int(start + (probe.duration_s + AFTER_S) * rec.in_rate)
    if rec.frames_in < rec.needed_frames and not rec.enough.wait(
        probe.duration_s + START_TIMEOUT_S
    ):
        raise dev.DeviceError(
            "open_failed", f"input device {inp.name!r} stopped delivering audio during the test"
        )
    evidence["input_latency_ms"] = round(float(istream.latency) * 1000, 1)
    return start


def _bounded(fn: Callable[[], T], what: str, device: DeviceInfo) -> T:
    """`fn()` within CALL_TIMEOUT_S. Opening, starting and stopping a stream take
    milliseconds, but a sound server that froze or died mid-stream never lets them return
    (the stuck thread is abandoned; doctor/devices/teardown.py bounds the exit too)."""
    from doctor.devices import portaudio as dev
    from doctor.devices.teardown import Stuck, call_within

    try:
        return call_within(fn, CALL_TIMEOUT_S, "echo-stream")
    except Stuck:
        raise dev.DeviceError(
            "server_unresponsive",
            f"the sound server stopped answering: {what} of {device.name!r} did not "
            f"finish within {CALL_TIMEOUT_S:g} s",
        ) from None


def _close(stream: Any, kind: str, device: DeviceInfo) -> None:
    """Stop, then close (stop first: PortAudio may hang closing a running stream)."""

    def stop_and_close() -> None:
        try:
            stream.stop()
        finally:
            stream.close()

    _bounded(stop_and_close, f"closing the {kind} stream", device)


def _stopping(rec: _Recorder, sd: Any) -> Any:
    def callback(outdata: Any, frames: int, t: Any, status: Any) -> None:
        rec.on_output(outdata, frames, t, status)
        if rec.out_pos >= len(rec.probe):
            raise sd.CallbackStop

    return callback


def _rate_for(device: DeviceInfo, kind: Kind) -> int:
    """24 kHz when the device takes it, else its own default rate (the analysis resamples)."""
    from doctor.devices import portaudio as dev

    if dev.opens_at(device, kind, API_RATE_HZ) is None:
        return API_RATE_HZ
    return int(device.default_samplerate_hz)


def _announce(out: DeviceInfo, seconds: float) -> None:
    sys.stderr.write(
        f"echo: playing a {seconds:.0f} s test sound on {out.name!r}; please "
        "stay quiet until it ends\n"
    )
    sys.stderr.flush()


def _no_capture(
    exc: DeviceError, evidence: dict[str, Any], entry: str, **placeholders: str
) -> Result:
    from doctor import guide

    return problem(
        Status.FAIL,
        "no_capture",
        exc.message,
        {**evidence, **exc.evidence},
        guide.fix(entry, detail=exc.message, **placeholders),
    )


@check(
    "echo",
    "Speaker-to-microphone echo",
    needs=("microphone",),
    # A backstop for a driver call that never returns: every wait inside has its own bound.
    # The run is ~8 s of real-time audio plus a few seconds of analysis, but the analysis
    # stretches on a loaded machine (at load 14 on 2 cores: 1.8 s of CPU took 19.5 s, whole
    # runs 36-62 s, and 45 s ran out in 4 of 9), and the wait for another audio check's
    # device lock counts too: a slow machine gets its measurement, not a timeout.
    timeout=120.0,
    # an input that opens is all the probe needs: a loopback is silent until it plays
    runs_despite=("silent_input", "loopback_input"),
)
async def echo(ctx: Context) -> Result:
    """Plays two test sweeps and measures whether, when and how loud the mic hears them."""
    from doctor.checks.audio_devices import device_lock

    async with device_lock(ctx):
        return await _echo(ctx)


async def _echo(ctx: Context) -> Result:
    from doctor.audio.echo.loopback import looks_like_loopback
    from doctor.audio.echo.probe import analyse_probe, make_probe
    from doctor.audio.echo.report import echo_result, playback_failed
    from doctor.devices import portaudio as dev
    from doctor.devices.loopback import input_loopback_facts
    from doctor.devices.serverprobe import server_unresponsive

    evidence: dict[str, Any] = {"mode": "live probe"}
    try:
        inp = await run_blocking(dev.resolve_device, ctx.input_device, "input")
    except dev.DeviceError as exc:
        if exc.cause == "server_unresponsive":
            return server_unresponsive(exc.message, {**evidence, **exc.evidence})
        return _no_capture(exc, evidence, "audio_device")
    evidence.update(inp.evidence("input_"))
    evidence.update(await run_blocking(input_loopback_facts, inp))
    try:
        out = await run_blocking(dev.resolve_device, ctx.output_device, "output")
    except dev.DeviceError as exc:
        return playback_failed(exc.message, {**evidence, **exc.evidence, "device_cause": exc.cause})
    evidence.update(out.evidence("output_"))
    in_rate = await run_blocking(_rate_for, inp, "input")
    out_rate = await run_blocking(_rate_for, out, "output")
    probe = make_probe(out_rate)
    evidence.update(
        {"input_rate_hz": in_rate, "output_rate_hz": out_rate, "probe_duration_s": probe.duration_s}
    )
    _announce(out, probe.duration_s)
    try:
        captured, io_facts = await run_blocking(_play_and_record, inp, out, in_rate, probe)
    except PlaybackError as exc:
        return playback_failed(str(exc), evidence)
    except dev.DeviceError as exc:
        if exc.cause == "server_unresponsive":
            return server_unresponsive(exc.message, {**evidence, **exc.evidence})
        return _no_capture(exc, evidence, "mic_permission", device=inp.name)
    evidence.update(io_facts)
    analysis = await run_blocking(analyse_probe, probe, captured, in_rate)
    evidence.update(analysis.evidence())
    by_behaviour = looks_like_loopback(analysis.analysis)
    evidence["loopback_by_behaviour"] = by_behaviour
    if by_behaviour and not evidence.get("loopback_input"):
        evidence["loopback_input"] = True
        evidence["loopback_reason"] = (
            f"{inp.name!r} was digital silence at rest and then a lossless copy of the probe"
        )
    return echo_result(analysis.analysis, evidence)
