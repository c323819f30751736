"""Accuracy and cost of the echo detector on a seeded synthetic corpus.

    python benchmarks/bench_echo_accuracy.py            # full corpus (a few minutes)
    python benchmarks/bench_echo_accuracy.py --quick    # a few dozen cases, for CI
    python benchmarks/bench_echo_accuracy.py --json out.json --rows cases.json
    python benchmarks/bench_echo_accuracy.py --only drift --jobs 2   # one family, 2 processes

ERL error is reported on the issue's "linear paths" (no clipping, no double talk, no
non-linearity) apart from all detected cases, against the path-gain truth (and, for
comparison with earlier runs, against the captured-power truth the corpus used before),
with a breakdown by case family, room, ENR band and ERL x NRL cell. Drift error is given
for the drift families (median / p90).

Echo cases: ERL x NRL grids at 3/6/10 s of agent audio, clock drift up to ±1000 ppm,
rooms (RT60 up to 1 s), loudspeaker and microphone clipping, double talk. No-echo cases:
noise only, unrelated speech, and the hard one, the same espeak voice saying other text.
Speech is espeak-ng when installed (else the numpy speech-like source). Rooms are numpy
exponential-decay impulse responses (pyroomacoustics is not used). Compute time is
measured single-threaded (the script pins BLAS/OpenMP threads to 1 before numpy loads).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from functools import cache  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import echo_corpus as corpus  # noqa: E402

from doctor.audio.echo.analysis import ECHO_S, LagWindow, analyse_echo, search_window  # noqa: E402

RATE = corpus.RATE_HZ


@cache
def _sentence(index: int, voice: str, pitch: int) -> tuple[float, ...]:
    return tuple(corpus.espeak(corpus.SENTENCES[index], voice=voice, pitch=pitch))


def speech(
    seconds: float,
    seed: int,
    sentences: tuple[int, ...] | None = None,
    voice: str = "en-us",
    pitch: int = 50,
) -> np.ndarray:
    """Agent speech: espeak sentences (from `sentences`, in seeded order) or numpy speech."""
    if not corpus.have_espeak():
        return corpus.speech_like(seconds, seed=seed, f0_hz=100 + 8 * (seed % 10))
    rng = np.random.default_rng(seed)
    pool = list(sentences if sentences is not None else range(len(corpus.SENTENCES)))
    parts: list[np.ndarray] = []
    total = 0
    while total < seconds * RATE:
        s = np.asarray(_sentence(int(rng.choice(pool)), voice, pitch))
        gap = np.zeros(int(rng.uniform(0.1, 0.4) * RATE))
        parts += [s, gap]
        total += len(s) + len(gap)
    return np.concatenate(parts)[: int(seconds * RATE)]


@dataclass
class Spec:
    family: str
    build: Callable[[], corpus.Case]
    window: LagWindow | None = None


def specs(quick: bool) -> Iterator[Spec]:
    seed = 1000
    durations = (3.0, 10.0) if quick else (3.0, 6.0, 10.0)
    erls = (-10, -30, -50) if quick else (-6, -20, -30, -40, -50, -60, -70)
    nrls = (-60, -30) if quick else (-60, -45, -30, -20)
    reps = 1 if quick else 2
    for dur in durations:
        for erl in erls:
            for nrl in nrls:
                for _r in range(reps):
                    seed += 1
                    s = seed

                    def grid(
                        dur: float = dur, erl: float = erl, nrl: float = nrl, s: int = s
                    ) -> corpus.Case:
                        return corpus.make_case(
                            "grid",
                            speech(dur, s),
                            seed=s,
                            erl_db=erl,
                            nrl_db=nrl,
                            delay_ms=20 + (s * 37) % 900,
                            rt60_s=0.3 if s % 2 else 0.0,
                        )

                    yield Spec(f"grid {dur:g}s", grid)
    n_cond = 3 if quick else 10
    conditions: list[tuple[str, dict[str, Any]]] = [
        ("drift +417 ppm", {"drift_ppm": 417.0, "erl_db": -30, "nrl_db": -50}),
        ("drift -1000 ppm", {"drift_ppm": -1000.0, "erl_db": -30, "nrl_db": -50}),
        (
            "drift +1000 ppm, room",
            {"drift_ppm": 1000.0, "erl_db": -30, "nrl_db": -45, "rt60_s": 0.6},
        ),
        ("far field RT60 1 s", {"rt60_s": 1.0, "erl_db": -25, "nrl_db": -50}),
        ("speaker clip 25%", {"speaker_clip": 0.25, "erl_db": -25, "nrl_db": -50}),
        ("mic clipping 3%", {"mic_clip_fraction": 0.03, "erl_db": -10, "nrl_db": -50}),
        ("double talk", {"erl_db": -20, "nrl_db": -50, "near": True}),
    ]
    for name, kw in conditions:
        for _ in range(n_cond):
            seed += 1
            s = seed

            def cond(kw: dict[str, Any] = kw, s: int = s) -> corpus.Case:
                kw = dict(kw)
                near = None
                if kw.pop("near", False):
                    near = corpus.scale_to(speech(10.5, s + 7, voice="en-gb", pitch=80), -30)
                return corpus.make_case(
                    "cond", speech(10, s), seed=s, delay_ms=30 + (s * 53) % 600, near_end=near, **kw
                )

            yield Spec(name, cond)
    n_neg = 8 if quick else 40
    half = len(corpus.SENTENCES) // 2
    first, second = tuple(range(half)), tuple(range(half, len(corpus.SENTENCES)))
    for i in range(n_neg):
        seed += 1
        s = seed
        dur = (3.0, 6.0, 10.0)[i % 3]

        def noise_only(dur: float = dur, s: int = s) -> corpus.Case:
            return corpus.make_case(
                "neg", speech(dur, s), seed=s, echo=False, nrl_db=-30 - (s % 4) * 10
            )

        def unrelated(dur: float = dur, s: int = s) -> corpus.Case:
            return corpus.make_case(
                "neg",
                speech(dur, s),
                seed=s,
                echo=False,
                other=corpus.speech_like(dur + 1, seed=s + 1),
                erl_db=-10,
                nrl_db=-60,
            )

        def same_voice(dur: float = dur, s: int = s) -> corpus.Case:
            return corpus.make_case(
                "neg",
                speech(dur, s, first),
                seed=s,
                echo=False,
                other=speech(dur + 1, s + 3, second),
                erl_db=-6,
                nrl_db=-60,
            )

        yield Spec("no echo: noise only", noise_only)
        yield Spec("no echo: unrelated speech", unrelated)
        yield Spec("no echo: same voice, other text", same_voice)
        yield Spec("no echo: same voice, other text, ±3 s search", same_voice, search_window(3.0))


def p(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def evaluate(spec: Spec) -> dict[str, Any]:
    """One case: build it, analyse it (timed, single thread), compare with the truth."""
    case = spec.build()
    played, recorded = corpus.pcm16(case)
    t0 = time.perf_counter()
    if spec.window is None:
        a = analyse_echo(played, RATE, recorded, RATE)
    else:
        a = analyse_echo(played, RATE, recorded, RATE, window=spec.window)
    elapsed = time.perf_counter() - t0
    captured = case.tags.get("erl_captured_db")
    return {
        "family": spec.family,
        "echo": case.echo,
        "enr_db": case.enr_db,
        "ref_s": case.ref_active_s,
        "linear": case.linear,
        "tags": case.tags,
        "score_s": a.score_s,
        "detected": a.score_s is not None and a.score_s >= ECHO_S,
        "delay_err_ms": (
            None if a.delay_ms is None or case.delay_ms is None else abs(a.delay_ms - case.delay_ms)
        ),
        "erl_db": a.erl_db,
        "erl_err_db": (None if a.erl_db is None or case.erl_db is None else a.erl_db - case.erl_db),
        "erl_err_captured_db": (
            None if a.erl_db is None or not isinstance(captured, float) else a.erl_db - captured
        ),
        "drift_ppm": a.drift_ppm,
        "drift_err_ppm": (
            abs((a.drift_ppm or 0.0) - case.drift_ppm) if case.echo and case.drift_ppm else None
        ),
        "ms_per_10s": elapsed / (len(recorded) / RATE) * 10 * 1000,
    }


def run(quick: bool, only: str | None = None, jobs: int = 1) -> list[dict[str, Any]]:
    chosen = [s for s in specs(quick) if only is None or only in s.family]
    if jobs <= 1:
        return [evaluate(s) for s in chosen]
    import multiprocessing

    _CHOSEN[:] = chosen  # the specs are closures: forked workers inherit them
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        return list(pool.map(_evaluate_index, range(len(chosen)), chunksize=2))


_CHOSEN: list[Spec] = []


def _evaluate_index(i: int) -> dict[str, Any]:
    return evaluate(_CHOSEN[i])


def erl_stats(sel: list[dict[str, Any]], key: str = "erl_err_db") -> dict[str, Any]:
    """ERL error over detected cases: n, median |err|, p90 |err|, mean (bias), in dB."""
    errs = [r[key] for r in sel if r["detected"] and r[key] is not None]
    if not errs:
        return {"n": 0}
    return {
        "n": len(errs),
        "median_abs_db": round(float(np.median(np.abs(errs))), 2),
        "p90_abs_db": round(float(np.percentile(np.abs(errs), 90)), 2),
        "bias_db": round(float(np.mean(errs)), 2),
    }


def breakdown(echo: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the ERL error comes from: case families, rooms, ENR bands, durations."""
    out: dict[str, Any] = {}
    for fam in sorted({r["family"] for r in echo}):
        out[fam] = erl_stats([r for r in echo if r["family"] == fam])
    grid = [r for r in echo if r["family"].startswith("grid")]
    for rt in sorted({r["tags"]["rt60_s"] for r in grid}):
        out[f"grid, RT60 {rt:g} s"] = erl_stats([r for r in grid if r["tags"]["rt60_s"] == rt])
    for lo, hi in ENR_BINS:
        out[f"grid, ENR [{lo}, {hi})"] = erl_stats([r for r in grid if lo <= r["enr_db"] < hi])
    for erl in sorted({r["tags"]["erl_set_db"] for r in grid}):
        for nrl in sorted({r["tags"]["nrl_set_db"] for r in grid}):
            sel = [
                r for r in grid if r["tags"]["erl_set_db"] == erl and r["tags"]["nrl_set_db"] == nrl
            ]
            stats = erl_stats(sel)
            if stats["n"]:
                out[f"grid cell ERL {erl} / NRL {nrl}"] = stats
    return out


