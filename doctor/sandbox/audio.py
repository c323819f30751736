"""The sandbox's ears and voice: turn detection on input, a synthetic voice for replies.

Pure numpy on sample arrays. Turn timing is counted in samples, not wall-clock time, so a
client that streams faster than real time still gets the same turn boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Int16 = npt.NDArray[np.int16]

# --- G.711 (audio/pcmu, audio/pcma) --------------------------------------------------------

_ULAW_BIAS = 0x84
_ULAW_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def ulaw_encode(samples: Int16) -> bytes:
    """ITU-T G.711 mu-law, as the reference implementation (14-bit magnitude) does it."""
    x = samples.astype(np.int64) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(x), 8159) + 0x21
    seg = np.searchsorted(_ULAW_ENDS, mag, side="left")
    uval = (np.minimum(seg, 7) << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0x0F)
    uval = np.where(seg >= 8, 0x7F, uval)
    return (uval ^ mask).astype(np.uint8).tobytes()


def ulaw_decode(data: bytes) -> Int16:
    u = ~np.frombuffer(data, dtype=np.uint8).astype(np.int64) & 0xFF
    exp = (u >> 4) & 7
    mant = u & 0x0F
    mag = (((mant << 3) + _ULAW_BIAS) << exp) - _ULAW_BIAS
    return np.where(u & 0x80, -mag, mag).astype(np.int16)


def alaw_encode(samples: Int16) -> bytes:
    """ITU-T G.711 A-law, as the reference implementation (13-bit magnitude) does it."""
    x = samples.astype(np.int64) >> 3
    mask = np.where(x >= 0, 0xD5, 0x55)
    mag = np.where(x >= 0, x, -x - 1)
    seg = np.searchsorted(_ALAW_ENDS, mag, side="left")
    low = np.where(seg < 2, (mag >> 1) & 0x0F, (mag >> np.clip(seg, 0, 7)) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | low)
    return (aval ^ mask).astype(np.uint8).tobytes()


def alaw_decode(data: bytes) -> Int16:
    a = np.frombuffer(data, dtype=np.uint8).astype(np.int64) ^ 0x55
    exp = (a >> 4) & 7
    mant = a & 0x0F
    mag = np.where(exp == 0, (mant << 4) + 8, ((mant << 4) + 0x108) << np.maximum(exp - 1, 0))
    return np.where(a & 0x80, mag, -mag).astype(np.int16)


def decode(data: bytes, encoding: str) -> tuple[Int16, int]:
    """Samples and rate of an `input.audio` payload in the session's input encoding."""
    if encoding == "audio/pcmu":
        return ulaw_decode(data), 8000
    if encoding == "audio/pcma":
        return alaw_decode(data), 8000
    return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.int16), 24000


def encode(samples: Int16, encoding: str) -> bytes:
    """24 kHz PCM16 samples in the session's output encoding (G.711 is decimated to 8 kHz)."""
    if encoding in ("audio/pcmu", "audio/pcma"):
        narrow = samples[::3]
        return ulaw_encode(narrow) if encoding == "audio/pcmu" else alaw_encode(narrow)
    return samples.astype("<i2").tobytes()


# --- turn detection ------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnEvent:
    kind: str  # "speech_started" or "speech_stopped"
    at_s: float  # position in the input audio stream
    speech_s: float = 0.0  # length of the utterance (on speech_stopped)


