"""Accuracy and cost of the sample-rate estimator on held-out speech read at 24 kHz.

    .venv/bin/python benchmarks/bench_rate_accuracy.py          # full held-out split
    .venv/bin/python benchmarks/bench_rate_accuracy.py --quick  # a third of it (CI, < 60 s)
    .venv/bin/python benchmarks/bench_rate_accuracy.py --fit    # refit on the train split
    .venv/bin/python benchmarks/bench_rate_accuracy.py --sentences-only  # one-sentence table
    .venv/bin/python benchmarks/bench_rate_accuracy.py --stress dev   # random voices (slow)
    .venv/bin/python benchmarks/bench_rate_accuracy.py --long-stress dev --draws 40  # > 8 s
    .venv/bin/python benchmarks/bench_rate_accuracy.py --real  # Festival/Flite real voices

Clips come from `rate_corpus.py` (espeak-ng voices when installed, and numpy speech-like
signals): each is captured at a true rate R and read as 24 kHz. Printed: the confusion of
the estimate by true rate, and what validate-audio reports end to end (a
`sample_rate_mismatch` finding, by severity). The false-mismatch rate on true 24 kHz (and
on 22050, its indistinguishable neighbour) must stay 0: exit status 1 otherwise.

Then single sentences (`sentence_corpus.py`, 2-5 s as labelled, six languages): per true
rate, how many validate-audio catches (a `sample_rate_mismatch` finding) out of how many,
per set (dev: looked at while designing the one-sentence rules; heldout: looked at three
times during the first design, one change followed from it, and once more for the sentence
model; fresh: evaluated once after the first design, and once with the sentence model;
final: four languages the model never heard, evaluated once after the sentence model was
frozen). The sentence model itself is fitted on a separate "train" split
(`--fit-short`). A false mismatch on a true 24 kHz sentence also exits 1. Each rate's
target (issue 14: 8 kHz and 44.1/48 kHz caught in 90 %, 16 kHz in 70 %) is printed under
the header, and a set's rates that miss it on a "below target" line: only the 24 kHz row
sets the exit status (CI runs --quick), so the table must say itself where it falls short.

`--stress dev|heldout` reads the stress split (400 random espeak-ng voice draws in 18
languages, any variant, pitch 0-99, speed 80-260; two halves of 200) clean, under 25 and
15 dB of white noise, bright and clipped: 6,000 clips a half, several minutes, so not in
--quick. Any mismatch on true 24 kHz exits 1. The dev half set the plausibility limits in
`estimate.py`; the held-out half was evaluated once, after they were frozen, found 6 false
claims (of 27 before), and the limits were tightened on what it showed; a "fresh" set of
200 new draws (own seed) was then evaluated once.

`--long-stress dev|heldout|fresh` reads the long stress split (sentence_corpus: one random
voice's sentences joined to 8.5-20 s as labelled, so more than PLAUSIBLE_MAX_S of speech) at
each true rate under the same five conditions, and true 24 kHz also through a 16 kHz stage
(band-limited to 8 kHz, upsampled back: correctly labelled, so any claim there is false).
`--draws N` takes the half's first N voices (31 clips each). Printed: caught / total per
condition and rate, false claims per 1,000 true 24 kHz clips, each false claim; exit 1 on any.
History: the dev half's first 40 draws, with the general gate alone over 8 s, had 16 false
claims on 240 true 24 kHz clips (67 per 1,000); the long-clip rule in `estimate.py` was set
on them (0 left), frozen, and the heldout and fresh halves' first 40 draws evaluated once
(5 and 6 false claims of 240); x1.5 was dropped on long clips after a property test found a
child at 24 kHz claimed 16 kHz, before those halves were read (it removes 5 of the fresh
half's 6). Left: 5 and 1 (see estimate.py). Not in --quick: 40 draws take 10-20 minutes.

`--real` reads one sentence per real speaker's voice (`real_corpus.py`: Festival and Flite
voices recorded from real people, 17 voices in six languages) at each true rate, under every
condition of the stress and channel sets: caught / total per condition and rate, the clean
result per voice, and each claim on true 24 or 22.05 kHz (exit 1 on any); the default run
ends with it, --quick with a third of the voices, clean (about 10 s). Without festival
or flite it prints one line and exits 0 (1 in CI, AGENT_DOCTOR_REQUIRE_REAL_PARTS=1).

`--fit` measures the train split only, fits the model (feature means quadratic in log s,
one residual covariance) and prints the constants to paste into `doctor/audio/rate/estimate.py`;
`--fit-short` does the same for the one-sentence model on the sentence corpus's train split.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import rate_corpus as corpus  # noqa: E402
import sentence_corpus  # noqa: E402

from doctor.audio.format.analyze import validate_bytes  # noqa: E402
from doctor.audio.rate.estimate import (  # noqa: E402
    CANDIDATES_HZ,
    FEATURE_NAMES,
    PLAUSIBLE_MAX_S,
    estimate_rate,
    feature_vector,
)
from doctor.audio.rate.features import measure  # noqa: E402

LABEL_HZ = 24000
SHRINK = 0.1  # covariance shrinkage toward its diagonal: 8 features, ~200 rows
WINDOW_S = 30  # the estimator sees at most 30 s of active audio


def to_i16_bytes(x: np.ndarray) -> bytes:
    return np.clip(np.round(x * 32767), -32768, 32767).astype("<i2").tobytes()


def fit(quick: bool) -> int:
    rows, ls = [], []
    for clip in corpus.clips("train", quick):
        for r in corpus.TRUE_RATES_HZ:
            f = measure(clip.at_rate(r)[: WINDOW_S * LABEL_HZ], LABEL_HZ)
            if isinstance(f, str):
                print(f"  skip {clip.name} at {r}: {f}", file=sys.stderr)
                continue
            rows.append(feature_vector(f))
            ls.append(math.log(LABEL_HZ / r))
    print(f"# fitted on {len(rows)} train rows ({len(rows) // len(corpus.TRUE_RATES_HZ)} clips)")
    print_fit(rows, ls, "")
    return 0


def fit_short() -> int:
    """The one-sentence model: the same form, fitted on single sentences (train split)."""
    rows, ls = [], []
    for sent in sentence_corpus.sentences("train"):
        f = measure(sent.samples, LABEL_HZ)
        if isinstance(f, str):
            print(f"  skip {sent.name}: {f}", file=sys.stderr)
            continue
        rows.append(feature_vector(f))
        ls.append(math.log(LABEL_HZ / sent.true_rate_hz))
    print(f"# fitted on {len(rows)} single sentences (sentence_corpus train split)")
    print_fit(rows, ls, "SHORT_")
    return 0


def print_fit(rows: list[list[float]], ls: list[float], prefix: str) -> None:
    """Least squares for the means (quadratic in log s), shrunk residual covariance."""
    x = np.asarray(rows)
    a = np.vander(np.asarray(ls), 3, increasing=True)  # 1, ls, ls^2
    coef, *_ = np.linalg.lstsq(a, x, rcond=None)
    res = x - a @ coef
    cov = np.cov(res.T) * (len(x) - 1) / (len(x) - 3)
    cov = (1 - SHRINK) * cov + SHRINK * np.diag(np.diag(cov))
    print(f"# features: {', '.join(FEATURE_NAMES)}")

    def tup(v: np.ndarray) -> str:
        return "(" + ", ".join(f"{float(e):.5g}" for e in v) + ",)"

    for i in range(3):
        print(f"{prefix}MEAN_C{i}: tuple[float, ...] = {tup(coef[i])}")
    print(f"{prefix}COVARIANCE: tuple[tuple[float, ...], ...] = (")
    for row in cov:
        print(f"    {tup(row)},")
    print(")")


def evaluate(quick: bool, split: str = "test") -> int:
    rates = corpus.TRUE_RATES_HZ
    table: dict[int, dict[int | None, int]] = {r: {} for r in rates}
    reported: dict[int, dict[str, int]] = {r: {} for r in rates}
    n = dict.fromkeys(rates, 0)
    seconds = 0.0
    clips = list(corpus.clips(split, quick))
    for clip in clips:
        for r in rates:
            x = clip.at_rate(r)
            est = estimate_rate(x[: WINDOW_S * LABEL_HZ], LABEL_HZ)
            table[r][est.rate_hz] = table[r].get(est.rate_hz, 0) + 1
            v = validate_bytes(to_i16_bytes(x))
            sev = next((f.severity for f in v.findings if f.code == "sample_rate_mismatch"), "-")
            reported[r][sev] = reported[r].get(sev, 0) + 1
            n[r] += 1
    cols: list[int | None] = [*CANDIDATES_HZ, None]
    what = f"held-out ({split})" if split != "train" else "TRAIN (in-sample, for diagnosis only)"
    print(f"{what} clips: {len(clips)} ({'quick' if quick else 'full'}), each read as 24 kHz")
    print("estimate by true rate (rows: true; columns: estimated; None = not estimated)")
    print(f"{'true':>7} " + " ".join(f"{c!s:>6}" for c in cols) + "   mismatch reported")
    for r in rates:
        cells = " ".join(f"{table[r].get(c, 0):>6}" for c in cols)
        rep = reported[r]
        shown = ", ".join(f"{k} {v}" for k, v in sorted(rep.items()) if k != "-") or "none"
        print(f"{r:>7} {cells}   {n[r] - rep.get('-', 0)}/{n[r]} ({shown})")
    correct = sum(table[r].get(r, 0) for r in rates)
    family = sum(
        c
        for r in rates
        for e, c in table[r].items()
        if e is not None and max(e, r) / min(e, r) < 1.1
    )
    total = sum(n.values())
    print(
        f"exact rate: {correct}/{total}; "
        f"right within 10 % (22.05~24, 44.1~48 kHz): {family}/{total}"
    )
    false24 = n[24000] - reported[24000].get("-", 0)
    false22 = n[22050] - reported[22050].get("-", 0)
    print(
        f"false mismatch on true 24 kHz: {false24}/{n[24000]}; "
        f"on 22050 Hz (9 % off, not claimed): {false22}/{n[22050]}"
    )
    found16 = n[16000] - reported[16000].get("-", 0)
    print(f"16 kHz read as 24 kHz reported: {found16}/{n[16000]}")
    # cost: the estimator on 30 s of speech (what validate-audio hands it at most)
    x = np.concatenate([c.at_rate(LABEL_HZ) for c in clips])
    x = np.tile(x, math.ceil(WINDOW_S * LABEL_HZ / x.size))[: WINDOW_S * LABEL_HZ]
    t0 = time.perf_counter()
    reps = 3
    for _ in range(reps):
        estimate_rate(x, LABEL_HZ)
    seconds = (time.perf_counter() - t0) / reps
    print(f"estimator time on {WINDOW_S} s of speech: {seconds * 1000:.0f} ms")
    return 1 if false24 or false22 else 0


# Issue 14 point 4: the share of single sentences a true rate must be caught in. 24000 Hz
# (no false mismatch) is the only one the exit status enforces; these are printed, so
# nobody reads the table as met where it is not.
SENTENCE_TARGETS = {8000: 0.9, 16000: 0.7, 44100: 0.9, 48000: 0.9}


def target_text(rate: int) -> str:
    """The target cell of the one-sentence table for a true rate."""
    if rate == LABEL_HZ:
        return "0 caught"
    share = SENTENCE_TARGETS.get(rate)
    return f">= {share:.0%}" if share is not None else "-"


def below_target(caught: dict[int, int], total: dict[int, int]) -> list[str]:
    """The rates of one set that miss their target, each as 'RATE Hz c/n (p %, target t %)'."""
    out = []
    for rate, share in SENTENCE_TARGETS.items():
        n = total.get(rate, 0)
        if n and caught.get(rate, 0) < share * n:
            c = caught.get(rate, 0)
            out.append(f"{rate} Hz {c}/{n} ({c / n:.0%}, target {share:.0%})")
    if caught.get(LABEL_HZ):
        out.append(f"{LABEL_HZ} Hz {caught[LABEL_HZ]} false mismatch(es) (target 0)")
    return out


def evaluate_sentences(quick: bool) -> int:
    """The one-sentence table: caught / total per true rate and set, and which rule caught;
    each rate's target, and which rates of a set are below it."""
    rates = sentence_corpus.TRUE_RATES_HZ
    sets = ("heldout", "fresh") if quick else ("dev", "heldout", "fresh", "final")
    print("single sentences (2-5 s as labelled), read as 24 kHz: caught / total")
    print(f"{'set':>8} " + " ".join(f"{r:>9}" for r in rates) + "   caught by (rule)")
    print(f"{'target':>8} " + " ".join(f"{target_text(r):>9}" for r in rates))
    status = 0
    missed_sets: list[str] = []
    for name in sets:
        caught = dict.fromkeys(rates, 0)
        total = dict.fromkeys(rates, 0)
        rules: dict[str, int] = {}
        voices, _ = sentence_corpus.SPLITS[name]
        chosen = voices[::3] if quick else voices
        for sent in sentence_corpus.sentences(name, voices=chosen):
            v = validate_bytes(to_i16_bytes(sent.samples))
            total[sent.true_rate_hz] += 1
            if "sample_rate_mismatch" in v.codes():
                caught[sent.true_rate_hz] += 1
                rule = str((v.stats.get("rate") or {}).get("claimed_by"))
                rules[rule] = rules.get(rule, 0) + 1
        cells = " ".join(f"{caught[r]:>4}/{total[r]:<4}" for r in rates)
        by = ", ".join(f"{k} {n}" for k, n in sorted(rules.items()))
        print(f"{name:>8} {cells}   {by}")
        missed = below_target(caught, total)
        if missed:
            print(f"{'':>8} below target: " + "; ".join(missed))
            missed_sets.append(name)
        if caught[24000]:
            status = 1
    print("24000 must stay 0 (a false mismatch); 22050 is 9 % off, a claim there names 16 kHz")
    if missed_sets:
        print(
            "issue 14 point 4 targets NOT met in: " + ", ".join(missed_sets) + " (the exit "
            "status enforces only the 24000 Hz row)"
        )
    else:
        print("issue 14 point 4 targets met in every set")
    return status


