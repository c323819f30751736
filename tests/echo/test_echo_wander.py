"""The delay tracker (`doctor.audio.echo.wander`): a loop whose delay wanders, on seeded
synthetic signals.

The loop is the one the relay met on the wire: a player that receives 10 ms chunks and
inserts a short gap whenever one is late, so the delay walks 320 -> 365 ms over the reply.
The no-loop cases are the app's own speech (another speaker's pitch contour), noise and
silence; the agent's audio at a 2 ms lag is an echo marked as a software loop.
"""

from __future__ import annotations

import numpy as np
import pytest
from echo_cases import corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doctor.audio.echo.wander import (
    MIN_CAPTURED,
    MIN_LOOP_MS,
    NULL_FLOOR_Z,
    TRACK_ECHO_S,
    Z_CAP,
    _best_path,
    software_loop,
    track_echo,
)

RATE = corpus.RATE_HZ


def _agent(seed: int, seconds: float = 10.0) -> np.ndarray:
    return corpus.speech_like(seconds, seed=seed) * 32767


def _room(n: int, seed: int, dbfs: float = -50.0) -> np.ndarray:
    return corpus.noise(n, seed, "pink") * 10 ** (dbfs / 20) * 32767


def _pcm(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("erl_db", [-6.0, -18.0, -30.0])
@pytest.mark.parametrize("seed", [2, 7])
def test_a_wandering_loop_is_found_with_its_delay_range_and_drift(erl_db: float, seed: int) -> None:
    x = _agent(seed)
    played, gaps = corpus.late_chunk_player(x, 320.0, 365.0, seed)
    assert gaps >= 3
    heard = played * 10 ** (erl_db / 20) + _room(len(x), seed)
    r = track_echo(_pcm(x), RATE, _pcm(heard), RATE)
    assert r.verdict == "echo", r.evidence()
    assert r.score_s is not None and r.score_s >= TRACK_ECHO_S
    assert r.delay_min_ms is not None and r.delay_max_ms is not None
    assert 318 <= r.delay_min_ms <= 330
    assert 340 <= r.delay_max_ms <= 367
    assert r.delay_min_ms <= (r.delay_ms or 0) <= r.delay_max_ms
    assert r.drift_ms is not None and 10 <= r.drift_ms <= 47
    assert r.erl_db is not None and abs(r.erl_db - erl_db) <= 3.0
    ev = r.evidence()
    assert ev["delay_range_ms"] == [round(r.delay_min_ms, 1), round(r.delay_max_ms, 1)]
    assert ev["software_loop"] is False


def test_a_delay_that_steps_back_and_forth_is_tracked_over_its_range() -> None:
    """Both ends of the wire insert gaps (the relay's player model and the app's player), so
    the delay also steps down: ±10 ms every 0.5 s within 300-380 ms."""
    x = _agent(5)
    rng = np.random.default_rng(5)
    out, delays = np.zeros(len(x)), []
    delay = round(0.32 * RATE)
    for start in range(0, len(x), RATE // 2):
        delay += int(rng.choice([-1, 1])) * RATE // 100
        delay = int(np.clip(delay, round(0.30 * RATE), round(0.38 * RATE)))
        delays.append(delay / RATE * 1000)
        seg = x[start : start + RATE // 2][: max(0, len(x) - start - delay)]
        out[start + delay : start + delay + len(seg)] = seg
    heard = out * 0.5 + _room(len(x), 5)
    r = track_echo(_pcm(x), RATE, _pcm(heard), RATE)
    assert r.verdict == "echo", r.evidence()
    assert r.score_s is not None and r.score_s > 2 * TRACK_ECHO_S
    assert r.delay_min_ms is not None and r.delay_max_ms is not None
    assert min(delays) - 1 <= r.delay_min_ms and r.delay_max_ms <= max(delays) + 1
    assert r.delay_max_ms - r.delay_min_ms >= 30  # the wander is reported, not averaged


def test_the_apps_own_speech_noise_and_silence_are_not_a_loop() -> None:
    x = _pcm(_agent(3))
    user = corpus.speech_like(10, seed=303, f0_hz=150.0) * 32767
    for heard in (user + _room(len(user), 3), _room(len(user), 4, -30.0)):
        r = track_echo(x, RATE, _pcm(heard), RATE)
        assert r.verdict == "no_echo", r.evidence()
        assert r.score_s is not None and r.score_s < TRACK_ECHO_S
    # room noise makes a path too weak for any surrogate to matter: they were not computed
    assert r.null_z is None and r.path_z is not None and r.path_z < TRACK_ECHO_S * NULL_FLOOR_Z
    silent = track_echo(x, RATE, np.zeros(len(x), np.int16), RATE)
    assert silent.verdict == "mic_silent"


def test_the_agent_at_a_near_zero_lag_is_an_echo_marked_as_a_software_loop() -> None:
    """A copy 2 ms after playback is no player-and-microphone loop but the app sending back
    what it receives (a mix-up of streams): still the agent hearing itself, so an echo,
    marked `software_loop`; a loop through a room is not."""
    x = _agent(4)
    lag = round(0.002 * RATE)
    heard = np.concatenate([np.zeros(lag), x[:-lag]]) * 0.5 + _room(len(x), 4)
    r = track_echo(_pcm(x), RATE, _pcm(heard), RATE)
    assert r.verdict == "echo", r.evidence()
    assert r.delay_ms is not None and r.delay_ms < MIN_LOOP_MS
    assert r.software_loop and r.evidence()["software_loop"] is True
    assert not software_loop(MIN_LOOP_MS) and software_loop(MIN_LOOP_MS - 0.1)


def _bursts_in_silence(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The agent talking for 10 s; the capture digital silence but for eight 0.1 s bursts of
    noise that are not the agent (the relay's window before the app started sending)."""
    x = _agent(seed)
    rng = np.random.default_rng(seed)
    heard, n = np.zeros(len(x)), RATE // 10
    for s in rng.uniform(0, 9.7, 8):
        a = int(s * RATE)
        heard[a : a + n] = rng.normal(0, 3000, n)
    return _pcm(x), _pcm(heard)


@pytest.mark.parametrize("seed", [29, 34])
@pytest.mark.parametrize(
    "z_cap, min_captured, false_path",
    [
        (Z_CAP, MIN_CAPTURED, False),  # as shipped
        (Z_CAP, 0.0, False),  # the cap alone keeps a few spiky blocks from carrying a path
        (1e9, MIN_CAPTURED, False),  # skipping the mostly silent blocks alone does too
        (1e9, 0.0, True),  # neither: these captures read as the agent's audio coming back
    ],
)
def test_a_capture_that_is_mostly_digital_silence_does_not_carry_a_path(
    monkeypatch: pytest.MonkeyPatch, seed: int, z_cap: float, min_captured: float, false_path: bool
) -> None:
    """A few short bursts in a silent capture make robust z's of hundreds in the blocks that
    reach them (their MAD is near 0), for the reference and its surrogates alike, so the path
    over them is chance: S 4.1 / 3.1 with both guards off. Each guard alone keeps it no echo
    (so removing either one fails its arm), and the last arm shows the capture is a real
    trap, not one no tracker would fall into."""
    import doctor.audio.echo.wander as wander

    monkeypatch.setattr(wander, "Z_CAP", z_cap)
    monkeypatch.setattr(wander, "MIN_CAPTURED", min_captured)
    x, heard = _bursts_in_silence(seed)
    r = track_echo(x, RATE, heard, RATE)
    assert (r.verdict == "echo") == false_path, r.evidence()


def test_the_path_follows_a_ridge_that_steps_and_ignores_a_lone_spike() -> None:
    rng = np.random.default_rng(0)
    nb, nl = 12, 4000
    z = rng.normal(0, 1, (nb, nl)).astype(np.float32)
    truth = 2560 + np.cumsum(rng.choice([0, 0, 80], nb))  # 0 or +10 ms a block
    z[np.arange(nb), truth] += 12.0
    z[6, 300] = Z_CAP  # one block's stray peak 300 ms away
    path = _best_path(z, np.ones(nb))
    assert list(path.lags) == list(truth)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    user_db=st.floats(-12.0, 12.0),
    noise_dbfs=st.floats(-70.0, -30.0),
    kind=st.sampled_from(["speech", "noise", "speech+noise"]),
    f0_hz=st.floats(90.0, 220.0),
)
def test_no_false_loop_over_many_seeds(
    seed: int, user_db: float, noise_dbfs: float, kind: str, f0_hz: float
) -> None:
    """Whatever the app sends of its own (another voice, room noise, both), at whatever
    levels, the tracker does not call it the agent's audio coming back."""
    x = _pcm(_agent(seed))
    heard = np.zeros(len(x))
    if "speech" in kind:
        heard += corpus.speech_like(10, seed=seed + 50_000, f0_hz=f0_hz) * 32767
        heard *= 10 ** (user_db / 20)
    if "noise" in kind:
        heard += _room(len(x), seed + 1, noise_dbfs)
    r = track_echo(x, RATE, _pcm(heard), RATE)
    assert r.verdict != "echo", r.evidence()


@pytest.mark.parametrize("dbfs", [-70.0, -50.0, -30.0])
def test_room_noise_is_at_the_level_it_is_said_to_be(dbfs: float) -> None:
    """`_room(..., -50)` is -50 dBFS RMS: the pink noise was once 40 dB quieter than stated,
    and at -70 the hypothesis arm's noise rounded to digital silence."""
    room = _room(10 * RATE, 3, dbfs)
    level = 20 * np.log10(np.sqrt(np.mean(room**2)) / 32767)
    assert abs(level - dbfs) < 0.5, level
    assert np.count_nonzero(_pcm(room)) > 0.9 * len(room)
