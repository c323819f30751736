"""`Retry-After` parsing (pure): both RFC 9110 forms, against a given clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from doctor import guide
from doctor.net.mint_outcome import mint_outcome
from doctor.net.retry_after import http_date, retry_after_s

NOW = datetime(2026, 11, 24, 14, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30", 30.0),
        ("0", 0.0),
        (" 120 ", 120.0),
        ("007", 7.0),
        ("2.5", 2.5),  # not RFC, but seen; a wait is a wait
        ("86400", 86400.0),
    ],
)
def test_delta_seconds(value: str, seconds: float) -> None:
    assert retry_after_s(value, NOW) == seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("Tue, 24 Nov 2026 14:00:30 GMT", 30.0),  # IMF-fixdate
        ("Tuesday, 24-Nov-26 14:01:00 GMT", 60.0),  # obsolete RFC 850
        ("Tue Nov 24 14:00:05 2026", 5.0),  # obsolete asctime (no zone: GMT)
        ("Tue, 24 Nov 2026 15:00:30 +0100", 30.0),  # a zone is honoured
        ("Tue, 24 Nov 2026 14:00:00 GMT", 0.0),
        ("Tue, 24 Nov 2026 13:59:00 GMT", 0.0),  # in the past: retry now, never negative
    ],
)
def test_http_date(value: str, seconds: float) -> None:
    assert retry_after_s(value, NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "-5", "+5", "30 s", "1e3", "3_0", "soon", "Tue, 32 Nov 2026 14:00:30 GMT",
     "Tue, 24 Nov 2026", "nan", "inf"],
)  # fmt: skip
def test_unreadable_values_are_none(value: str | None) -> None:
    assert retry_after_s(value, NOW) is None


def test_a_date_is_read_against_the_clock_given() -> None:
    value = "Tue, 24 Nov 2026 14:00:30 GMT"
    later = NOW + timedelta(seconds=20)
    assert retry_after_s(value, later) == 10.0


def test_http_date_is_aware_utc_or_none() -> None:
    assert http_date("Tue, 24 Nov 2026 14:00:00 GMT") == NOW
    assert http_date("Tue, 24 Nov 2026 15:00:00 +0100") == NOW
    assert http_date("Tue Nov 24 14:00:00 2026") == NOW
    assert http_date(None) is None and http_date("") is None and http_date("yesterday") is None


# --- the 429 outcome carries the wait -----------------------------------------------------


def test_a_429_with_retry_after_says_how_long_to_wait() -> None:
    out = mint_outcome(429, False, None, 60, "Too many requests", None, retry_after_s=30.0)
    assert out is not None and (out.cause, out.guide) == ("rate_limited", "rate_limit")
    assert "HTTP 429, retry after 30 s: Too many requests" in out.summary
    assert "30 s (Retry-After)" in out.detail


def test_a_fractional_wait_is_shown_to_a_tenth() -> None:
    out = mint_outcome(429, False, None, 60, None, None, retry_after_s=2.54)
    assert out is not None and "retry after 2.5 s" in out.summary


def test_a_429_without_retry_after_says_so_and_backs_off() -> None:
    out = mint_outcome(429, False, None, 60, None, None)
    assert out is not None and "retry after" not in out.summary
    assert "no Retry-After" in out.detail
    steps = " ".join(guide.fix(out.guide, detail=out.detail).steps)
    assert "exponential backoff (1 s" in steps
