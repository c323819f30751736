"""How the live echo check puts playback and capture on one timeline, fed synthetic
callback timestamps (what PortAudio hands the callbacks; no device involved)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from doctor.checks.echo import _Recorder

RATE = 24000
BLOCK = 480  # 20 ms callbacks


def _run(out_clock_offset_s: float, out_latency_s: float = 0.040) -> _Recorder:
    """Ten callbacks each way; capture sample 0 at stream time 100.0 s, probe sample 0
    reaches the DAC `out_latency_s` after capture started (same clock unless offset)."""
    rec = _Recorder(np.zeros(RATE, np.int16), RATE, out_rate=RATE)
    for k in range(10):
        now = 100.0 + (k + 1) * BLOCK / RATE
        t_in = SimpleNamespace(currentTime=now, inputBufferAdcTime=now - BLOCK / RATE)
        rec.on_input(np.zeros((BLOCK, 1), np.int16), BLOCK, t_in, None)
        t_out = SimpleNamespace(
            currentTime=now + out_clock_offset_s,
            outputBufferDacTime=100.0 + out_latency_s + k * BLOCK / RATE + out_clock_offset_s,
        )
        rec.on_output(np.zeros((BLOCK, 1), np.int16), BLOCK, t_out, None)
    return rec


def test_shared_clock_uses_the_portaudio_timestamps() -> None:
    rec = _run(out_clock_offset_s=0.0)
    assert rec.start_index() == pytest.approx(0.040 * RATE, abs=1)
    assert rec.timeline == "portaudio timestamps"


def test_streams_on_separate_clocks_fall_back_to_callback_arrival() -> None:
    rec = _run(out_clock_offset_s=1000.0)  # the output stream's clock started elsewhere
    rec.start_index()
    assert rec.timeline == "callback arrival"
