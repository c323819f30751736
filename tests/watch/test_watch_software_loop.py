"""An app that sends the agent's audio straight back as its input (a software loop): the
relay's echo measurement finds it a few ms after playback, too soon for a speaker and a
microphone, and reports it as the agent hearing itself, never as a clean pass."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from test_watch_core import _audio_msg, _session, _wire

from doctor.capture.format import ConnEvent, Frame
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


def test_a_copy_sent_back_on_arrival_reads_its_wire_delay_despite_jitter_and_a_backlog() -> None:
    """What an app piping reply.audio into input.audio shows the relay: the reply (10 ms
    chunks, each up to 30 ms late) starts 0.3 s before the app has finished sending its own
    sentence, so that much goes back at once when it has, and every later chunk 1 ms after
    it arrived. Anchoring the app's stream at its backlog read ~0.3 s (180-245 ms through the
    sandbox), and a player model that queues the service's jitter read below zero; both
    directions on their senders' clocks read the 1 ms."""
    agent = _agent()
    rng = np.random.default_rng(7)
    obs = RelayObserver()
    t = _session(obs)
    frames: list[tuple[float, int, str, dict[str, Any]]] = []
    own = (_noise(int(2.2 * 24000)) * 3).astype("<i2")  # the app's sentence, quiet noise
    for i in range(0, len(own), 1200):
        frames.append((t + i / 24000, 0, "app", _audio_msg(own[i : i + 1200].tobytes())))
    done_talking = t + len(own) / 24000
    arrived = 0.0
    for k, i in enumerate(range(0, len(agent) - 240, 240)):
        pcm = agent[i : i + 240].tobytes()
        arrived = max(arrived, done_talking - 0.3 + k * 0.01 + float(rng.uniform(0, 0.03)))
        reply = {"type": "reply.audio", "data": base64.b64encode(pcm).decode()}
        frames.append((arrived, 1, "service", reply))
        frames.append((max(arrived, done_talking) + 0.001, 2, "app", _audio_msg(pcm)))
    for when, _, side, msg in sorted(frames, key=lambda f: (f[0], f[1])):
        obs.feed(Frame(when, 0, 1, side, msg=msg))  # type: ignore[arg-type]
    obs.feed(ConnEvent(arrived + 1.0, 0, 1, "close", {"by": "app", "code": 1000}))
    echo = obs.conns[1].echo
    assert echo is not None and echo["verdict"] == "echo", echo
    assert echo["software_loop"] is True and 0 <= echo["delay_ms"] < 5, echo
    (f,) = [f for f in obs.finish() if f.area == "echo"]
    assert f.guide == "watch_software_loop"
    assert _echo_result(obs).status == Status.FAIL
