"""An echo analysis as the `echo` check's result: status, cause, summary and the guide's fix.

Pure and light (no numpy at import), shared by the live check and `agent-doctor echo`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from doctor import guide
from doctor.result import Result, Status, passed, problem

if TYPE_CHECKING:
    from doctor.audio.echo.analysis import EchoAnalysis

CHECK_ID = "echo"
CHECK_TITLE = "Speaker-to-microphone echo"
CLIPPING_WARN_FRACTION = 0.01


def _notes(analysis: EchoAnalysis, extra: dict[str, Any]) -> list[str]:
    notes = []
    if analysis.capture_clipped_fraction >= CLIPPING_WARN_FRACTION:
        notes.append(
            f"{analysis.capture_clipped_fraction:.1%} of the capture is clipped (ERL reads low)"
        )
    if extra.get("sweeps_disagree"):
        notes.append("the two test sweeps give different ERLs: AGC, a limiter or a non-linear path")
    if extra.get("near_end_activity"):
        notes.append("sound near the microphone during the test (ERL less certain)")
    return notes


def echo_result(analysis: EchoAnalysis, evidence: dict[str, Any]) -> Result:
    """`evidence` is the full evidence (analysis + devices or files) the result carries."""
    from doctor.audio.echo.analysis import Verdict

    notes = _notes(analysis, evidence)
    tail = f" ({'; '.join(notes)})" if notes else ""
    summary = analysis.describe() + tail
    v = analysis.verdict
    if v is Verdict.ECHO and evidence.get("loopback_input"):
        # a loop with no air in it: the fix is another input, not headphones
        summary = (
            f"{summary}; the input {evidence.get('input_device', '')!r} is a loopback of the "
            f"output, not a microphone ({evidence.get('loopback_reason', '')}): pick the real "
            "microphone"
        )
        return problem(
            Status.FAIL,
            "echo_detected",
            summary,
            evidence,
            guide.fix(
                "loopback_input",
                device=evidence.get("input_device"),
                detail=evidence.get("loopback_reason"),
            ),
        )
    if v is Verdict.ECHO:
        detail = summary
        return problem(
            Status.FAIL, "echo_detected", summary, evidence, guide.fix("echo_loop", detail=detail)
        )
    if v is Verdict.MIC_SILENT:
        return problem(
            Status.FAIL,
            "no_capture",
            summary,
            evidence,
            guide.fix(
                "mic_permission",
                device=evidence.get("input_device"),
                detail="the recording is all zeros; run `agent-doctor check microphone`",
            ),
        )
    if v is Verdict.INCONCLUSIVE:
        return problem(
            Status.WARN,
            "echo_inconclusive",
            summary,
            evidence,
            guide.fix("echo_measurement", detail=summary),
        )
    if v is Verdict.INSUFFICIENT_REFERENCE:
        return problem(
            Status.WARN,
            "insufficient_reference",
            summary,
            evidence,
            guide.fix("echo_measurement", detail=summary),
        )
    return passed(summary, evidence)


def playback_failed(message: str, evidence: dict[str, Any]) -> Result:
    return problem(
        Status.FAIL,
        "playback_failed",
        f"the test sound could not be played: {message}",
        evidence,
        guide.fix("audio_device", detail=message),
    )


def with_meta(result: Result, duration_ms: int) -> Result:
    return result.with_meta(CHECK_ID, CHECK_TITLE, duration_ms)


__all__ = ["CHECK_ID", "CHECK_TITLE", "Status", "echo_result", "playback_failed", "with_meta"]
