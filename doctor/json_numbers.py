"""Numbers from untrusted JSON, one rule for every reader (session logs, captures).

JSON allows integers of any size (`1` and 400 zeros, which `float()` refuses with
OverflowError) and Python's decoder accepts `1e999`, `Infinity` and `NaN`. A time or
duration must be a finite float, or it is no value: dropped, never a crash and never an
`Infinity` in the report (which would not be JSON).
"""

from __future__ import annotations

import math

MAX_LISTED = 10
"""Bad fields listed per file; the rest are counted."""


def finite(value: object) -> float | None:
    """The JSON number as a finite float; None for anything else (bools, text, too big,
    infinite, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        f = float(value)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def is_bad_number(value: object) -> bool:
    """A JSON number that is not a finite float: what `finite` drops and a note names."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and finite(value) is None


def bad_numbers(doc: object, limit: int = MAX_LISTED + 1) -> list[str]:
    """Where a document holds numbers that are not finite (`a.b[2].c`), at most `limit`."""
    out: list[str] = []
    stack: list[tuple[str, object]] = [("", doc)]
    while stack and len(out) < limit:
        where, value = stack.pop()
        if isinstance(value, dict):
            items = [(f"{where}.{k}" if where else str(k), v) for k, v in value.items()]
            stack.extend(reversed(items))
        elif isinstance(value, list):
            stack.extend(reversed([(f"{where}[{i}]", v) for i, v in enumerate(value)]))
        elif is_bad_number(value):
            out.append(where)
    return out


def bad_numbers_note(doc: object) -> str | None:
    """One line naming the fields `bad_numbers` found, or None when there are none."""
    found = bad_numbers(doc)
    if not found:
        return None
    more = " and more" if len(found) > MAX_LISTED else ""
    names = ", ".join(w[:60] for w in found[:MAX_LISTED])
    return f"not a finite number, dropped: {names}{more}"
