"""Turns results and the run context into the report dict of the contract (schema v1)."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timedelta, timezone
from importlib import metadata
from typing import Any

from doctor import __version__
from doctor.context import Context, SessionRecord
from doctor.result import Result, Status

SCHEMA_VERSION = 1
RUNTIME_PACKAGES = ("click", "websockets", "httpx", "sounddevice", "numpy", "scipy", "tabulate")
_SEVERITY = {Status.ERROR: 0, Status.FAIL: 1, Status.WARN: 2, Status.SKIP: 3, Status.PASS: 4}


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def package_versions() -> dict[str, str | None]:
    """From metadata only: importing scipy or sounddevice just to read a version is too slow."""
    out: dict[str, str | None] = {}
    for name in RUNTIME_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def environment_block(results: list[Result]) -> dict[str, Any]:
    env: dict[str, Any] = {
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": platform.python_version(),
        "packages": package_versions(),
        "portaudio": None,
    }
    for r in results:
        if r.id == "environment":
            env["portaudio"] = r.evidence.get("portaudio_version")
    return env


def support_block(ctx: Context) -> dict[str, Any] | None:
    if not ctx.support:
        return None
    sessions = sorted(ctx.support, key=lambda s: s.started_at)
    lifetimes, refused_s = session_lifetimes(sessions)
    return {
        "region": ctx.region,
        "session_ids": list(dict.fromkeys(s.session_id for s in sessions if s.session_id)),
        "closes": [
            {
                "code": s.close_code,
                "reason": s.close_reason,
                "at": iso(s.started_at),
                "session_id": s.session_id,
                "check": s.check,
            }
            for s in sessions
            if s.close_code is not None
        ],
        "first_session_at": iso(sessions[0].started_at),
        "sessions": [
            {
                "check": s.check,
                "session_id": s.session_id,
                "region": s.region,
                "auth": s.auth,
                "started_at": iso(s.started_at),
                "duration_s": None if s.duration_s is None else round(s.duration_s, 3),
                "close_code": s.close_code,
                "close_reason": s.close_reason,
                "ended_cleanly": s.ended_cleanly,
            }
            for s in sessions
        ],
        "sessions_opened": len(lifetimes),
        "connections": len(sessions),
        "sessions_total_s": round(sum(lifetimes) + refused_s, 3),
    }


def session_lifetimes(records: list[SessionRecord]) -> tuple[list[float], float]:
    """Seconds each session lived (first connection's start to last connection's end), and
    the seconds spent on connections that never got a session (refused ones).

    A resumed session spans two connections and the gap between them, which the service
    may bill.
    """
    spans: dict[str, tuple[datetime, datetime]] = {}
    refused_s = 0.0
    for r in records:
        end = r.started_at + timedelta(seconds=r.duration_s or 0.0)
        if r.session_id is None:
            refused_s += r.duration_s or 0.0
            continue
        first, last = spans.get(r.session_id, (r.started_at, end))
        spans[r.session_id] = (min(first, r.started_at), max(last, end))
    return [(last - first).total_seconds() for first, last in spans.values()], refused_s


def verdict(results: list[Result]) -> str:
    """One line a user can act on: the worst problem first, and how many there are."""
    problems = sorted(
        (r for r in results if r.status in (Status.ERROR, Status.FAIL, Status.WARN)),
        key=lambda r: _SEVERITY[r.status],
    )
    if not results:
        return "No checks ran."
    if not problems:
        skipped = sum(r.status is Status.SKIP for r in results)
        tail = f" ({skipped} skipped)" if skipped else ""
        ran = len(results) - skipped
        return f"All {ran} check{'s' if ran != 1 else ''} passed{tail}."
    worst = problems[0]
    hard = [r for r in problems if r.status.is_problem]
    if hard:
        head = f"{len(hard)} check{'s' if len(hard) > 1 else ''} failed"
    else:
        head = f"No failures, {len(problems)} warning{'s' if len(problems) > 1 else ''}"
    return f"{head}; start with {worst.id} ({worst.cause}): {worst.summary}"


def build_report(
    command: str,
    ctx: Context,
    results: list[Result],
    started_at: datetime,
    duration_ms: int,
    report_path: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole report, scrubbed of every registered secret."""
    counts = {s.value: sum(r.status is s for r in results) for s in Status}
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "agent-doctor", "version": __version__},
        "command": command,
        "started_at": iso(started_at),
        "duration_ms": duration_ms,
        "target": {
            "region": ctx.region,
            "ws_url": ctx.ws_url,
            "token_url": ctx.token_url,
            "proxy": ctx.proxy_display,
            "auth": ctx.auth,
        },
        "environment": environment_block(results),
        "summary": {**counts, "verdict": verdict(results)},
        "checks": [r.to_dict() for r in results],
        "support": support_block(ctx),
        "redactions": ctx.redactor.kinds,
    }
    if report_path:
        report["report_path"] = os.path.abspath(report_path)
    if extra:
        report.update(extra)
    scrubbed: dict[str, Any] = ctx.redactor.scrub_obj(report)
    return scrubbed


def exit_code(results: list[Result]) -> int:
    return 1 if any(r.status.is_problem for r in results) else 0
