"""The sandbox hears its own voice in the user's audio, and only its own."""

from __future__ import annotations

import numpy as np
from scipy import signal

from doctor.sandbox.audio import synth_voice
from doctor.sandbox.hearing import Ears


def other_speaker(seconds: float) -> np.ndarray:
    voice = synth_voice(seconds * 1.6, seed=5).astype(np.float64)
    return np.asarray(signal.resample_poly(voice, 5, 8)).astype(np.int16)


def test_its_voice_coming_back_is_heard_as_its_own() -> None:
    ears = Ears()
    ears.speak(synth_voice(2.0, seed=3))  # an earlier reply
    said = synth_voice(2.0, seed=1)
    ears.speak(said)
    noise = np.random.default_rng(0).normal(0, 30, 2400 * 2).astype(np.int16)
    echo = (said[: 24000 * 3 // 2] * 0.3).astype(np.int16)  # 1.5 s of it, quieter, later
    ears.listen(np.concatenate([noise, echo, np.zeros(7200, np.int16)]))
    assert ears.hears_itself(1.5)


def test_another_speaker_is_not_its_voice() -> None:
    ears = Ears()
    ears.speak(synth_voice(2.0, seed=1))
    ears.listen(np.concatenate([other_speaker(1.5), np.zeros(7200, np.int16)]))
    assert not ears.hears_itself(1.5)


def test_silence_and_short_input_are_not_its_voice() -> None:
    ears = Ears()
    assert not ears.hears_itself(1.0)
    ears.speak(synth_voice(1.0, seed=1))
    ears.listen(np.zeros(24000, np.int16))
    assert not ears.hears_itself(0.5)
