"""The relay's echo measurement on a loop whose delay wanders: detection, false alarms, cost.

    python benchmarks/bench_echo_wander.py            # 20 seeds a case
    python benchmarks/bench_echo_wander.py --quick    # 4 seeds, for CI

Echo cases: 10 s of the agent handed to a late-chunk player (gaps of 5-15 ms whenever a
chunk is late: the delay walks 320 -> 365 ms) at ERL -6 .. -40 dB over pink room noise at
-50 dBFS (RMS; `echo_corpus.noise` is unit RMS), and the sandbox's own voice stepping
2.5-10 ms every 0.5 s (what the relay met on the wire). No-loop cases: the app's own speech
(another pitch contour; the same espeak voice saying other sentences when espeak-ng is
installed) over the same room noise, and pink room noise alone at -20 dBFS. Each is
measured as the relay does (`observe._echo_window` on a 20 s window): the coherent core at
the wire's S 4, then the delay tracker when the core says no. Cost: CPU ms of one 20 s
measurement, the tracker alone, and the two half windows the tracker replaced. Exits 1 on a
false alarm.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from tabulate import tabulate  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import echo_corpus as corpus  # noqa: E402

from doctor.audio.echo.analysis import analyse_prepared, prepare  # noqa: E402
from doctor.audio.echo.wander import track_prepared  # noqa: E402
from doctor.sandbox.audio import synth_voice  # noqa: E402
from doctor.watch.observe import WIRE_ECHO_S, _echo_window  # noqa: E402

RATE = corpus.RATE_HZ
WINDOW = 20 * RATE


def _window(x: np.ndarray) -> np.ndarray:
    """The relay's 20 s window: the audio at its end, silence (nothing held) before."""
    out = np.zeros(WINDOW, np.int16)
    x = np.clip(np.round(x), -32768, 32767).astype(np.int16)[-WINDOW:]
    out[WINDOW - len(x) :] = x
    return out


def _room(n: int, seed: int, dbfs: float = -50.0) -> np.ndarray:
    return corpus.noise(n, seed, "pink") * 10 ** (dbfs / 20) * 32767


def wandering(erl_db: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = corpus.speech_like(10, seed=seed) * 32767
    y, _ = corpus.late_chunk_player(x, 320.0, 365.0, seed)
    return _window(x), _window(y * 10 ** (erl_db / 20) + _room(len(x), seed))


def sandbox_voice(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.concatenate([synth_voice(1.5, seed=s) for s in rng.integers(0, 1000, 3)])
    heard = np.zeros(len(x) + RATE)
    delay = round(0.24 * RATE)
    for start in range(0, len(x), RATE // 2):
        seg = x[start : start + RATE // 2].astype(np.float64)
        heard[start + delay : start + delay + len(seg)] += seg
        delay += int(rng.choice([-1, 0, 1])) * int(rng.integers(60, 241))
    return _window(x), _window(heard[: len(x)] + rng.normal(0, 30, len(x)))


def other_speech(seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = corpus.speech_like(10, seed=seed) * 32767
    f0 = 90.0 + (seed * 37) % 130
    u = corpus.speech_like(10, seed=seed + 10_000, f0_hz=f0) * 32767
    return _window(x), _window(u + _room(len(x), seed))


def _talk(sentences: list[str]) -> np.ndarray:
    parts = [np.concatenate([corpus.espeak(t), np.zeros(RATE // 4)]) for t in sentences]
    return np.concatenate(parts)[: 10 * RATE] * 32767


def same_espeak_voice(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The agent and the app's user in the same voice, never the same sentence."""
    order = np.random.default_rng(seed).permutation(len(corpus.SENTENCES))
    x = _talk([corpus.SENTENCES[i] for i in order[::2]])
    u = _talk([corpus.SENTENCES[i] for i in order[1::2]])
    n = min(len(x), len(u))
    return _window(x[:n]), _window(u[:n] + _room(n, seed))


def room_noise(seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = corpus.speech_like(10, seed=seed) * 32767
    return _window(x), _window(_room(len(x), seed, -20.0))


def _cpu_ms(f: Callable[[], Any]) -> float:
    t = time.process_time()
    f()
    return (time.process_time() - t) * 1000


def _costs(played: np.ndarray, heard: np.ndarray) -> dict[str, float]:
    """CPU ms of one relay measurement, of the tracker alone, and of the two half windows
    the relay ran before the tracker replaced them."""
    p = prepare(played, RATE, heard, RATE)
    half = WINDOW // 2

    def halves() -> None:
        for a in (0, half):
            analyse_prepared(prepare(played[a : a + half], RATE, heard[a : a + half], RATE))

    return {
        "measurement": _cpu_ms(lambda: _echo_window(played, heard, 20.0)),
        "tracker": _cpu_ms(lambda: track_prepared(p)),
        "halves": _cpu_ms(halves),
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    seeds = range(4 if args.quick else 20)
    echo_cases: dict[str, Callable[[int], tuple[np.ndarray, np.ndarray]]] = {
        f"wandering 320->365 ms, ERL {e} dB": partial(wandering, float(e))
        for e in (-6, -18, -30, -40)
    }
    echo_cases["sandbox voice, ±2.5-10 ms steps"] = sandbox_voice
    negatives: dict[str, Callable[[int], tuple[np.ndarray, np.ndarray]]] = {
        "the app's own speech": other_speech,
        "room noise": room_noise,
    }
    if corpus.have_espeak():
        negatives["same espeak voice, other text"] = same_espeak_voice
    costs: dict[str, list[float]] = {"measurement": [], "tracker": [], "halves": []}
    rows, false_alarms = [], 0
    for name, make in {**echo_cases, **negatives}.items():
        core_hits = hits = 0
        spans, erls = [], []
        for seed in seeds:
            played, heard = make(seed)
            r = _echo_window(played, heard, 20.0)
            for key, cost in _costs(played, heard).items():
                costs[key].append(cost)
            hit = r.get("verdict") == "echo"
            hits += hit
            core_hits += hit and r.get("method") != "delay_tracker"
            if hit and r.get("delay_range_ms"):
                lo, hi = r["delay_range_ms"]
                spans.append(f"{lo:.0f}-{hi:.0f}")
                erls.append(float(r["erl_db"]))
        is_echo = name in echo_cases
        false_alarms += 0 if is_echo else hits
        rows.append(
            [
                name,
                "loop" if is_echo else "no loop",
                f"{core_hits}/{len(seeds)}",
                f"{hits}/{len(seeds)}",
                ", ".join(spans[:3]) or "-",
                f"{statistics.median(erls):.1f}" if erls else "-",
            ]
        )
    print(
        tabulate(
            rows,
            headers=[
                "case",
                "truth",
                f"coherent core alone (S >= {WIRE_ECHO_S})",
                "relay: core, then tracker",
                "delay ranges (ms)",
                "median ERL (dB)",
            ],
        )
    )
    print()
    print(
        tabulate(
            [
                [k, f"{statistics.median(v):.0f}", f"{max(v):.0f}"]
                for k, v in (
                    ("one relay measurement, 20 s window", costs["measurement"]),
                    ("the delay tracker alone", costs["tracker"]),
                    ("the two 10 s halves it replaced", costs["halves"]),
                )
            ],
            headers=["CPU per 20 s window", "median ms", "max ms"],
        )
    )
    if false_alarms:
        print(f"{false_alarms} false alarm(s) on no-loop cases", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