class TurnDetector:
    """Energy-based speech start/stop on the input stream, 20 ms frames."""

    def __init__(
        self,
        rate: int,
        threshold_dbfs: float = -45.0,
        start_ms: float = 100.0,
        min_silence_ms: float = 1000.0,
        frame_ms: float = 20.0,
    ) -> None:
        self.rate = rate
        self.frame = max(1, round(rate * frame_ms / 1000))
        self.threshold = 32768.0 * 10 ** (threshold_dbfs / 20)
        self.start_frames = max(1, round(start_ms / frame_ms))
        self.silence_frames = max(1, round(min_silence_ms / frame_ms))
        self.in_speech = False
        self._pending = np.zeros(0, dtype=np.int16)
        self._frames_done = 0
        self._run = 0  # consecutive frames against the current state
        self._run_start = 0
        self._speech_start = 0

    def set_rate(self, rate: int) -> None:
        """The input encoding changed mid-session; keep stream time continuous."""
        if rate != self.rate:
            elapsed_s = self._frames_done * self.frame / self.rate
            self.rate = rate
            frame_ms = 20.0
            self.frame = max(1, round(rate * frame_ms / 1000))
            self._frames_done = round(elapsed_s * rate / self.frame)
            self._pending = np.zeros(0, dtype=np.int16)

    def set_min_silence(self, ms: float) -> None:
        self.silence_frames = max(1, round(ms / 20.0))

    def _t(self, frame_index: int) -> float:
        return frame_index * self.frame / self.rate

    def feed(self, samples: Int16) -> list[TurnEvent]:
        data = np.concatenate([self._pending, samples]) if self._pending.size else samples
        n = data.size // self.frame
        self._pending = data[n * self.frame :].copy()
        if n == 0:
            return []
        frames = data[: n * self.frame].astype(np.float64).reshape(n, self.frame)
        loud = np.sqrt(np.mean(frames * frames, axis=1)) > self.threshold
        events: list[TurnEvent] = []
        for i, is_loud in enumerate(loud):
            index = self._frames_done + i
            against = (not is_loud) if self.in_speech else bool(is_loud)
            if not against:
                self._run = 0
                continue
            if self._run == 0:
                self._run_start = index
            self._run += 1
            if not self.in_speech and self._run >= self.start_frames:
                self.in_speech, self._run = True, 0
                self._speech_start = self._run_start
                events.append(TurnEvent("speech_started", self._t(self._run_start)))
            elif self.in_speech and self._run >= self.silence_frames:
                self.in_speech, self._run = False, 0
                speech_s = self._t(self._run_start) - self._t(self._speech_start)
                events.append(TurnEvent("speech_stopped", self._t(self._run_start), speech_s))
        self._frames_done += n
        return events


# --- the agent's voice ---------------------------------------------------------------------

# (F1, F2, F3) of a few vowels, Hz: enough spectral movement to look like speech.
_VOWELS = (
    (730, 1090, 2440),
    (270, 2290, 3010),
    (530, 1840, 2480),
    (570, 840, 2410),
    (300, 870, 2240),
)


def synth_voice(
    duration_s: float, rate: int = 24000, level_dbfs: float = -18.0, seed: int = 0
) -> Int16:
    """A voice-like signal: gliding pitch, harmonics shaped by vowel formants, syllables."""
    n = max(0, round(duration_s * rate))
    if n == 0:
        return np.zeros(0, dtype=np.int16)
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    f0 = 130.0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t) + 0.02 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    syllable_s = 0.22
    index = (t / syllable_s).astype(np.int64)
    vowels = np.asarray(_VOWELS, dtype=np.float64)[rng.integers(0, len(_VOWELS), index.max() + 1)]
    formants = vowels[index]  # n x 3
    out = np.zeros(n)
    for k in range(1, 25):
        fk = k * f0
        if fk.min() > rate / 2 - 200:
            break
        gain = np.zeros(n)
        for j, bw in enumerate((90.0, 110.0, 170.0)):
            gain += 1.0 / (1.0 + ((fk - formants[:, j]) / bw) ** 2) / (j + 1)
        out += gain * np.sin(k * phase) / k**0.5
    pos = (t % syllable_s) / syllable_s
    envelope = np.clip(np.sin(np.pi * pos) * 1.4, 0, 1) ** 0.8
    out *= envelope
    peak = float(np.max(np.abs(out))) or 1.0
    rms_target = 10 ** (level_dbfs / 20)
    rms = float(np.sqrt(np.mean(out**2))) or 1.0
    scale = min(rms_target / rms, 0.95 / peak)
    return np.round(out * scale * 32767).astype(np.int16)
