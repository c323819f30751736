"""The report's `support` block and region for `analyze`, from what the logs show.

A log names its endpoint (`open` lines, a capture's region), its session ids, closes and
start times: the facts the vendor's guide asks users to send support. `analyze` contacts
no service, so its report's region is the one the log connected to, not the option's
default.
"""

from __future__ import annotations

import urllib.parse
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from doctor.context import REGIONS, Context, SessionRecord

if TYPE_CHECKING:
    from doctor.session.analyzer import SessionFindings


def region_of(where: str | None) -> str | None:
    """ "us" or "eu" for a region name or a Voice Agent URL; None for anything else."""
    if not where:
        return None
    if where in REGIONS:
        return where
    host = urllib.parse.urlsplit(where if "://" in where else f"//{where}").hostname or ""
    if not host.endswith("assemblyai.com"):
        return None
    return "eu" if ".eu." in f".{host}" else "us"


def session_region(f: SessionFindings) -> str | None:
    return region_of(f.segment.endpoint) or region_of(f.source.region)


def log_region(found: list[SessionFindings]) -> str | None:
    """The one region every session that names one connected to; None if none or several."""
    regions = {r for r in map(session_region, found) if r is not None}
    return regions.pop() if len(regions) == 1 else None


def _started(t: float | None) -> datetime | None:
    if t is None or t < 1e8:  # no time, or a clock relative to the app's start
        return None
    try:
        return datetime.fromtimestamp(t, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def support_records(found: list[SessionFindings], default_region: str) -> list[SessionRecord]:
    """One record per session that has a start time (support's fields need one)."""
    out = []
    for f in found:
        seg = f.segment
        started = _started(seg.first_t)
        if started is None:
            continue
        close = seg.closes[-1] if seg.closes else None
        duration = None if seg.last_t is None else max(0.0, seg.last_t - (seg.first_t or 0.0))
        out.append(
            SessionRecord(
                check="analyze",
                region=session_region(f) or default_region,
                session_id=f.session_id,
                started_at=started,
                duration_s=duration,
                close_code=close.code if close is not None else None,
                close_reason=close.reason if close is not None else None,
                ended_cleanly=True if seg.sent_end else (False if seg.ended else None),
                auth="unknown",  # a log does not say how the app authenticated
            )
        )
    return out


def apply_log_facts(ctx: Context, found: list[SessionFindings], region_chosen: bool) -> list[str]:
    """Fill `ctx` from the logs: the region (unless the user chose one or URLs) and a
    support record per timed session. Returns the ids of sessions without a start time,
    which support's `session_ids` should still list."""
    region = log_region(found)
    if region is not None and not region_chosen and not ctx.urls_overridden:
        ctx.region = region
        ctx.ws_url, ctx.token_url = REGIONS[region]
    for record in support_records(found, ctx.region):
        ctx.record_session(record)
    timed = {r.session_id for r in ctx.support}
    return [f.session_id for f in found if f.session_id and f.session_id not in timed]


def add_untimed_ids(report: dict[str, Any], ids: list[str]) -> None:
    support = report.get("support")
    if isinstance(support, dict) and ids:
        support["session_ids"] = list(dict.fromkeys([*support["session_ids"], *ids]))
