"""Real sound servers for tests: a private PulseAudio per session, a JACK dummy at 48 kHz.

Nothing is global: each daemon runs in the foreground under a temporary directory, the test
owns its PID, and clients find it through the environment (`PULSE_SERVER`, `PULSE_SINK`,
`PULSE_SOURCE`, `JACK_DEFAULT_SERVER`). PortAudio enumerates devices once, at
`import sounddevice`, so run the code under test as a subprocess with `env` (`run_cli`).

Without `pulseaudio`/`pactl`/`jackd` a test skips locally and fails in CI (tests/realparts.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
import warnings
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from clirun import cli_env
from clirun import run_cli as _run_cli
from realparts import need_tool, stop_process

SINK = "probe"
SOURCE = "probe_mic"  # a remap of the probe's monitor: a loopback of the output
# A microphone in a room: what is played into VOICE reaches VOICE_MIC, a remap whose
# properties say "sound card" as a USB microphone's would (not a monitor, by name or chain)
VOICE = "voice"
VOICE_MIC = "voice_mic"
# Variables a developer's own session may set that would leak into the process under test.
_SOUND_VARS = (
    "PULSE_SERVER",
    "PULSE_SINK",
    "PULSE_SOURCE",
    "PULSE_COOKIE",
    "PULSE_CLIENTCONFIG",
    "PULSE_RUNTIME_PATH",
    "PULSE_STATE_PATH",
    "JACK_DEFAULT_SERVER",
    "ALSA_CONFIG_PATH",
    "AUDIODEV",
    "XDG_RUNTIME_DIR",
)


# How long a daemon may take to start answering. Generous: a loaded CI machine is slow, and
# every wait also watches the daemon, so one that died fails at once, not at the deadline.
STARTUP_S = 60.0


def _wait_until(
    predicate: Any,
    timeout_s: float,
    what: str,
    proc: subprocess.Popen[Any] | None = None,
    log: Path | None = None,
) -> None:
    """Poll an external daemon with a deadline (the only polling these tests do)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            err = log.read_text(errors="replace") if log and log.exists() else ""
            raise RuntimeError(f"{what}: the daemon exited ({proc.returncode}): {err[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"{what}: not ready within {timeout_s:g} s")


def isolated_env(home: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The CLI's environment with no sound server of the developer's leaking in: HOME points to
    an empty folder (no ~/.asoundrc), JACK may not autostart."""
    env = cli_env()
    for var in _SOUND_VARS:
        env.pop(var, None)
    env.update(
        HOME=home,
        JACK_NO_START_SERVER="1",
        XDG_RUNTIME_DIR=home,
        JACK_DEFAULT_SERVER=f"none-{uuid.uuid4().hex[:8]}",
    )
    env.update(extra or {})
    return env


@dataclass
class PulseServer:
    """A running private PulseAudio: `env` for clients, `pactl(...)` to load modules."""

    directory: Path
    socket: Path
    proc: subprocess.Popen[Any]
    env: dict[str, str] = field(default_factory=dict)

    def pactl(self, *args: str) -> str:
        out = subprocess.run(
            ["pactl", *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        if out.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def load_module(self, name: str, *args: str) -> int:
        return int(self.pactl("load-module", name, *args))

    def unload_module(self, module_id: int) -> None:
        self.pactl("unload-module", str(module_id))

    def client_env(self, **overrides: str) -> dict[str, str]:
        """The CLI environment pointed at this server (overrides: PULSE_SOURCE=... etc.)."""
        return {**self.env, **overrides}

    def mic_env(self, **overrides: str) -> dict[str, str]:
        """The CLI environment with a microphone (VOICE_MIC) as the default input."""
        return self.client_env(PULSE_SOURCE=VOICE_MIC, **overrides)

    def sink_state(self, sink: str = SINK) -> str:
        for line in self.pactl("list", "short", "sinks").splitlines():
            cols = line.split("\t")
            if len(cols) >= 5 and cols[1] == sink:
                return cols[4]
        return "MISSING"


@contextlib.contextmanager
def private_pulse(rate_hz: int = 48000) -> Iterator[PulseServer]:
    """`pulseaudio -n` in the foreground with a null sink `probe` and a remapped source
    `probe_mic` of its monitor (a true loop: what is played into the sink is recorded), and
    a microphone `voice_mic` that hears what is played into the sink `voice`."""
    need_tool("pulseaudio", "pactl")
    d = Path(tempfile.mkdtemp(prefix="doctor-pa-"))
    sock = d / "native"
    log = d / "pa.err"
    daemon_env = dict(
        os.environ,
        HOME=str(d),
        XDG_RUNTIME_DIR=str(d),
        XDG_CONFIG_HOME=str(d),
        PULSE_RUNTIME_PATH=str(d),
        PULSE_STATE_PATH=str(d),
    )
    cmd = [
        "pulseaudio",
        "-n",
        "--daemonize=no",
        "--exit-idle-time=-1",
        "--disallow-exit",
        # As root the daemon would take SCHED_RR threads under a 200 ms RLIMIT_RTTIME (soft =
        # hard: SIGKILL) and a CPU-load limiter; on a loaded CI machine either may kill it.
        "--realtime=no",
        "--high-priority=no",
        "--no-cpu-limit",
        "--use-pid-file=no",
        "--log-target=stderr",
        "--log-level=error",
        f"--load=module-native-protocol-unix socket={sock} auth-anonymous=1",
        f"--load=module-null-sink sink_name={SINK} rate={rate_hz} channels=1 "
        "sink_properties=device.description=Probe",
        f"--load=module-remap-source master={SINK}.monitor source_name={SOURCE} "
        "source_properties=device.description=ProbeMic",
        f"--load=module-null-sink sink_name={VOICE} rate={rate_hz} channels=1 "
        "sink_properties=device.description=Room",
        f"--load=module-remap-source master={VOICE}.monitor source_name={VOICE_MIC} "
        "source_properties='device.description=RoomMic device.class=sound "
        "device.master_device=usb-card'",
    ]
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, env=daemon_env, stdout=subprocess.DEVNULL, stderr=err)
    home = d / "home"
    home.mkdir()
    client = isolated_env(
        str(home), {"PULSE_SERVER": f"unix:{sock}", "PULSE_SINK": SINK, "PULSE_SOURCE": SOURCE}
    )
    server = PulseServer(d, sock, proc, client)
    try:

        def answers() -> bool:
            if not sock.exists():
                return False
            try:  # a pactl stuck on a daemon still starting: ask again, within the deadline
                cmd = ["pactl", "info"]
                return (
                    subprocess.run(cmd, env=client, capture_output=True, timeout=10).returncode == 0
                )
            except subprocess.TimeoutExpired:
                return False

        _wait_until(answers, STARTUP_S, "pulseaudio", proc, log)
        yield server
    finally:
        stop_process(proc)
        shutil.rmtree(d, ignore_errors=True)


class _SharedPulse:
    """The session's one PulseAudio, started again if it died, with its last words kept."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self._server: PulseServer | None = None

    def alive(self) -> PulseServer:
        if self._server is not None and self._server.proc.poll() is not None:
            log = self._server.directory / "pa.err"
            words = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            warnings.warn(
                f"the shared PulseAudio exited ({self._server.proc.returncode}), started "
                f"again: {words.strip() or 'no message'}",
                stacklevel=1,
            )
            self._server = None
        if self._server is None:
            self._server = self._stack.enter_context(private_pulse())
        return self._server


@pytest.fixture(scope="session")
def _shared_pulse() -> Iterator[_SharedPulse]:
    with contextlib.ExitStack() as stack:
        yield _SharedPulse(stack)


@pytest.fixture
def pulse_server(_shared_pulse: _SharedPulse) -> PulseServer:
    """One private PulseAudio for the whole test session (null sink `probe`, mic `probe_mic`);
    a daemon that died is named in a warning and replaced, so one death fails one test, not
    every later one."""
    return _shared_pulse.alive()


def write_tone_wav(
    path: Path,
    freq_hz: float = 1000.0,
    seconds: float = 30.0,
    rate_hz: int = 48000,
    amplitude: float = 0.5,
) -> Path:
    import numpy as np

    t = np.arange(int(seconds * rate_hz)) / rate_hz
    pcm = (amplitude * 32767 * np.sin(2 * np.pi * freq_hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(pcm.tobytes())
    return path


def write_noise_wav(
    path: Path, seconds: float = 30.0, rate_hz: int = 48000, rms: float = 0.03, seed: int = 7
) -> Path:
    """Room-like noise (white, tilted down by a one-pole low-pass): unlike a tone, a block
    the audio thread drops under CPU starvation leaves no click for the echo probe to match."""
    import numpy as np
    from scipy.signal import lfilter

    x = np.random.default_rng(seed).standard_normal(int(seconds * rate_hz))
    x = lfilter([1.0], [1.0, -0.9], x)
    pcm = (x * (rms * 32767 / np.sqrt(np.mean(x * x)))).clip(-32767, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes(pcm.tobytes())
    return path


@contextlib.contextmanager
def play_into(server: PulseServer, wav: Path, sink: str = SINK) -> Iterator[subprocess.Popen[Any]]:
    """`paplay` `wav` into `sink` until the block ends; returns once the sink is RUNNING."""
    need_tool("paplay")
    proc = subprocess.Popen(
        ["paplay", f"--device={sink}", str(wav)],
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until(lambda: server.sink_state(sink) == "RUNNING", STARTUP_S, "paplay", proc)
        yield proc
    finally:
        stop_process(proc)
        wav.unlink(missing_ok=True)


@contextlib.contextmanager
def tone_into(
    server: PulseServer,
    sink: str = SINK,
    freq_hz: float = 1000.0,
    amplitude: float = 0.5,
    seconds: float = 60.0,
) -> Iterator[subprocess.Popen[Any]]:
    """`paplay` a tone into `sink` until the block ends; returns once the sink is RUNNING."""
    wav = write_tone_wav(
        server.directory / f"tone-{uuid.uuid4().hex[:6]}.wav", freq_hz, seconds, amplitude=amplitude
    )
    with play_into(server, wav, sink) as proc:
        yield proc


@dataclass
class JackServer:
    name: str
    rate_hz: int
    proc: subprocess.Popen[Any]
    env: dict[str, str]


@contextlib.contextmanager
def jack_dummy(rate_hz: int = 48000) -> Iterator[JackServer]:
    """`jackd -d dummy -r RATE`: a device that opens at that one rate only."""
    need_tool("jackd", "jack_lsp")
    d = Path(tempfile.mkdtemp(prefix="doctor-jack-"))
    name = f"doctor{uuid.uuid4().hex[:8]}"
    log = d / "jack.log"
    home = d / "home"
    home.mkdir()
    env = isolated_env(str(home), {"JACK_DEFAULT_SERVER": name})
    daemon_env = dict(env, JACK_NO_AUDIO_RESERVATION="1")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                "jackd",
                "--no-realtime",
                "-n",
                name,
                "-d",
                "dummy",
                "-r",
                str(rate_hz),
                "-p",
                "1024",
                "-C",
                "2",
                "-P",
                "2",
            ],
            env=daemon_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def answers() -> bool:
            try:  # a jack_lsp stuck on a daemon still starting: ask again, within the deadline
                cmd = ["jack_lsp", "-s", name]
                return subprocess.run(cmd, env=env, capture_output=True, timeout=10).returncode == 0
            except subprocess.TimeoutExpired:
                return False

        _wait_until(answers, STARTUP_S, "jackd", proc, log)
        yield JackServer(name, rate_hz, proc, env)
    finally:
        stop_process(proc)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def jack_server() -> Iterator[JackServer]:
    """A JACK dummy server that runs at 48000 Hz only."""
    with jack_dummy(48000) as server:
        yield server


@pytest.fixture
def no_sound_env(tmp_path: Path) -> dict[str, str]:
    """No sound server, no ALSA card: what PortAudio sees on a headless box."""
    return isolated_env(str(tmp_path), {"PULSE_SERVER": f"unix:{tmp_path}/no-such-socket"})


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The real CLI as a subprocess with this sound environment (PortAudio enumerates at import)."""
    return _run_cli(*args, env=env, timeout=timeout)
