"""The human report: renders a finished report dict, computes nothing of its own."""

from __future__ import annotations

import shutil
from typing import Any

from tabulate import tabulate

_COLORS = {"pass": "32", "warn": "33", "fail": "31", "skip": "90", "error": "35"}
_SYMBOLS = {"pass": "✔", "warn": "!", "fail": "✘", "skip": "-", "error": "‼"}


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _status(status: str, color: bool) -> str:
    if not color:
        return status.upper()
    return _paint(f"{_SYMBOLS[status]} {status}", _COLORS[status], True)


def _duration(ms: int) -> str:
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def _fix_block(check: dict[str, Any], color: bool, verbose: bool) -> list[str]:
    head = f"{check['id']}: {check['summary']}"
    lines = [_paint(head, _COLORS[check["status"]], color)]
    fix = check.get("fix")
    if fix:
        lines.append(f"  Fix: {fix['title']}")
        lines += [f"  - {step}" for step in fix["steps"]]
        if fix["commands"]:
            lines.append("  Try:")
            lines += [f"    $ {c}" for c in fix["commands"]]
        lines.append(f"  More: {fix['url']}")
    elif check["status"] == "error":
        ev = check["evidence"]
        if "exception_type" in ev:
            lines.append(f"  {ev['exception_type']}: {ev.get('exception_message', '')}")
            lines.append("  This is a bug in agent-doctor: please report it with the JSON report.")
    if verbose and check["evidence"]:
        lines.append("  Evidence:")
        lines += [f"    {k}: {v}" for k, v in check["evidence"].items()]
    return lines


def _support_block(report: dict[str, Any]) -> list[str]:
    support = report.get("support")
    path = report.get("report_path")
    if not support and not path:
        return []
    lines = ["For your support ticket:"]
    if support:
        lines.append(f"  region: {support['region']} ({report['target']['ws_url']})")
        if support["session_ids"]:
            lines.append(f"  session ids: {', '.join(support['session_ids'])}")
        for close in support["closes"]:
            reason = f" {close['reason']}" if close.get("reason") else ""
            lines.append(f"  close {close['code']}{reason} at {close['at']}")
        if "sessions_opened" in support:
            n, conns = support["sessions_opened"], support.get("connections", 0)
            over = f" over {conns} connections" if conns > n else ""
            total = support["sessions_total_s"]
            secs = f"{total:.{2 if total < 10 else 1}f} s in total"
            if report.get("command") == "watch":  # the app's own sessions, not ours
                lines.append(f"  sessions of your app watched: {n}{over} ({secs})")
            else:
                lines.append(
                    f"  sessions opened by agent-doctor: {n}{over} ({secs}, what these checks cost)"
                )
    if path:
        lines.append(f"  report: {path} (attach it; it contains no key or token)")
    return lines


def render(report: dict[str, Any], *, color: bool = False, verbose: bool = False) -> str:
    width = max(40, shutil.get_terminal_size((100, 24)).columns - 36)
    rows = [
        [c["id"], _status(c["status"], color), c["summary"], _duration(c["duration_ms"])]
        for c in report["checks"]
    ]
    out = [
        tabulate(
            rows,
            headers=["check", "status", "summary", "time"],
            maxcolwidths=[None, None, width, None],
            disable_numparse=True,
        )
    ]
    for check in report["checks"]:
        if check["status"] in ("warn", "fail", "error") or (verbose and check["evidence"]):
            out.append("")
            out += _fix_block(check, color, verbose)
    support = _support_block(report)
    if support:
        out += ["", *support]
    verdict = report["summary"]["verdict"]
    bad = report["summary"]["fail"] + report["summary"]["error"]
    code = "31" if bad else "33" if report["summary"]["warn"] else "32"
    out += ["", _paint(verdict, code, color)]
    return "\n".join(out) + "\n"
