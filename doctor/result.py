"""What a check returns: pure data, no I/O, shared by the runner and every renderer."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from typing import Any


class Status(str, enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"

    @property
    def is_problem(self) -> bool:
        """fail and error decide the exit code; warn and skip do not."""
        return self in (Status.FAIL, Status.ERROR)

    @property
    def is_ok(self) -> bool:
        """Whether a dependant check may build on this result."""
        return self in (Status.PASS, Status.WARN)


@dataclass(frozen=True)
class Fix:
    """A remediation taken from the guide, with the run's concrete hosts filled in."""

    guide: str
    title: str
    steps: list[str]
    commands: list[str]
    url: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Result:
    """One check's verdict. The runner fills `id`, `title` and `duration_ms`."""

    status: Status
    summary: str
    cause: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: Fix | None = None
    id: str = ""
    title: str = ""
    duration_ms: int = 0

    def with_meta(self, check_id: str, title: str, duration_ms: int) -> Result:
        return replace(self, id=check_id, title=title, duration_ms=duration_ms)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "status": self.status.value,
            "cause": self.cause,
            "summary": self.summary,
            "duration_ms": self.duration_ms,
            "evidence": self.evidence,
        }
        if self.fix is not None:
            out["fix"] = self.fix.to_dict()
        return out


def passed(summary: str, evidence: dict[str, Any] | None = None) -> Result:
    return Result(Status.PASS, summary, None, evidence or {})


def skipped(
    cause: str, summary: str, evidence: dict[str, Any] | None = None, fix: Fix | None = None
) -> Result:
    return Result(Status.SKIP, summary, cause, evidence or {}, fix)


def problem(
    status: Status,
    cause: str,
    summary: str,
    evidence: dict[str, Any] | None = None,
    fix: Fix | None = None,
) -> Result:
    """A warn or fail; the fix comes from `doctor.guide.fix`, never from the check."""
    if status not in (Status.WARN, Status.FAIL):
        raise ValueError(f"problem() makes warn or fail results, not {status.value}")
    return Result(status, summary, cause, evidence or {}, fix)


def errored(cause: str, summary: str, evidence: dict[str, Any] | None = None) -> Result:
    return Result(Status.ERROR, summary, cause, evidence or {})