def evaluate_stress(half: str) -> int:
    """The stress split (random voices, pitch and speed; see sentence_corpus): caught /
    total per true rate and condition. Any claim on true 24 kHz audio exits 1."""
    rates = sentence_corpus.TRUE_RATES_HZ
    conds = sentence_corpus.STRESS_CONDITIONS
    caught = {(c, r): 0 for c in conds for r in rates}
    total = dict.fromkeys(caught, 0)
    false: list[str] = []
    for k, sent in enumerate(sentence_corpus.stress_sentences(half)):
        for i, cond in enumerate(conds):
            y = sentence_corpus.condition(sent, cond, seed=k * 10 + i)
            v = validate_bytes(to_i16_bytes(y))
            total[cond, sent.true_rate_hz] += 1
            if "sample_rate_mismatch" in v.codes():
                caught[cond, sent.true_rate_hz] += 1
                if sent.true_rate_hz == LABEL_HZ:
                    by = (v.stats.get("rate") or {}).get("claimed_by")
                    false.append(f"{cond}: {sent.name} (claimed by {by})")
    print(f"stress split, {half} half: random voices, one sentence each, read as 24 kHz")
    print(f"{'condition':>9} " + " ".join(f"{r:>9}" for r in rates))
    for cond in conds:
        cells = " ".join(f"{caught[cond, r]:>4}/{total[cond, r]:<4}" for r in rates)
        print(f"{cond:>9} {cells}")
    for line in false:
        print(f"  FALSE mismatch on 24 kHz, {line}")
    print(f"false mismatches on true 24 kHz: {len(false)} (must be 0)")
    return 1 if false else 0


