"""`Retry-After` as seconds to wait (RFC 9110 §10.2.3), pure: the clock comes in as `now`.

A 429 from the token endpoint is only useful advice with the wait it asks for. The header
is either delta-seconds (`30`) or an HTTP-date; a date is read against the response's own
`Date` header when there is one, so a skewed local clock does not change the answer.
"""

from __future__ import annotations

import email.utils
import re
from datetime import datetime, timezone

_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def http_date(value: str | None) -> datetime | None:
    """An HTTP-date (IMF-fixdate, or the obsolete RFC 850 / asctime forms) as aware UTC."""
    if not value or not value.strip():
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # asctime has no zone; HTTP dates are always GMT
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """Seconds to wait, or None when the header is absent or unreadable.

    Delta-seconds are taken as given (leniently: a decimal is accepted); a date in the
    past means "now" (0.0). `now` must be timezone-aware.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _SECONDS.fullmatch(text):
        return float(text)
    if text[0] in "0123456789+-":
        return None  # "30 s", "-5", "1e3": neither form
    when = http_date(text)
    if when is None:
        return None
    return max(0.0, (when - now).total_seconds())
