"""The recording's echo check on the sandbox's voices (review r15 #1): a well-behaved user's
own answers, seconds after a reply, are not the agent's echo; real echo still is."""

from __future__ import annotations

import numpy as np
import pytest

from doctor.sandbox.audio import synth_voice
from doctor.session.recording import RecordingMeter

RATE = 24000
USER = [(3.0, 1.2), (9.0, 1.0)]  # the review's headset sessions


def stereo(
    agent: list[tuple[float, float]], seed: int, echo_db: float | None = None, delay_s: float = 0.2
) -> np.ndarray:
    n = 16 * RATE
    left, right = np.zeros(n), np.zeros(n)
    for i, (s, d) in enumerate(agent):
        v = synth_voice(d, seed=i + seed) / 32768
        a = int(s * RATE)
        right[a : a + len(v)] += v
    for i, (s, d) in enumerate(USER):
        v = synth_voice(d, seed=50 + i + seed) / 32768
        a = int(s * RATE)
        left[a : a + len(v)] += v
    if echo_db is not None:
        k = int(delay_s * RATE)
        left[k:] += right[: n - k] * 10 ** (echo_db / 20)
    left += np.random.default_rng(seed).standard_normal(n) * 1e-4
    return np.stack([left, right], axis=1).astype(np.float32)


def echo_of(x: np.ndarray) -> dict[str, object]:
    m = RecordingMeter(RATE, 2)
    m.feed(x)
    echo = m.finish().echo
    assert echo is not None
    return echo


@pytest.mark.parametrize(
    ("seed", "agent"),
    [
        (5, [(0.3, 1.2), (5.24, 2.81), (11.04, 2.01)]),  # read as echo at 1956 ms before
        (6, [(0.3, 1.2), (5.49, 2.13), (11.29, 1.33)]),  # read as echo at 2384 ms before
    ],
)
def test_headset_users_own_answers_are_not_echo(
    seed: int, agent: list[tuple[float, float]]
) -> None:
    assert echo_of(stereo(agent, seed))["verdict"] != "echo"


@pytest.mark.parametrize("delay_s", [0.15, 0.4, 0.8])
def test_real_echo_is_still_found_with_the_users_answers_in_the_channel(delay_s: float) -> None:
    agent = [(0.3, 1.2), (5.24, 2.81), (11.04, 2.01)]
    echo = echo_of(stereo(agent, 5, echo_db=-25.0, delay_s=delay_s))
    assert echo["verdict"] == "echo"
    assert abs(float(echo["delay_ms"]) - delay_s * 1000) < 5  # type: ignore[arg-type]
