"""Session forensics: the pure core of `agent-doctor analyze`, `session` and `watch`.

No I/O here: readers (doctor.session_readers) turn files into `Event`s; this package turns
events (and a recording's echo measurement) into check results. Public API:

- `Event`, `make_event`, `meta` (doctor.session.events): the normalised event.
- `SessionAnalyzer(source).feed(event_or_capture_record) -> list[str]` (live notes),
  `.add_echo(evidence)`, `.note(line)`, `.finish() -> list[SessionFindings]`.
- `analyze_events(events, source) -> list[SessionFindings]`: the same for a whole stream.

Each `SessionFindings` holds `results` (ids `session-*`, README "Session analysis"), the
session id, and the collected facts the plot draws.
"""

from __future__ import annotations

from collections.abc import Iterable

from doctor.capture.format import ConnEvent, Frame
from doctor.session.analyzer import SessionAnalyzer, SessionFindings, Source
from doctor.session.events import Event, make_event, meta


def analyze_events(
    events: Iterable[Event | Frame | ConnEvent], source: Source | None = None
) -> list[SessionFindings]:
    """Analyse a whole stream of events (or capture records) in time order."""
    analyzer = SessionAnalyzer(source)
    for ev in events:
        analyzer.feed(ev)
    return analyzer.finish()


__all__ = [
    "Event",
    "SessionAnalyzer",
    "SessionFindings",
    "Source",
    "analyze_events",
    "make_event",
    "meta",
]
