"""benchmarks/rate_envelope_probe.py measures what it says: its envelope is level- and
tilt-free, and its classifier and threshold behave as the report's figures assume.

Pure numpy on synthetic signals (no espeak-ng): the probe's corpus runs are by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import signal

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import rate_envelope_probe as probe  # noqa: E402

RATE = 24000


def vowel(f0: float = 140.0, seconds: float = 1.5) -> np.ndarray:
    """A pulse train at f0 through two formant resonances: voiced, as the tracker needs."""
    n = int(seconds * RATE)
    x = np.zeros(n)
    x[:: int(RATE / f0)] = 1.0
    for fc, bw in ((700.0, 90.0), (1200.0, 110.0)):
        r = np.exp(-np.pi * bw / RATE)
        x = signal.lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * fc / RATE), r * r], x)
    return 0.3 * x / np.max(np.abs(x))


def test_the_envelope_ignores_level_and_a_tilt_but_not_a_formant_shift() -> None:
    x = vowel()
    base = probe.clip_features(x)
    assert base is not None
    quiet = probe.clip_features(0.1 * x)
    assert quiet is not None
    assert np.allclose(base["A"], quiet["A"], atol=1e-6)
    # a first-order tilt (one pole) moves the band levels a lot but the tilt-free mean little
    tilted_x = signal.lfilter([1.0], [1.0, -0.7], x)
    tilted = probe.clip_features(0.3 * tilted_x / np.max(np.abs(tilted_x)))
    assert tilted is not None
    n = len(probe.filterbank(*probe.BANDS["A"])[1])
    tilt_change = abs(tilted["A_tilt"][0] - base["A_tilt"][0])
    env_change = float(np.abs(tilted["A"][:n] - base["A"][:n]).mean())
    # the same vowel with its formants 1.5x higher: the envelope itself moves
    shifted_x = signal.resample_poly(x, 2, 3)  # read 1.5x faster at the same rate
    shifted = probe.clip_features(shifted_x)
    assert shifted is not None
    shift_change = float(np.abs(shifted["A"][:n] - base["A"][:n]).mean())
    assert tilt_change > 0.3
    assert shift_change > 3 * env_change


def test_the_threshold_is_above_every_training_negative() -> None:
    rng = np.random.default_rng(0)
    neg = rng.normal(0.0, 1.0, (200, 5))
    pos = rng.normal(1.5, 1.0, (200, 5))
    x = np.vstack([neg, pos])
    y = np.r_[np.zeros(200), np.ones(200)]
    model = probe.fit_lr(x, y)
    s = probe.score(model, x)
    assert s[y == 1].mean() > s[y == 0].mean() + 2.0
    rows = [
        {"f": {"A": v[:3], "pitch": v[3:], "rhythm": np.zeros(2)}, "rate": r}
        for v, r in zip(x, [24000] * 200 + [44100] * 200, strict=True)
    ]
    models = probe.train(rows, "A", 0.0)
    c, _ = probe.claims(models, rows, "A")
    slow = list(probe.PROBLEMS).index("slow")
    assert not (c[:200, slow] > 0).any()  # no training negative is claimed
    assert (c[200:, slow] > 0).sum() > 20  # and some positives are
