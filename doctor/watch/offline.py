"""The relay's analysis replayed on a capture file (tests, benchmarks, second looks)."""

from __future__ import annotations

import json

from doctor.capture.format import decode, is_header
from doctor.watch.observe import Note, RelayObserver


def observe_capture(path: str, echo: bool = True) -> tuple[RelayObserver, list[Note]]:
    """Feed every record of a capture (audio kept) to a fresh observer; finish() it."""
    obs = RelayObserver(echo=echo)
    notes: list[Note] = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            obj = json.loads(line)
            if i == 0 and is_header(obj):
                continue
            notes += obs.feed(decode(obj))
    obs.finish()
    return obs, notes
