"""The capture format (doctor.capture.format, README "Capture format") as events."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

from doctor.capture.format import CaptureFormatError, Header, decode, decode_header, is_header
from doctor.session.convert import from_capture
from doctor.session.events import Event
from doctor.session_readers.jsonstream import Note, json_lines


def capture_events(
    fh: IO[bytes], note: Note, progress: Callable[[int], None] | None = None
) -> tuple[Header | None, Iterator[Event]]:
    """The header (None when the first line is not one) and the events after it."""
    lines = json_lines(fh, note, progress)
    first = next(lines, None)
    if first is None or not is_header(first[1]):
        note("not a capture: the first line is not an agent-doctor capture header")
        return None, iter(())
    try:
        header = decode_header(first[1])
    except CaptureFormatError as exc:
        note(str(exc))
        return None, iter(())

    def events() -> Iterator[Event]:
        bad = 0
        for line_no, obj in lines:
            try:
                rec = decode(obj)
            except CaptureFormatError as exc:
                bad += 1
                if bad <= 20:
                    note(f"line {line_no}: {exc}; skipped")
                continue
            yield from_capture(rec, line_no)

    return header, events()