def evaluate_long_stress(half: str, draws: int | None) -> int:
    """The long stress split: caught / total per condition and true rate, false claims on
    true 24 kHz (per 1,000 and each one), and how many clips had 8 s of speech or less."""
    rates = sentence_corpus.TRUE_RATES_HZ
    conds = sentence_corpus.LONG_CONDITIONS
    caught = {(c, r): 0 for c in conds for r in rates}
    total = dict.fromkeys(caught, 0)
    false: list[str] = []
    short = 0
    for clip in sentence_corpus.long_stress_clips(half, draws=draws):
        for i, cond in enumerate(conds):
            if cond == sentence_corpus.BAND16K and clip.true_rate_hz != LABEL_HZ:
                continue
            y = sentence_corpus.long_condition(clip, cond, clip.seed * 10 + i)
            v = validate_bytes(to_i16_bytes(y))
            rate = v.stats.get("rate") or {}
            total[cond, clip.true_rate_hz] += 1
            short += bool(rate.get("active_s", 0) <= PLAUSIBLE_MAX_S)
            if "sample_rate_mismatch" in v.codes():
                caught[cond, clip.true_rate_hz] += 1
                if clip.true_rate_hz == LABEL_HZ:
                    false.append(
                        f"{cond}: {clip.name} -> {rate.get('estimated_rate_hz')} "
                        f"(claimed by {rate.get('claimed_by')}, f0 "
                        f"{(rate.get('features') or {}).get('f0_hz')} Hz)"
                    )
    n = sum(total.values())
    print(f"long stress split, {half} half: {n} clips of 8.5-20 s as labelled, read as 24 kHz")
    print(f"{'condition':>9} " + " ".join(f"{r:>9}" for r in rates))
    for cond in conds:
        cells = " ".join(
            f"{caught[cond, r]:>4}/{total[cond, r]:<4}" if total[cond, r] else f"{'-':>9}"
            for r in rates
        )
        print(f"{cond:>9} {cells}")
    recall = " ".join(
        f"{r}: {sum(caught[c, r] for c in conds)}/{sum(total[c, r] for c in conds)}"
        for r in rates
        if r != LABEL_HZ
    )
    print(f"caught, all conditions: {recall}")
    n24 = sum(total[c, LABEL_HZ] for c in conds)
    for line in false:
        print(f"  FALSE mismatch on 24 kHz, {line}")
    per_k = 1000 * len(false) / max(n24, 1)
    print(f"false mismatches on true 24 kHz: {len(false)}/{n24} ({per_k:.1f} per 1,000; must be 0)")
    print(f"clips with {PLAUSIBLE_MAX_S:.0f} s of speech or less (the short-clip limits): {short}")
    return 1 if false else 0


