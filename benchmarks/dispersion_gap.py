"""Formant dispersion (mean formant spacing, `dispersion.py`) at the label, per true rate and
channel condition: true 22.05/24 kHz sentences against 8, 16 and 44.1/48 kHz ones read at
24 kHz. Measurement for issue 14 point 4 (a gate for one-sentence claims of slower and
16 kHz audio that a slowed woman's pitch cannot give).

    .venv/bin/python benchmarks/dispersion_gap.py --set dev --rows dev.json
    .venv/bin/python benchmarks/dispersion_gap.py --set stress-dev -n 200 --rows s.json
    .venv/bin/python benchmarks/dispersion_gap.py --from-rows dev.json s.json  # tables only

Conditions: the stress split's five, plus "dark" and "phone" (sentence_corpus).
Result: see the end of this docstring (filled in after the measurement).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sentence_corpus
from dispersion import peak_spacing

from doctor.audio.rate.estimate import RateEstimate, estimate_rate

LABEL_HZ = 24000
RATES = sentence_corpus.TRUE_RATES_HZ
CONDITIONS = (*sentence_corpus.STRESS_CONDITIONS, *sentence_corpus.CHANNEL_CONDITIONS)
CLASSES = {
    "24k": (22050, 24000),
    "slowed": (44100, 48000),
    "16k": (16000,),
    "8k": (8000,),
}


def measure_row(x: np.ndarray) -> dict[str, object]:
    """Dispersion, pitch, and which rule claims (as is, and with the short-clip plausibility
    limits lifted: would any rule propose a mismatch at all)."""
    est = estimate_rate(x, LABEL_HZ).settle(len(x) / LABEL_HZ)
    with mock.patch.object(RateEstimate, "_plausible", lambda self, r, short=False: True):
        free = est.claimed()
        free_rate = (
            None
            if free is None
            else est.rate_hz
            if free != "sentence"
            else max(est.sentence_posterior, key=lambda k: est.sentence_posterior[k])
        )
    return {
        **peak_spacing(x, LABEL_HZ),
        "f0": est.features.get("f0_hz"),
        "voiced": est.features.get("voiced_share"),
        "general": est.rate_hz,
        "claimed": est.claimed(),
        "free": free,
        "free_rate": free_rate,
    }


def sentences_for(which: str, n: int) -> object:
    if which == "stress-dev":
        voices = sentence_corpus.stress_voices("dev")[:n]
        return (
            s
            for v, p, sp in voices
            for s in sentence_corpus._nearest(
                v, p, sp, sentence_corpus.stress_texts(v.split("+")[0]), RATES
            )
        )
    return sentence_corpus.sentences(which, RATES)


def rows_for(which: str, n: int, out_path: str | None) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for k, sent in enumerate(sentences_for(which, n)):  # type: ignore[call-overload]
        for i, cond in enumerate(CONDITIONS):
            y = np.asarray(sentence_corpus.condition(sent, cond, seed=k * 10 + i), np.float64)
            row = measure_row(y)
            row.update(name=sent.name, rate=sent.true_rate_hz, cond=cond, set=which)
            out.append(row)
        if out_path and k % 30 == 29:
            Path(out_path).write_text(json.dumps(out))
    if out_path:
        Path(out_path).write_text(json.dumps(out))
    return out


def pct(v: np.ndarray) -> str:
    q = np.percentile(v, [0, 1, 5, 50, 95, 100])
    return " ".join(f"{x:5.0f}" for x in q)


def summary(rows: list[dict[str, object]], key: str) -> None:
    """Per class and condition: percentiles of `key` (min p1 p5 p50 p95 max)."""
    print(f"{key}: class cond n none   min    p1    p5   p50   p95   max")
    for cls, rates in CLASSES.items():
        for cond in (*CONDITIONS, "all"):
            sel = [r for r in rows if r["rate"] in rates and cond in (r["cond"], "all")]
            v = np.array([r[key] for r in sel if r.get(key) is not None], float)
            none = int(np.sum(~np.isfinite(v))) + sum(r.get(key) is None for r in sel)
            v = v[np.isfinite(v)]
            if v.size:
                print(f"  {cls:>6} {cond:>8} {len(sel):>5} {none:>4} {pct(v)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="dev", help="dev|heldout|fresh|final|train|stress-dev")
    ap.add_argument("-n", type=int, default=200, help="stress draws")
    ap.add_argument("--rows", help="write every row as JSON here")
    ap.add_argument("--from-rows", nargs="+", help="summarise rows written before")
    ap.add_argument("--keys", default="disp,disp_phone")
    args = ap.parse_args()
    if args.from_rows:
        rows = [r for p in args.from_rows for r in json.loads(Path(p).read_text())]
    else:
        rows = rows_for(args.set, args.n, args.rows)
    for key in args.keys.split(","):
        summary(rows, key)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