ENR_BINS = [(-10, 100), (-15, -10), (-20, -15), (-25, -20), (-100, -25)]


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    echo = [r for r in rows if r["echo"]]
    neg = [r for r in rows if not r["echo"]]

    def rate(sel: list[dict[str, Any]]) -> str:
        return f"{sum(r['detected'] for r in sel)}/{len(sel)}" if sel else "-"

    by_enr = {}
    for lo, hi in ENR_BINS:
        sel = [r for r in echo if r["ref_s"] >= 2.5 and lo <= r["enr_db"] < hi]
        by_enr[f"ENR [{lo}, {hi})"] = rate(sel)
    target = [r for r in echo if r["ref_s"] >= 2.5 and r["enr_db"] >= -20]
    detected = [r for r in echo if r["detected"]]
    drift = [r for r in detected if r["drift_err_ppm"] is not None]
    linear = [r for r in echo if r["linear"]]
    same = [r for r in neg if "same voice" in r["family"]]
    families = sorted({r["family"] for r in rows})
    times = [r["ms_per_10s"] for r in rows]
    return {
        "cases": len(rows),
        "echo_cases": len(echo),
        "no_echo_cases": len(neg),
        "detection_by_enr_ref_3s_plus": by_enr,
        "detection_enr_ge_-20_ref_3s_plus": rate(target),
        "detection_rate_enr_ge_-20": (
            sum(r["detected"] for r in target) / len(target) if target else None
        ),
        "false_positives": f"{sum(r['detected'] for r in neg)}/{len(neg)}",
        "max_s_same_voice": max((r["score_s"] or 0 for r in same), default=None),
        "max_s_no_echo": max((r["score_s"] or 0 for r in neg), default=None),
        "delay_err_ms_median_p90": [
            p([r["delay_err_ms"] for r in detected], 50),
            p([r["delay_err_ms"] for r in detected], 90),
        ],
        "delay_err_ms_p90_drift_cases": p([r["delay_err_ms"] for r in drift], 90),
        "drift_err_ppm_median_p90": [
            p([r["drift_err_ppm"] for r in drift], 50),
            p([r["drift_err_ppm"] for r in drift], 90),
        ],
        "drift_err_ppm_median_p90_by_family": {
            f: [
                p([r["drift_err_ppm"] for r in drift if r["family"] == f], 50),
                p([r["drift_err_ppm"] for r in drift if r["family"] == f], 90),
            ]
            for f in sorted({r["family"] for r in drift})
        },
        # the target: linear paths = no clipping, no double talk, no non-linearity
        "erl_err_linear_paths": erl_stats(linear),
        "erl_err_all_detected": erl_stats(echo),
        "erl_err_linear_paths_vs_captured_power_truth": erl_stats(linear, "erl_err_captured_db"),
        "erl_err_breakdown": breakdown(echo),
        "compute_ms_per_10s_mean_median_p90_p95": [float(np.mean(times)) if times else None]
        + [p(times, q) for q in (50, 90, 95)],
        "per_family": {f: rate([r for r in rows if r["family"] == f]) for f in families},
        "speech": "espeak-ng" if corpus.have_espeak() else "numpy speech-like",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few dozen cases (CI)")
    ap.add_argument("--json", metavar="FILE", help="also write the summary as JSON")
    ap.add_argument("--rows", metavar="FILE", help="also write every case's figures as JSON")
    ap.add_argument("--only", metavar="TEXT", help="only the families whose name holds TEXT")
    ap.add_argument(
        "--jobs", type=int, default=1, help="processes (compute times then only indicative)"
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = run(args.quick, args.only, args.jobs)
    if args.rows:
        Path(args.rows).write_text(json.dumps(rows, default=float) + "\n")
    summary = summarise(rows)
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(summary, indent=2, default=lambda v: round(v, 3))
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