REAL_CONDITIONS = (*sentence_corpus.STRESS_CONDITIONS, *sentence_corpus.CHANNEL_CONDITIONS)


def evaluate_real(quick: bool = False) -> int:
    """One sentence per real voice and true rate (real_corpus), under REAL_CONDITIONS;
    quick: a third of the voices, clean only (under 15 s with synthesis)."""
    import os
    import subprocess

    import real_corpus

    missing = real_corpus.missing_tools()
    if missing:
        print(f"real voices: skipped, {' and '.join(missing)} not installed")
        return 1 if os.environ.get(real_corpus.REQUIRE_ENV) == "1" else 0
    rates = sentence_corpus.TRUE_RATES_HZ
    conds = ("clean",) if quick else REAL_CONDITIONS
    voices = real_corpus.VOICES[1::3] if quick else real_corpus.VOICES
    caught = {(c, r): 0 for c in conds for r in rates}
    total = dict.fromkeys(caught, 0)
    per_voice: dict[str, dict[int, str]] = {}
    false: list[str] = []
    try:
        said = list(real_corpus.sentences(voices))
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:  # a voice not installed
        print(f"real voices: skipped, {e}")
        return 1 if os.environ.get(real_corpus.REQUIRE_ENV) == "1" else 0
    for k, (voice, sent) in enumerate(said):
        for i, cond in enumerate(conds):
            y = sentence_corpus.condition(sent, cond, seed=k * 10 + i)
            v = validate_bytes(to_i16_bytes(y))
            rate = v.stats.get("rate") or {}
            hit = "sample_rate_mismatch" in v.codes()
            total[cond, sent.true_rate_hz] += 1
            caught[cond, sent.true_rate_hz] += hit
            if cond == "clean":
                cell = str(rate.get("estimated_rate_hz")) if hit else "-"
                per_voice.setdefault(f"{voice.name} ({voice.lang} {voice.speaker})", {})[
                    sent.true_rate_hz
                ] = cell
            if hit and sent.true_rate_hz in (LABEL_HZ, 22050):
                false.append(
                    f"{cond} {sent.name} ({sent.labelled_s:.1f} s) -> "
                    f"{rate.get('estimated_rate_hz')} by {rate.get('claimed_by')}: "
                    f"{rate.get('reason')}"
                )
    n_voices = len(per_voice)
    print(
        f"real voices (Festival/Flite, {n_voices} speakers{', quick' if quick else ''}): "
        "one sentence each, read as 24 kHz"
    )
    print(f"{'condition':>9} " + " ".join(f"{r:>9}" for r in rates))
    for cond in conds:
        cells = " ".join(f"{caught[cond, r]:>4}/{total[cond, r]:<4}" for r in rates)
        print(f"{cond:>9} {cells}")
    print("clean, per voice (the rate claimed, - for none):")
    for name, row in per_voice.items():
        print(f"  {name:<36} " + " ".join(f"{row.get(r, '?'):>6}" for r in rates))
    for line in false:
        print(f"  FALSE mismatch, {line}")
    n = sum(total[c, r] for c in conds for r in (LABEL_HZ, 22050))
    print(f"false mismatches on true 24 and 22.05 kHz: {len(false)}/{n} (must be 0)")
    return 1 if false else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a third of the clips (CI)")
    ap.add_argument("--fit", action="store_true", help="fit on the train split, print constants")
    ap.add_argument(
        "--fit-short", action="store_true", help="fit the one-sentence model, print constants"
    )
    ap.add_argument("--sentences-only", action="store_true", help="only the one-sentence table")
    ap.add_argument(
        "--stress",
        choices=("dev", "heldout", "fresh"),
        help="only the stress split's half (random voices x 5 conditions; not in --quick)",
    )
    ap.add_argument(
        "--long-stress",
        choices=("dev", "heldout", "fresh"),
        help="only the long stress split's half (random voices, 8.5-20 s; not in --quick)",
    )
    ap.add_argument(
        "--real", action="store_true", help="only the real voices (Festival/Flite) table"
    )
    ap.add_argument("--draws", type=int, help="--long-stress: the half's first N voices")
    ap.add_argument(
        "--split",
        choices=("test", "final", "fresh", "all", "train"),
        default="all",
        help="held-out split(s) to report (train: in-sample, for diagnosis)",
    )
    args = ap.parse_args()
    if not corpus.espeak_available():
        print("espeak-ng not found: numpy speech-like clips only", file=sys.stderr)
    if args.fit:
        return fit(args.quick)
    if args.fit_short:
        return fit_short()
    if args.stress:
        return evaluate_stress(args.stress)
    if args.long_stress:
        return evaluate_long_stress(args.long_stress, args.draws)
    if args.real:
        return evaluate_real()
    status = 0
    if not args.sentences_only:
        splits = ("test", "final", "fresh") if args.split == "all" else (args.split,)
        for split in splits:
            status |= evaluate(args.quick, split)
            print()
    if corpus.espeak_available():
        status |= evaluate_sentences(args.quick)
    if not args.sentences_only:
        print()
        status |= evaluate_real(args.quick)
    return status


if __name__ == "__main__":
    sys.exit(main())
