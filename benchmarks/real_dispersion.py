"""Formant spacing and pitch at the label on REAL speakers' voices (`real_corpus.py`), per
class and condition. Measurement only (issue 14 point 4): would a (pitch 60-140 Hz, spacing)
gate separate real women read slowed (44.1/48 kHz at 24) from real men at a true 24 kHz?

    .venv/bin/python benchmarks/real_dispersion.py --rows real.json   # measure (~3 min)
    .venv/bin/python benchmarks/real_dispersion.py --from-rows real.json

Rows and tables are `dispersion_gap.py`'s (its measure_row, summary, joint, worst and
corner_bound), on the 17 Festival/Flite voices at the six true rates under its seven
conditions; then, per condition, the slowed women (and the child) in the pitch window
against the men at 22.05/24 kHz in the same window: the highest slowed spacing, the lowest
true one, and whether they overlap.

Result (2026-12-02, 714 rows; "24k" is 22.05 and 24 kHz, "slowed" 44.1 and 48 kHz read at 24):
spacing (Hz)     all conditions: min   p5  p50  p95  max    clean: min   p5  p50  p95  max
  24k (238 / 34)                 500  664  894 1266 1546           646  734  921 1328 1460
  slowed                         321  401  502  650  825           391  422  546  665  710
  16k at 24 (119 / 17)           623  808 1062 1735 1792           844  917 1141 1722 1740
pitch at the label (all conditions): 24k 74 / 78 / 147 / 254 / 474 (phone), slowed
37 / 41 / 68 / 128 / 140, 16k 104 / 105 / 203 / 377 / 384.
Pitch 60-140 Hz: slowed real women (max) against real men at 24/22.05 kHz (min): separate
only under noise25 (+59 Hz), noise15 (+74) and phone (+98); OVERLAP clean (flite_slt 44.1k
708 vs flite_kal16 22.05k 646), bright (upc_ca_ona 44.1k 685 vs flite_kal16 24k 652),
clipped (flite_slt 48k 537 vs flite_rms 24k 500), dark (czech_dita 44.1k 697 vs pc_diphone
22.05k 639); with the child (czech_krb at 44.1k: 710 clean, 825 bright) worse. Oracle bound
of a monotone (pitch, spacing) gate on these rows: 85 % of slowed sentences (70 % with a
10 % margin; 35 % caught today); 16 kHz 25 % (15 %). No gate: the real voices agree with
the espeak-ng finding (dispersion_gap.py). The lowest true 24 kHz rows: flite_rms clipped
500 (24k) and 505 (22.05k; with the pitch and plausibility limits lifted a model proposes
48 and 44.1 kHz for them), msu_ru clipped 595, pc_diphone clipped 604-607.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dispersion_gap as gap
import real_corpus
import sentence_corpus

PITCH_WINDOW_HZ = (60.0, 140.0)
SPEAKER = {v.name: v.speaker for v in real_corpus.VOICES}


def rows() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for k, (voice, sent) in enumerate(real_corpus.sentences()):
        for i, cond in enumerate(gap.CONDITIONS):
            y = np.asarray(sentence_corpus.condition(sent, cond, seed=k * 10 + i), np.float64)
            row = gap.measure_row(y)
            row.update(
                name=sent.name,
                rate=sent.true_rate_hz,
                cond=cond,
                set="real",
                speaker=voice.speaker,
            )
            out.append(row)
    return out


def _in_window(r: dict[str, object]) -> bool:
    f0 = r.get("f0")
    d = r.get("disp")
    return (
        f0 is not None
        and PITCH_WINDOW_HZ[0] <= float(f0) < PITCH_WINDOW_HZ[1]  # type: ignore[arg-type]
        and d is not None
        and bool(np.isfinite(float(d)))  # type: ignore[arg-type]
    )


def women_vs_men(rows: list[dict[str, object]]) -> None:
    """Per condition, in the pitch window: slowed women (then women and the child; highest
    spacing) against true 22.05/24 kHz men (lowest spacing). Separable when below."""
    lo, hi = PITCH_WINDOW_HZ

    def cell(r: dict[str, object], n: int) -> str:
        name = str(r["name"]).split(":")[0]
        return f"{n:>3} {float(r['disp']):4.0f} {name} {float(r['f0']):.0f} Hz"  # type: ignore[arg-type]

    for who, speakers in (("women", ("F",)), ("women+child", ("F", "C"))):
        print(
            f"pitch {lo:.0f}-{hi:.0f} Hz at the label: slowed {who} (max) vs men at 24/22.05k (min)"
        )
        for cond in (*gap.CONDITIONS, "all"):
            sel = [r for r in rows if _in_window(r) and cond in (r["cond"], "all")]
            slow = [r for r in sel if r["rate"] in gap.SLOWER and r["speaker"] in speakers]
            men = [r for r in sel if r["rate"] in gap.CLASSES["24k"] and r["speaker"] == "M"]
            if not slow or not men:
                print(f"  {cond:>8}  slowed {len(slow)}, men {len(men)}: nothing to compare")
                continue
            top = max(slow, key=lambda r: float(r["disp"]))  # type: ignore[arg-type]
            bottom = min(men, key=lambda r: float(r["disp"]))  # type: ignore[arg-type]
            margin = float(bottom["disp"]) - float(top["disp"])  # type: ignore[arg-type]
            print(
                f"  {cond:>8}  {cell(top, len(slow)):<42} | {cell(bottom, len(men)):<40} "
                f"{'separate' if margin > 0 else 'OVERLAP'} ({margin:+.0f} Hz)"
            )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", help="write every row as JSON here")
    ap.add_argument("--from-rows", help="summarise rows written before")
    args = ap.parse_args()
    if args.from_rows:
        got = json.loads(Path(args.from_rows).read_text())
    else:
        missing = real_corpus.missing_tools()
        if missing:
            print(f"real voices: skipped, {' and '.join(missing)} not installed")
            return 0
        got = rows()
        if args.rows:
            Path(args.rows).write_text(json.dumps(got))
    gap.summary(got, "disp")
    print()
    print("pitch at the label (f0, Hz):")
    gap.summary(got, "f0")
    print()
    gap.joint(got, "disp")
    print()
    gap.worst(got, "disp", 10)
    print()
    print("disp: the best monotone (pitch, disp) gate, an oracle bound")
    gap.corner_bound(got, "disp")
    print()
    women_vs_men(got)
    return 0


if __name__ == "__main__":
    sys.exit(main())
