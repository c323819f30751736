"""A Validation as a check Result: the worst finding decides status, cause and fix (pure)."""

from __future__ import annotations

from typing import Any

from doctor import guide
from doctor.audio.format.findings import ERROR, WARNING, Validation
from doctor.result import Result, Status, passed, problem


def validation_evidence(v: Validation) -> dict[str, Any]:
    levels = v.stats.get("levels") or {}
    rate = v.stats.get("rate") or {}
    return {
        "verdict": v.verdict,
        "detected": v.detected.to_dict(),
        "findings": [f"{f.severity}:{f.code}" for f in v.sorted_findings()],
        "duration_s": v.stats.get("duration_s"),
        "audio_bytes": v.stats.get("audio_bytes"),
        "active_level_dbfs": levels.get("active_level_dbfs"),
        "peak_dbfs": levels.get("peak_dbfs"),
        "estimated_rate_hz": rate.get("estimated_rate_hz"),
        "rate_confidence": rate.get("confidence"),
    }


def validation_result(v: Validation) -> Result:
    evidence = validation_evidence(v)
    worst = next((f for f in v.sorted_findings() if f.severity in (ERROR, WARNING)), None)
    if worst is None:
        d = v.detected
        return passed(
            f"PCM16 little-endian mono at {d.sample_rate_hz or 24000} Hz, "
            f"{v.stats.get('duration_s') or 0:.2f} s: what the API expects",
            evidence,
        )
    others = sum(f.severity in (ERROR, WARNING) for f in v.findings) - 1
    tail = f" (+{others} more)" if others > 0 else ""
    status = Status.FAIL if worst.severity == ERROR else Status.WARN
    return problem(
        status,
        worst.code,
        worst.message + tail,
        evidence,
        guide.fix(worst.guide, detail=worst.detail or None),
    )
