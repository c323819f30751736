"""An app that sends the agent's audio straight back as its input (a software loop): the
relay's echo measurement finds it a few ms after playback, too soon for a speaker and a
microphone, and reports it as the agent hearing itself, never as a clean pass."""

from __future__ import annotations

from typing import Any

import numpy as np
from test_watch_core import _wire

from doctor.result import Status
from doctor.watch.observe import RelayObserver
from doctor.watch.results import watch_results


def _agent() -> np.ndarray:
    from doctor.sandbox.audio import synth_voice

    return np.concatenate([synth_voice(1.5, seed=s) for s in (1, 2, 3)]).astype("<i2")


def _noise(n: int, sd: float = 30.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, sd, n)


def _echo_result(obs: RelayObserver) -> Any:
    (res,) = [r for r in watch_results(obs.findings, sessions=1) if r.id == "watch-echo"]
    return res


def test_the_agent_sent_straight_back_is_a_software_loop_not_a_pass() -> None:
    agent = _agent()
    for offset in (0.005, 0.020):
        obs = RelayObserver()
        _wire(obs, agent, (agent // 2 + _noise(len(agent))).astype("<i2"), offset)
        echo = obs.conns[1].echo
        assert echo is not None and echo["verdict"] == "echo", (offset, echo)
        assert echo["software_loop"] is True and echo["delay_ms"] < 30, echo
        (f,) = [f for f in obs.finish() if f.area == "echo"]
        assert f.cause == "echo_loop" and f.guide == "watch_software_loop"
        assert f.evidence["software_loop"] is True
        assert abs(f.evidence["audio_delay_ms"] - offset * 1000) < 5
        res = _echo_result(obs)
        assert res.status == Status.FAIL, res
        assert res.cause == "echo_loop"
        assert "too soon for a speaker and a microphone" in res.summary
        assert "software loop" in res.summary
        assert res.fix is not None and res.fix.guide == "watch_software_loop"
        assert any("routing" in s for s in res.fix.steps)


def test_a_loop_through_a_player_is_not_called_a_software_loop() -> None:
    agent = _agent()
    obs = RelayObserver()
    _wire(obs, agent, (agent // 2 + _noise(len(agent))).astype("<i2"), 0.12)
    echo = obs.conns[1].echo
    assert echo is not None and echo["verdict"] == "echo" and echo["software_loop"] is False
    (f,) = [f for f in obs.finish() if f.area == "echo"]
    assert f.guide == "echo_loop" and "software_loop" not in f.evidence
    assert "software loop" not in _echo_result(obs).summary


def test_a_weak_short_lag_match_stays_no_echo() -> None:
    """The agent's audio 40 dB down, 5 ms late, under the app's own loud noise: below the
    score threshold, so no echo and a clean pass (a short lag alone proves nothing)."""
    agent = _agent()
    heard = agent.astype(np.float64) * 0.01 + _noise(len(agent), 3000.0, seed=4)
    obs = RelayObserver()
    _wire(obs, agent, np.clip(heard, -32768, 32767).astype("<i2"), 0.005)
    echo = obs.conns[1].echo
    assert echo is not None and echo["verdict"] != "echo", echo
    assert not echo.get("software_loop")
    assert (echo.get("tracked") or {}).get("verdict") != "echo", echo
    assert not [f for f in obs.finish() if f.area == "echo"]
    assert _echo_result(obs).status == Status.PASS


def test_a_software_loop_with_a_wandering_delay_is_found_by_the_tracker() -> None:
    """The app sends back what it receives through a buffer whose delay steps between 2 and
    26 ms every 0.5 s: one coherent pass smears it (S 1.3 / 3.0, under the wire's 4), the
    delay tracker finds it, and it is marked a software loop there too."""
    agent = _agent()
    for variant in (1, 4):
        rng = np.random.default_rng(variant)
        heard = np.zeros(len(agent) + 24000)
        delay = 96  # 4 ms
        for start in range(0, len(agent), 12000):
            seg = agent[start : start + 12000].astype(np.float64)
            heard[start + delay : start + delay + len(seg)] += seg
            step = int(rng.choice([-1, 1])) * int(rng.integers(60, 241))
            delay = int(np.clip(delay + step, 48, 26 * 24))
        heard = heard[: len(agent)] + _noise(len(agent), seed=variant)
        obs = RelayObserver()
        _wire(obs, agent, np.clip(heard, -32768, 32767).astype("<i2"), 0.0)
        echo = obs.conns[1].echo
        assert echo is not None and echo["verdict"] == "echo", (variant, echo)
        assert echo["method"] == "delay_tracker" and echo["coherent_score_s"] < 4, echo
        assert echo["software_loop"] is True and echo["delay_ms"] < 30, echo
        (f,) = [f for f in obs.finish() if f.area == "echo"]
        assert f.guide == "watch_software_loop" and f.evidence["software_loop"] is True
        assert "software loop" in _echo_result(obs).summary
