"""The sandbox's recording of a session: left = what the client sent, right = the agent.

As the service's artifact (session-formats.md §4): stereo Ogg/Opus that decodes at 48 kHz,
about the session's length + 0.3 s. `StereoTrack` is the pure part (two channels placed on
one clock); `Recorder` streams the final part of it to the file through libsndfile
(`soundfile`), so a long session costs a second or so of memory, not the whole recording.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

RATE = 24000  # the sandbox's working rate (the API's PCM rate)
FILE_RATE = 48000  # what the vendor's recordings decode at
FLUSH_S = 0.5  # write once this much is final
JITTER_S = 0.5  # arrival jitter absorbed before a chunk counts as after a pause
Int16 = npt.NDArray[np.int16]


class StereoTrack:
    """Two int16 channels on a shared sample clock (0 = the recording's start).

    A chunk goes where its time says, or right after the channel's previous chunk when
    that is later (a client sending faster than real time is laid end to end, not mixed
    over itself) by at most JITTER_S; beyond that the chunk goes back to its arrival time.
    Everything before `now` that no channel can still write is final.
    """

    def __init__(self, rate: int = RATE) -> None:
        self.rate = rate
        self.base = 0  # absolute index of the first sample still held
        self.held: list[Int16] = [np.zeros(0, np.int16), np.zeros(0, np.int16)]
        self.pointer = [0, 0]  # absolute index after each channel's last chunk
        self.jitter = round(JITTER_S * rate)

    def place(self, channel: int, at_s: float, samples: Int16) -> None:
        at = round(at_s * self.rate)
        pointer = max(self.pointer[channel], self.base)
        # A jitter buffer: a chunk a little late continues the stream; a real gap (the
        # client paused) is kept as silence. A channel laid end to end that has run more
        # than the allowance ahead of arrival (a burst after a stall) goes back to the
        # arrival time: otherwise the stall would stay as a lasting offset between the
        # channels (the echo delay read from the recording would include it).
        if at - pointer > self.jitter:
            start = at
        elif pointer - at > self.jitter:
            start = max(at, self.base)
        else:
            start = pointer
        end = start + len(samples)
        held = self.held[channel]
        need = end - self.base
        if len(held) < need:
            held = np.concatenate([held, np.zeros(need - len(held), np.int16)])
        held[start - self.base : end - self.base] = samples
        self.held[channel] = held
        self.pointer[channel] = end

    def final_until(self, now_s: float) -> int:
        """Absolute index before which no channel can still change."""
        now = round(now_s * self.rate)
        return max(self.base, min(max(p, now) for p in self.pointer))

    def take(self, until: int) -> npt.NDArray[np.int16]:
        """Samples [base, until) as an (n, 2) array, released from memory."""
        n = max(0, until - self.base)
        out = np.zeros((n, 2), np.int16)
        for ch in (0, 1):
            part = self.held[ch][:n]
            out[: len(part), ch] = part
            self.held[ch] = self.held[ch][n:]
        self.base += n
        return out

    @property
    def held_s(self) -> float:
        return max(len(h) for h in self.held) / self.rate


class Upsampler:
    """24 -> 48 kHz, streaming: zero-stuffing and a low-pass FIR whose state carries over
    chunk boundaries (no clicks where blocks meet)."""

    def __init__(self, channels: int = 2, taps: int = 63) -> None:
        from scipy import signal

        self._signal = signal
        self.fir = signal.firwin(taps, 0.5) * 2.0
        self.state = np.zeros((taps - 1, channels))

    def __call__(self, block: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
        stuffed = np.zeros((len(block) * 2, block.shape[1]))
        stuffed[::2] = block / 32768.0
        out, self.state = self._signal.lfilter(self.fir, [1.0], stuffed, axis=0, zi=self.state)
        clipped: npt.NDArray[np.float32] = np.clip(out, -1.0, 1.0).astype(np.float32)
        return clipped


def to_rate(samples: Int16, rate: int) -> Int16:
    """Input audio at the working rate (G.711 arrives at 8 kHz)."""
    if rate == RATE or len(samples) == 0:
        return samples
    from scipy import signal

    up = signal.resample_poly(samples.astype(np.float64), RATE, rate)
    out: Int16 = np.clip(np.round(up), -32768, 32767).astype(np.int16)
    return out


class Recorder:
    """One session's recording, written as it goes. `t0` is the epoch second of sample 0."""

    def __init__(self, path: str, t0: float) -> None:
        import soundfile

        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = path
        self.t0 = t0
        self.track = StereoTrack()
        self.upsample = Upsampler()
        self.file: Any = soundfile.SoundFile(path, "w", FILE_RATE, 2, format="OGG", subtype="OPUS")
        self.closed = False

    def user(self, samples: Int16, rate: int, at: float) -> None:
        """What the client sent in `input.audio`, decoded, as it arrived at `at`."""
        self._place(0, to_rate(samples, rate), at)

    def agent(self, samples: Int16, at: float) -> None:
        """A `reply.audio` chunk (24 kHz PCM) as it went out at `at`."""
        self._place(1, samples, at)

    def _place(self, channel: int, samples: Int16, at: float) -> None:
        if self.closed:
            return
        self.track.place(channel, at - self.t0, samples)
        if self.track.held_s >= FLUSH_S:
            self._write(self.track.final_until(at - self.t0))

    def _write(self, until: int) -> None:
        block = self.track.take(until)
        if len(block):
            self.file.write(self.upsample(block))

    def close(self, end: float) -> None:
        """Pad or finish at `end` (epoch seconds) and close the file."""
        if self.closed:
            return
        self.closed = True
        try:
            # The recording ends with the session: a client that caught up after a stall
            # in a burst may have run its channel past that; the overrun is dropped.
            self._write(max(round((end - self.t0) * RATE), self.track.base))
            self._write_tail()
        finally:
            self.file.close()

    def _write_tail(self) -> None:
        """Flush the FIR's delay line so the last few samples are in the file too."""
        self.file.write(self.upsample(np.zeros((32, 2), np.int16)))


def warm_up() -> None:
    """Import what a recording needs, so the first session does not stall the loop."""
    import soundfile  # noqa: F401
    from scipy import signal  # noqa: F401
