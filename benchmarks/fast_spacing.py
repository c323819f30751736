"""Wide-band formant spacing at the label: 8 kHz sentences read at 24 kHz (every spacing x3)
against true 24 / 22.05 kHz sentences (issue 14 point 4, 8 kHz only). Measurement.

    .venv/bin/python benchmarks/fast_spacing.py --rows fast.json     # measure (slow)
    .venv/bin/python benchmarks/fast_spacing.py --from-rows fast.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sentence_corpus

from doctor.audio.rate.features import HOP_S, PITCH_WINDOW_S, frames, pitch_frames

CONDITIONS = (*sentence_corpus.STRESS_CONDITIONS, *sentence_corpus.CHANNEL_CONDITIONS)
FRAME_S = 0.04
NFFT = 2048
BAND = (300.0, 11000.0)
LIFTERS_MS = (1.5, 2.0, 2.5, 3.5)
MIN_PROMINENCE = 0.3
MAX_BELOW_TOP = 4.5
MAX_FRAMES = 150


def measure(x: np.ndarray, rate: int = 24000) -> dict[str, float]:
    x = np.asarray(x, np.float64)
    from scipy.signal import find_peaks

    f0, _ = pitch_frames(x, rate)
    idx = np.flatnonzero(np.isfinite(f0))
    out: dict[str, float] = {"nv": float(idx.size), "nf": float(f0.size)}
    out["f0"] = float(np.median(f0[idx])) if idx.size else float("nan")
    if idx.size > MAX_FRAMES:
        idx = idx[np.linspace(0, idx.size - 1, MAX_FRAMES).astype(int)]
    size = int(FRAME_S * rate)
    hop = int(HOP_S * rate)
    offset = max(0, (int(PITCH_WINDOW_S * rate) - size) // 2)
    if x.size < offset + size:
        return out
    fr = frames(x[offset:], size, hop)
    idx = idx[idx < fr.shape[0]]
    if idx.size < 5:
        return out
    sel = fr[idx] * np.hanning(size)
    spec = np.abs(np.fft.rfft(sel, NFFT, axis=1)) ** 2
    logp = np.log(spec + 1e-10 * spec.max(axis=1, keepdims=True) + 1e-30)
    cep = np.fft.irfft(logp, NFFT, axis=1)
    q = np.arange(NFFT)
    q = np.minimum(q, NFFT - q) / rate
    freqs = np.fft.rfftfreq(NFFT, 1.0 / rate)
    b = (freqs >= BAND[0]) & (freqs <= BAND[1])
    fb = freqs[b]
    for ms in LIFTERS_MS:
        cut = np.minimum(1.0 / f0[idx], ms / 1000)[:, None]
        lift = np.where(q[None, :] < cut, 0.5 + 0.5 * np.cos(np.pi * q[None, :] / cut), 0.0)
        env = np.fft.rfft(cep * lift, NFFT, axis=1).real[:, b]
        span, steps, n2 = 0.0, 0, 0
        gaps: list[float] = []
        for e in env:
            pk, _ = find_peaks(e, prominence=MIN_PROMINENCE)
            pk = pk[e[pk] >= e.max() - MAX_BELOW_TOP]
            if pk.size >= 2:
                n2 += 1
                span += fb[pk[-1]] - fb[pk[0]]
                steps += pk.size - 1
                gaps.extend(np.diff(fb[pk]))
        out[f"d{ms}"] = span / steps if steps else float("nan")
        out[f"g{ms}"] = float(np.median(gaps)) if gaps else float("nan")
        out[f"n2_{ms}"] = n2 / idx.size
    return out


def jobs(which: str):  # type: ignore[no-untyped-def]
    if which == "stress_dev":
        return sentence_corpus.stress_sentences("dev", rates=(8000, 22050, 24000))
    if which in ("dev", "train"):
        return sentence_corpus.sentences(which, rates=(8000,))
    import real_corpus

    return (s for _, s in real_corpus.sentences(real_corpus.VOICES, rates=(8000, 22050, 24000)))


def one(arg: tuple[str, int, object]) -> list[dict[str, object]]:
    which, k, sent = arg
    conds = (
        CONDITIONS if (which in ("stress_dev", "real") or sent.true_rate_hz != 8000) else ("clean",)
    )  # type: ignore[attr-defined]
    rows = []
    for i, cond in enumerate(conds):
        y = sentence_corpus.condition(sent, cond, seed=k * 10 + i)  # type: ignore[arg-type]
        r: dict[str, object] = dict(measure(y))
        r.update(set=which, name=sent.name, rate=sent.true_rate_hz, cond=cond)  # type: ignore[attr-defined]
        rows.append(r)
    return rows


def table(rows: list[dict[str, object]], key: str) -> None:
    print(f"== {key}   class/set/cond   n  min  p1  p5  p50  p95  max   (nan n)")
    groups: dict[tuple[str, str, str], list[float]] = {}
    for r in rows:
        cls = "8k" if r["rate"] == 8000 else "24k"
        hi = "hi" if (r.get("f0") or 0) >= 240 else "lo"  # type: ignore[operator]
        v = float(r.get(key, float("nan")))  # type: ignore[arg-type]
        for g in (
            (cls, str(r["set"]), str(r["cond"])),
            (cls, "ALL", str(r["cond"])),
            (cls, "ALL", "all"),
            (cls, f"ALL f0{hi}", "all"),
        ):
            groups.setdefault(g, []).append(v)
    for g in sorted(groups):
        a = np.array(groups[g])
        f = a[np.isfinite(a)]
        if not f.size:
            continue
        p = np.percentile(f, [0, 1, 5, 50, 95, 100])
        print(
            f"{g[0]:>4} {g[1]:>12} {g[2]:>8} {f.size:5d} "
            + " ".join(f"{v:5.0f}" for v in p)
            + f"  ({a.size - f.size})"
        )


def worst(rows: list[dict[str, object]], key: str, n: int = 12) -> None:
    t = [r for r in rows if r["rate"] != 8000 and np.isfinite(float(r.get(key, np.nan)))]  # type: ignore[arg-type]
    t.sort(key=lambda r: -float(r[key]))  # type: ignore[arg-type]
    print(f"-- worst true 24/22.05k rows by {key}")
    for r in t[:n]:
        print(
            f"  {float(r[key]):6.0f} f0={float(r['f0']):4.0f} nv={r['nv']:.0f} {r['set']} {r['cond']} {r['name']}"
        )  # type: ignore[arg-type]
    e = [r for r in rows if r["rate"] == 8000 and np.isfinite(float(r.get(key, np.nan)))]  # type: ignore[arg-type]
    e.sort(key=lambda r: float(r[key]))  # type: ignore[arg-type]
    print(f"-- lowest 8k rows by {key}")
    for r in e[:n]:
        print(
            f"  {float(r[key]):6.0f} f0={float(r['f0']):4.0f} nv={r['nv']:.0f} {r['set']} {r['cond']} {r['name']}"
        )  # type: ignore[arg-type]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows")
    ap.add_argument("--from-rows")
    ap.add_argument("--sets", default="real,dev,train,stress_dev")
    ap.add_argument("--every", type=int, default=1, help="every Nth sentence (sampling)")
    ap.add_argument("--procs", type=int, default=2)
    args = ap.parse_args()
    if args.from_rows:
        rows = json.loads(Path(args.from_rows).read_text())
    else:
        from multiprocessing import Pool

        work = []
        for which in args.sets.split(","):
            for k, s in enumerate(jobs(which)):
                if k % args.every == 0:
                    work.append((which, k, s))
        print(f"# {len(work)} sentences", flush=True)
        rows = []
        with Pool(args.procs) as pool:
            for got in pool.imap_unordered(one, work, chunksize=4):
                rows.extend(got)
        if args.rows:
            Path(args.rows).write_text(json.dumps(rows))
    for ms in LIFTERS_MS:
        table(rows, f"d{ms}")
        worst(rows, f"d{ms}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
