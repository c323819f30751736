"""Access to the seeded corpus generator in benchmarks/ (the tests and the benchmark share it)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import echo_corpus as corpus  # noqa: E402

__all__ = ["corpus"]
