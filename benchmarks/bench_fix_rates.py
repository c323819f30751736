"""validate-audio --fix's resampler at usual and odd source rates: seconds and peak memory.

    .venv/bin/python benchmarks/bench_fix_rates.py          # 60 s of audio per rate
    .venv/bin/python benchmarks/bench_fix_rates.py --quick  # 10 s (CI)

Odd rates (44101, 383999 Hz) are coprime with 24000; exact polyphase factors designed a
filter of up to 7.7 M taps per block (383999 Hz: 33 s per 10 s of audio). The factors are
bounded now (`convert.MAX_FACTOR`). Exit status 1 if a rate's peak traced memory exceeds
the budget; times are reported, not asserted (machines differ).
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RATES = (8000, 44100, 48000, 1001, 44101, 383999)
PEAK_BUDGET_MB = 150.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 s of audio instead of 60 s")
    args = ap.parse_args()
    import numpy as np

    from doctor.audio.format.convert import convert, resample_factors

    seconds = 10 if args.quick else 60
    convert([b"\0\0" * 48000], "s16le", 1, 44100).__next__()  # import scipy outside the timing
    worst = 0.0
    print(f"{'rate Hz':>8} {'up/down':>10} {'s per ' + str(seconds) + ' s':>12} {'peak MB':>8}")
    for rate in RATES:
        rng = np.random.default_rng(rate)
        pcm = (rng.standard_normal(rate * seconds) * 3000).astype("<i2").tobytes()
        chunks = [pcm[i : i + 65536] for i in range(0, len(pcm), 65536)]
        tracemalloc.start()
        t0 = time.perf_counter()
        n = sum(len(c) for c in convert(chunks, "s16le", 1, rate))
        dt = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        up, down = resample_factors(rate)
        assert abs(n / 2 - 24000 * seconds) <= 24000 * seconds * 5e-4 + 1, (rate, n)
        worst = max(worst, peak)
        print(f"{rate:8d} {f'{up}/{down}':>10} {dt:12.2f} {peak:8.1f}")
    print(f"peak traced memory {worst:.1f} MB (budget {PEAK_BUDGET_MB:.0f} MB)")
    return 0 if worst <= PEAK_BUDGET_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
