"""Throughput and peak memory of validate-audio on a large raw PCM16 file, next to sox stat.

    .venv/bin/python benchmarks/bench_validate_audio.py          # 1 GiB
    .venv/bin/python benchmarks/bench_validate_audio.py --quick  # 64 MiB (CI)

The file is generated in a temporary folder (speech-like PCM16 24 kHz, not committed) and
read once beforehand so both tools read it from the page cache. Each tool runs in its own
process; our peak memory is the process's VmHWM. Exit status 1 if memory exceeds the budget
(150 MB); throughput is reported, not asserted (machines differ).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RSS_BUDGET_MB = 150.0

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from doctor.files.sources import validate_path
v = validate_path(sys.argv[1], None)
dt = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))
print(json.dumps({"seconds": dt, "vmhwm_kb": hwm, "verdict": v.verdict,
                  "codes": v.codes(), "bytes": v.stats.get("audio_bytes")}))
"""


def make_file(path: Path, size: int) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "audio_format"))
    from audio_format_signals import speech_like, to_i16

    block = to_i16(speech_like(20.0, seed=1)).tobytes()
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            fh.write(block[:left])
            left -= len(block)


def warm(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(16 << 20):
            pass


def run_ours(path: Path) -> dict[str, float]:
    r = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return dict(json.loads(r.stdout))


def run_sox(path: Path) -> float | None:
    if shutil.which("sox") is None:
        return None
    t0 = time.perf_counter()
    subprocess.run(
        [
            "sox",
            "-t",
            "raw",
            "-r",
            "24000",
            "-e",
            "signed",
            "-b",
            "16",
            "-c",
            "1",
            str(path),
            "-n",
            "stat",
        ],
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="64 MiB instead of 1 GiB")
    ap.add_argument("--size-mib", type=int, help="file size in MiB")
    ap.add_argument("--no-sox", action="store_true")
    args = ap.parse_args()
    size = (args.size_mib or (64 if args.quick else 1024)) << 20
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as d:
        path = Path(d) / "big.raw"
        make_file(path, size)
        warm(path)
        ours = run_ours(path)
        sox = None if args.no_sox else run_sox(path)
    gib = size / (1 << 30)
    rate = gib / ours["seconds"]
    rss_mb = ours["vmhwm_kb"] / 1024
    print(f"file: {size >> 20} MiB raw PCM16 24 kHz (speech-like), page cache")
    print(
        f"validate-audio core: {ours['seconds']:.2f} s, {rate:.2f} GiB/s, "
        f"peak RSS {rss_mb:.0f} MB, verdict {ours['verdict']} {ours['codes']}"
    )
    if sox is not None:
        ratio = sox / ours["seconds"]
        versus = (
            f"{ratio:.1f}x slower than us" if ratio >= 1 else f"{1 / ratio:.1f}x faster than us"
        )
        print(f"sox stat:            {sox:.2f} s, {gib / sox:.2f} GiB/s (sox is {versus})")
    if rss_mb > RSS_BUDGET_MB:
        print(f"FAIL: peak RSS {rss_mb:.0f} MB exceeds {RSS_BUDGET_MB:.0f} MB")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
