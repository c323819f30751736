"""Fixtures of the browser tests: a plain-ws sandbox (browsers cannot be told to trust a
test CA the way Python can) and private PulseAudio setups for the microphone and speaker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pulse_fixture import PulseServer, play_into, private_pulse, write_noise_wav

ROOM_SINK = "room"
ROOM_MIC = "room_mic"


@dataclass
class PulseSetup:
    server: PulseServer
    env: dict[str, str]  # the browser's and the CLI's environment


@pytest.fixture(scope="module")
def room_pulse() -> Iterator[PulseSetup]:
    """A clean setup: the microphone hears quiet room noise, not the speaker (`probe`)."""
    with private_pulse() as pa:
        pa.load_module("module-null-sink", f"sink_name={ROOM_SINK}", "rate=48000", "channels=1")
        pa.load_module(
            "module-remap-source", f"master={ROOM_SINK}.monitor", f"source_name={ROOM_MIC}"
        )
        # Chromium opens the server's default source, not $PULSE_SOURCE
        pa.pactl("set-default-source", ROOM_MIC)
        pa.pactl("set-default-sink", "probe")
        noise = write_noise_wav(pa.directory / "room.wav", seconds=600, rms=0.03)
        with play_into(pa, noise, sink=ROOM_SINK):
            yield PulseSetup(pa, pa.client_env(PULSE_SOURCE=ROOM_MIC))


@pytest.fixture(scope="module")
def loop_pulse() -> Iterator[PulseSetup]:
    """An echo loop: the microphone is the speaker's monitor (a digital, loss-free loop)."""
    with private_pulse() as pa:
        pa.pactl("set-default-source", "probe_mic")
        pa.pactl("set-default-sink", "probe")
        yield PulseSetup(pa, pa.client_env())


@pytest.fixture
def plain_sandbox(sandbox_process_factory: Callable[..., Any]) -> Callable[..., Any]:
    """`agent-doctor sandbox --no-tls ARGS` (ws:// and http://), stopped at teardown."""

    def make(*args: str) -> Any:
        return sandbox_process_factory("--no-tls", *args)

    return make
