"""The resume tests reuse the token tests' CLI helpers (`tokenrun`)."""

from __future__ import annotations

import sys
from pathlib import Path

_TOKEN_TESTS = str(Path(__file__).resolve().parent.parent / "token")
if _TOKEN_TESTS not in sys.path:
    sys.path.insert(0, _TOKEN_TESTS)
