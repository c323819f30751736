"""Does the sandbox hear itself? The agent's recent voice against the user's last words.

A real recogniser transcribes the agent's own voice when it comes back through the user's
microphone: the user's transcript then repeats what the agent just said, one of the echo
loop's signs (issue 15). Pure numpy: rolling buffers of what went out and what came in,
and a normalised cross-correlation at 8 kHz.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

RATE = 24000
KEEP_S = 8.0
DECIMATE = 3  # 24 kHz -> 8 kHz: enough for a voice's correlation, nine times cheaper
HEARS_ITSELF = 0.5  # normalised correlation above which the words are the agent's own


class Ears:
    """Keeps the last seconds both ways; `hears_itself` compares an utterance with them."""

    def __init__(self) -> None:
        self.heard = np.zeros(0, np.float32)
        self.said = np.zeros(0, np.float32)

    @staticmethod
    def _keep(
        buffer: npt.NDArray[np.float32], samples: npt.NDArray[np.int16]
    ) -> npt.NDArray[np.float32]:
        joined = np.concatenate([buffer, samples.astype(np.float32)])
        return joined[-round(KEEP_S * RATE) :]

    def listen(self, samples: npt.NDArray[np.int16]) -> None:
        """What the client sent (24 kHz)."""
        self.heard = self._keep(self.heard, samples)

    def speak(self, samples: npt.NDArray[np.int16]) -> None:
        """What the agent played (24 kHz)."""
        self.said = self._keep(self.said, samples)

    def hears_itself(self, speech_s: float) -> bool:
        """Whether the last `speech_s` (+ the closing silence) of input is the agent's voice."""
        n = min(len(self.heard), round((speech_s + 0.5) * RATE))
        if n < RATE // 4 or len(self.said) < n:
            return False
        utterance = self.heard[-n:][::DECIMATE].astype(np.float64)
        voice = self.said[::DECIMATE].astype(np.float64)
        if not np.any(utterance) or not np.any(voice):
            return False
        return correlation(utterance, voice) >= HEARS_ITSELF


def correlation(part: npt.NDArray[np.float64], whole: npt.NDArray[np.float64]) -> float:
    """The best normalised cross-correlation of `part` against any stretch of `whole`."""
    from scipy import signal

    if len(whole) < len(part):
        return 0.0
    part = part - part.mean()
    raw = signal.correlate(whole, part, mode="valid", method="fft")
    energy = np.concatenate([[0.0], np.cumsum(whole * whole)])
    window = energy[len(part) :] - energy[: -len(part)]
    norm = np.sqrt(np.maximum(window, 1e-9) * float(np.dot(part, part)))
    return float(np.max(raw / norm))
