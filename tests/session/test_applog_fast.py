"""The app-log reader's fast paths give what the general paths give (benchmarks/
bench_session.py measures why they exist): the RFC 3339 `at` of §7.1 read without a regex,
a UTF-8 line decoded without `json.loads`'s encoding sniff."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from doctor.session_readers.applog import _utc_fast, parse_time
from doctor.session_readers.jsonstream import json_lines


def general(value: str) -> float:
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip()).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),
    st.integers(0, 10**9 - 1),
    st.integers(0, 9),
)
def test_fast_utc_time_equals_the_general_parse(dt, nanos, digits):
    head = dt.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{nanos:09d}"[:digits]
    value = head + (f".{frac}" if frac else "") + "Z"
    assert _utc_fast(value) == general(value)
    assert parse_time(value) == general(value)


def test_other_spellings_take_the_general_path():
    for value in (
        "2027-01-15 08:00:00.5Z",
        "2027-01-15T08:00:00.5+00:00",
        "2027-01-15T08:00:00,5Z",
        "2027-01-15T08:00+01Z",
    ):
        assert _utc_fast(value) is None
    assert parse_time("2027-01-15T08:00:00.5+01:00") == general("2027-01-15T07:00:00.5Z")


def test_seconds_roll_over_in_the_cache():
    t0 = datetime(2027, 1, 15, 8, 0, 59, tzinfo=timezone.utc)
    for k in range(3):
        v = (t0 + timedelta(seconds=k)).strftime("%Y-%m-%dT%H:%M:%S") + ".25Z"
        assert parse_time(v) == t0.timestamp() + k + 0.25


def test_json_lines_reads_utf8_bom_and_non_object_lines_as_json_loads_does():
    lines = [
        "\ufeff" + json.dumps({"type": "session.ready"}),
        json.dumps({"text": "caf\u00e9 \u2603"}, ensure_ascii=False),
        "[1, 2]",
        '{"broken": ',
    ]
    raw = "\n".join(lines).encode("utf-8")
    notes: list[str] = []
    got = [v for _, v in json_lines(io.BytesIO(raw), notes.append)]
    assert got == [{"type": "session.ready"}, {"text": "caf\u00e9 \u2603"}, [1, 2]]
    assert notes == ["line 4: not JSON (truncated?); skipped"]


@given(st.binary(max_size=3000))
def test_audio_decoder_gives_the_standard_librarys_bytes(raw):
    import base64

    from doctor.session.b64 import b64decode_strict

    text = base64.b64encode(raw).decode()
    assert b64decode_strict(text) == raw


def test_audio_decoder_rejects_what_the_standard_library_rejects():
    import base64

    import pytest

    from doctor.session import b64

    assert b64._decode is not base64.b64decode  # pybase64 is a dependency: the fast path runs
    for bad in ("abc", "ab=c", "a b c d", "YQ===", "!!!!", "\u00e9\u00e9\u00e9\u00e9", "YQ"):
        with pytest.raises(ValueError):
            base64.b64decode(bad, validate=True)
        with pytest.raises(ValueError):
            b64.b64decode_strict(bad)


def test_audio_decoder_reads_what_the_standard_library_reads():
    """pybase64 refuses an extra `=` after a complete quad, which the standard decoder reads
    (the review found 332 in 200k random strings): a log that passed must still pass."""
    import base64
    import random

    from doctor.session import b64

    assert b64._decode is not base64.b64decode  # pybase64 is a dependency: the fast path runs
    rng = random.Random(5)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    cases = ["QUJD=", "UbkQKvnJ=", "QUJD==", "QUJDRA=="]
    cases += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 13))) for _ in range(20000)
    ]
    for text in cases:
        try:
            want: bytes | None = base64.b64decode(text, validate=True)
        except ValueError:
            want = None
        try:
            got: bytes | None = b64.b64decode_strict(text)
        except ValueError:
            got = None
        assert got == want, text


def test_a_utf16_line_without_a_bom_is_read_as_json_loads_reads_it():
    import io

    line = '{"type": "session.ready", "session_id": "s"}'.encode("utf-16-le")
    notes: list[str] = []
    got = [v for _, v in json_lines(io.BytesIO(line), notes.append)]
    assert got == [json.loads(line)] and notes == []
