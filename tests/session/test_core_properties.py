"""Hypothesis over the core: any sequence of messages, however odd, gives results, never an
exception (a relay feeds whatever the app and the service sent)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from doctor.capture.format import ConnEvent, Frame
from doctor.session import SessionAnalyzer
from doctor.session.events import CLIENT_TYPES, SERVICE_TYPES

TYPES = [*sorted(CLIENT_TYPES | SERVICE_TYPES), "error", "x.unknown", ""]
values = (
    st.none()
    | st.booleans()
    | st.integers(-5, 2**40)
    | st.floats(allow_nan=True)
    | st.text(max_size=12)
)
FIELDS = [
    "reply_id",
    "call_id",
    "text",
    "delta",
    "status",
    "interrupted",
    "code",
    "message",
    "session_id",
    "timestamp",
    "audio",
    "data",
    "end_ms",
    "name",
    "session",
    "config",
]
messages = st.builds(
    lambda kind, extra: {"type": kind, **extra},
    st.sampled_from(TYPES),
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=5),
)
records = st.one_of(
    st.builds(
        Frame,
        st.floats(0, 100),
        st.floats(1e9, 2e9),
        st.integers(1, 3),
        st.sampled_from(["app", "service"]),
        msg=messages,
    ),
    st.builds(
        ConnEvent,
        st.floats(0, 100),
        st.floats(1e9, 2e9),
        st.integers(1, 3),
        st.sampled_from(["open", "close"]),
        st.dictionaries(st.sampled_from(["code", "reason", "by", "path"]), values),
    ),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(records, max_size=60))
def test_any_stream_gives_results(stream: list[Any]) -> None:
    a = SessionAnalyzer()
    for rec in stream:
        notes = a.feed(rec)
        assert all(isinstance(n, str) for n in notes)
    for f in a.finish():
        assert f.results
        for r in f.results:
            assert r.summary and r.id.startswith("session-")
