"""Run every benchmark script (`bench_*.py`) in this folder, by hand or with --quick in CI.

Each script takes `--quick` and prints its own table; a non-zero exit fails the run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    scripts = sorted(here.glob("bench_*.py"))
    if not scripts:
        print("no benchmarks found", file=sys.stderr)
        return 1
    failed = []
    for script in scripts:
        print(f"=== {script.name} {' '.join(argv)}", flush=True)
        if subprocess.run([sys.executable, str(script), *argv], cwd=here.parent).returncode:
            failed.append(script.name)
    if failed:
        print(f"benchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
