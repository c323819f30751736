"""The formant-spacing measurement (`benchmarks/dispersion.py`) measures what it says.

It is measurement only (no rule uses it: `benchmarks/dispersion_gap.py` found no gap), but
its figures are quoted in issue notes: a uniform tube's spacing is read within 15 %, speech
read at half its rate halves it, and a channel's tilt moves it little.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import dispersion  # noqa: E402
import sentence_corpus  # noqa: E402


def tube_vowel(spacing_hz: float, f0_hz: float, rate: int, seconds: float = 2.0) -> np.ndarray:
    """A pulse train with a gliding pitch through resonances at (n - 1/2) x spacing, as a
    uniform tube closed at one end has, up to 5 kHz (captured at `rate`)."""
    rng = np.random.default_rng(1)
    n = int(seconds * rate)
    f0 = f0_hz * (1 + 0.08 * np.sin(2 * np.pi * 1.3 * np.arange(n) / rate))
    phase = np.cumsum(f0 / rate)
    x = np.diff(np.floor(phase), prepend=0.0) + 0.002 * rng.standard_normal(n)
    k = 1
    while (k - 0.5) * spacing_hz < 5000:
        fc, bw = (k - 0.5) * spacing_hz, 80.0 + 20 * k
        r = np.exp(-np.pi * bw / rate)
        a = [1, -2 * r * np.cos(2 * np.pi * fc / rate), r * r]
        x = signal.lfilter([1 - r], a, x)
        k += 1
    return np.asarray(x / np.max(np.abs(x)) * 0.5, np.float64)


@pytest.mark.parametrize("spacing_hz", [1000.0, 1200.0])
def test_a_tube_at_the_label_reads_its_spacing(spacing_hz: float) -> None:
    got = dispersion.peak_spacing(tube_vowel(spacing_hz, 110.0, 24000), 24000)["disp"]
    assert abs(got / spacing_hz - 1) < 0.15, got


def test_speech_read_at_half_its_rate_halves_the_spacing() -> None:
    at_label = dispersion.peak_spacing(tube_vowel(1100.0, 200.0, 24000), 24000)["disp"]
    slowed = dispersion.peak_spacing(tube_vowel(1100.0, 200.0, 48000), 24000)["disp"]
    assert 0.42 < slowed / at_label < 0.6, (at_label, slowed)


@pytest.mark.parametrize("channel", ["dark", "bright", "phone"])
def test_a_channel_tilt_moves_the_spacing_little(channel: str) -> None:
    x = tube_vowel(1000.0, 110.0, 24000)
    clean = dispersion.peak_spacing(x, 24000)["disp"]
    sent = sentence_corpus.Sentence("tube", 24000, x)
    tilted = dispersion.peak_spacing(sentence_corpus.condition(sent, channel, seed=0), 24000)
    assert abs(tilted["disp"] / clean - 1) < 0.1, (clean, tilted["disp"])
