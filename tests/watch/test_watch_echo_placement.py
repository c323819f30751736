"""Where the relay places each direction's audio for its echo measurement (a reviewer's
cases): an app whose player queues the agent and whose microphone hears it 200 ms later,
sent in 50 ms chunks, must read 250 ms (the delay counts from each chunk's arrival) through
a stall, a pause and an unpaced clip; a copy sent back as received, regrouped or not, is a
software loop; an odd byte count crashes nothing.

A simulated app on the relay's observer (pure: no sockets): the agent's replies arrive at
real time in 10 ms chunks, the app's player plays them back to back from their arrival, and
its microphone captures the room (the player at half level, 200 ms later, over a quiet
floor) and sends each chunk once captured.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from doctor.capture.format import ConnEvent, Frame
from doctor.sandbox.audio import synth_voice
from doctor.session.findings import percentile
from doctor.watch.observe import RelayObserver

SR = 24_000
LOOP_S = 0.2


def _b64(x: np.ndarray) -> str:
    return base64.b64encode(x.astype("<i2").tobytes()).decode()


def _agent() -> np.ndarray:
    return np.concatenate([synth_voice(1.5, seed=s) for s in (1, 2, 3)]).astype(np.int16)


def _run(
    replies: list[tuple[float, np.ndarray]],
    *,
    stall: tuple[float, float] | None = None,
    mic_chunk_s: float = 0.05,
    mic_off: tuple[float, float] | None = None,
    clip: tuple[float, float, float] | None = None,
    software: float | None = None,
) -> dict[str, Any]:
    """Feed one session to the observer; its echo evidence at the close. `stall` (t, s): the
    service pauses mid-reply; `mic_off` (a, b): the app sends nothing then (push-to-talk);
    `clip` (t, seconds, speed): at t the app sends an unrelated clip that fast; `software`
    (chunk s): the app sends each reply chunk back as received, regrouped to that size."""
    frames: list[tuple[float, str, dict[str, Any]]] = []
    total = max(t + len(p) / SR for t, p in replies) + 2.0
    playout = np.zeros(int((total + 1) * SR))
    play_end = 0.0
    held: list[np.ndarray] = []
    for t0, pcm in replies:
        send = t0
        for i in range(0, len(pcm) - 239, 240):
            if stall and send <= stall[0] < send + 0.01:
                send += stall[1]
            chunk = pcm[i : i + 240]
            frames.append((send, "service", {"type": "reply.audio", "data": _b64(chunk)}))
            start = max(send, play_end)
            k = round(start * SR)
            playout[k : k + 240] += chunk
            play_end = start + 0.01
            if software is not None:
                held.append(chunk)
                if sum(len(h) for h in held) >= round(software * SR):
                    out = np.concatenate(held)
                    held = []
                    frames.append(
                        (send + 0.001, "app", {"type": "input.audio", "audio": _b64(out)})
                    )
            send += 0.01
    if software is None:
        rng = np.random.default_rng(7)
        mic = rng.normal(0, 30, len(playout))
        d = round(LOOP_S * SR)
        mic[d:] += 0.5 * playout[:-d]
        step = round(mic_chunk_s * SR)
        for j in range(0, round(total * SR) - step, step):
            sent = (j + step) / SR  # a microphone sends a chunk once it has captured it
            if mic_off and mic_off[0] <= sent < mic_off[1]:
                continue
            frames.append((sent, "app", {"type": "input.audio", "audio": _b64(mic[j : j + step])}))
            if clip and sent <= clip[0] < sent + mic_chunk_s:
                other = rng.normal(0, 3000, round(clip[1] * SR))
                for n, k in enumerate(range(0, len(other) - step + 1, step)):
                    at = clip[0] + n * mic_chunk_s / clip[2]
                    frames.append(
                        (at, "app", {"type": "input.audio", "audio": _b64(other[k : k + step])})
                    )
    obs = RelayObserver()
    obs.feed(ConnEvent(0.0, 1e9, 1, "open", {"auth": "header"}))
    obs.feed(Frame(0.01, 0.0, 1, "app", msg={"type": "session.update", "session": {}}))
    obs.feed(Frame(0.05, 0.0, 1, "service", msg={"type": "session.ready", "session_id": "s"}))
    for t, side, msg in sorted(frames, key=lambda f: (f[0], f[1] == "app")):
        obs.feed(Frame(t, 0.0, 1, side, msg=msg))
    obs.feed(ConnEvent(total + 1, 0.0, 1, "close", {"by": "app", "code": 1000}))
    return obs.conns[1].echo or {}


CASES = {
    # before: the rest of the reply dated up to 0.25 s before it arrived (450 ms read)
    "the service stalls 0.2 s mid-reply": {"stall": (2.5, 0.2)},
    # before: 1150 ms (the audio after the pause placed as if there had been none)
    "push-to-talk: the app sends nothing for 0.6 s": {"mic_off": (2.0, 2.6)},
    # the held echo must not move back by the clip's lead (before: no echo found at all;
    # then 200 ms, the clip's first chunk still moving it by one chunk)
    "the app sends an unpaced 6 s clip at 10x": {"clip": (5.0, 6.0, 10.0)},
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_player_loop_reads_its_delay(case: str) -> None:
    echo = _run([(1.0, _agent())], **CASES[case])
    assert echo.get("verdict") == "echo", echo
    assert abs(echo["delay_ms"] - LOOP_S * 1000 - 50) <= 15, echo  # 50: one input chunk
    assert echo["software_loop"] is False


def test_a_second_reply_0_2_s_after_the_first_reads_the_loop() -> None:
    a = _agent()
    h = len(a) // 2
    echo = _run([(1.0, a[:h]), (1.0 + h / SR + 0.2, a[h:])])
    assert echo.get("verdict") == "echo" and abs(echo["delay_ms"] - 250) <= 15, echo


@pytest.mark.parametrize("chunk_s", [0.01, 0.05, 0.1])
def test_a_copy_sent_back_in_input_sized_chunks_is_a_software_loop(chunk_s: float) -> None:
    """Regrouped into the documented 50 ms input chunks it read 41 ms before: the ordinary
    echo wording and the headphones fix, for an app that routes the agent into its input."""
    echo = _run([(1.0, _agent())], software=chunk_s)
    assert echo.get("verdict") == "echo" and echo["software_loop"] is True, echo
    assert 0 <= echo["delay_ms"] < 30 + 1000 * chunk_s


def test_a_reply_chunk_with_an_odd_byte_count_is_measured_not_a_crash() -> None:
    x = np.random.default_rng(0).normal(0, 3000, SR * 3).astype("<i2").tobytes()
    obs = RelayObserver()
    obs.feed(ConnEvent(0.0, 1e9, 1, "open", {"auth": "header"}))
    obs.feed(Frame(0.05, 0.0, 1, "service", msg={"type": "session.ready", "session_id": "s"}))
    odd = base64.b64encode(x[:2401]).decode()
    obs.feed(Frame(0.1, 0.0, 1, "service", msg={"type": "reply.audio", "data": odd}))
    for i in range(60):
        chunk = base64.b64encode(x[i * 2400 : (i + 1) * 2400]).decode()
        obs.feed(
            Frame(0.2 + i * 0.05, 0.0, 1, "service", msg={"type": "reply.audio", "data": chunk})
        )
        obs.feed(Frame(0.2 + i * 0.05, 0.0, 1, "app", msg={"type": "input.audio", "audio": chunk}))
    obs.feed(ConnEvent(5.0, 0.0, 1, "close", {"by": "app", "code": 1000}))
    assert (obs.conns[1].echo or {}).get("verdict") == "echo"


def test_the_median_of_an_even_count_is_the_same_rank_whatever_the_count() -> None:
    """Rounding q * (n - 1) to even gave the lower middle of 2 values (no slow_replies for
    [2000, 4000]) and the upper middle of 4 (slow_replies for [2000, 2000, 4000, 4000])."""
    assert percentile([2000, 4000], 0.5) == percentile([2000, 2000, 4000, 4000], 0.5) == 2000
    assert percentile([1, 2, 3], 0.5) == 2 and percentile([5], 0.9) == 5
    assert percentile(list(range(1, 101)), 0.9) == 90
