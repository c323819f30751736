"""The page's echo recordings, judged by the existing echo core (one echo method).

The page plays `make_probe(rate)` through its own AudioWorklet player and records the
microphone from the probe's first frame on, in the same AudioContext, so both share a
timeline exactly as `analyse_probe` expects. Two runs: the 24 kHz context the vendor
recommends, and the browser's default rate; cancelled at one and not at the other is the
Firefox finding (browser.md §2.9).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from doctor import guide
from doctor.result import Result, Status, passed, problem, skipped

MAX_RECORDING_S = 15.0
# echoCancellation is on in both runs: what comes back this far below the playback is the
# canceller's residual, not an echo a user or the service's turn detection would hear
# (browser.md: "leak after convergence above, say, -30 dB"). Firefox ESR at the device rate
# left -30 and -66 dB residuals in CI, where the 24 kHz context let the echo through at 0 dB.
AEC_RESIDUAL_DB = -30.0


@dataclass(frozen=True)
class EchoRun:
    label: str  # api_rate or default_rate
    rate_hz: int | None
    verdict: str | None  # the core's Verdict value, None when nothing was recorded
    summary: str
    evidence: dict[str, Any]
    delay_ms: float | None = None


def probe_bytes(rate_hz: int) -> bytes:
    """The probe the page plays, as float32 little-endian samples at the context's rate."""

    from doctor.audio.echo.probe import make_probe

    return make_probe(rate_hz).samples.astype("<f4").tobytes()


def analyse_run(run: dict[str, Any]) -> EchoRun:
    label = str(run.get("label") or "unknown")
    rate = run.get("recorded_rate_hz") or run.get("context_rate_hz")
    rate = int(rate) if isinstance(rate, (int, float)) and 3000 <= rate <= 768000 else None
    base: dict[str, Any] = {
        "label": label,
        "context_rate_hz": rate,
        "requested_rate_hz": run.get("requested_rate_hz"),
        "warmup_s": run.get("warmup_s"),
    }
    err = run.get("error")
    if isinstance(err, dict) or rate is None:
        what = err.get("message") if isinstance(err, dict) else "no sample rate"
        return EchoRun(label, rate, None, f"not recorded: {what}", {**base, "error": err})
    try:
        raw = base64.b64decode(str(run.get("recorded_pcm16_b64") or ""), validate=True)
    except (binascii.Error, ValueError):
        return EchoRun(label, rate, None, "the recording is not valid base64", base)
    if len(raw) < 2 or len(raw) / 2 / rate > MAX_RECORDING_S:
        return EchoRun(label, rate, None, f"unusable recording ({len(raw)} bytes)", base)
    import numpy as np

    from doctor.audio.echo.probe import analyse_probe, make_probe

    recorded = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.float64) / 32768
    pa = analyse_probe(make_probe(rate), recorded, rate)
    ev = {**base, **pa.evidence()}
    verdict, summary = pa.analysis.verdict.value, pa.analysis.describe()
    erl = ev.get("erl_db")
    # A weak match is judged by the same bar: what matched at all is this far down, so the
    # canceller worked (Firefox ESR at 48 kHz here: S 1.77 at -36.9 dB, "measure again").
    weak_or_echo = verdict in ("echo", "inconclusive")
    if weak_or_echo and isinstance(erl, (int, float)) and erl <= AEC_RESIDUAL_DB:
        what = "a residual" if verdict == "echo" else "at most a residual"
        summary = (
            f"cancelled: {what} {erl:.1f} dB below the playback (an echo is a leak above "
            f"{AEC_RESIDUAL_DB:.0f} dB; S = {pa.analysis.score_s:.1f})"
        )
        ev.update(verdict="no_echo", core_verdict=verdict, aec_residual_db=AEC_RESIDUAL_DB)
        return EchoRun(label, rate, "no_echo", summary, ev)
    return EchoRun(label, rate, verdict, summary, ev, pa.analysis.delay_ms)


def echo_verdict(runs: list[EchoRun]) -> tuple[Result, float | None]:
    """One browser-echo result from both runs, and the round trip when an echo gave one."""
    ev: dict[str, Any] = {
        "runs": [r.evidence for r in runs],
        "method": "the echo core's two-sweep probe, after a noise warm-up, "
        "played through the page's AudioWorklet; "
        "getUserMedia echoCancellation: true",
    }
    done = [r for r in runs if r.verdict is not None]
    round_trip = next((r.delay_ms for r in done if r.verdict == "echo"), None)
    if not done:
        why = "; ".join(f"{r.label}: {r.summary}" for r in runs) or "nothing recorded"
        return problem(
            Status.FAIL,
            "playback_failed",
            f"the echo test did not run: {why}",
            ev,
            guide.fix("browser_output", detail=why),
        ), None
    by = {r.label: r for r in done}
    api, default = by.get("api_rate"), by.get("default_rate")

    def line(r: EchoRun) -> str:
        return f"{r.rate_hz} Hz context: {r.summary}"

    if api and default and api.verdict == "echo" and default.verdict == "no_echo":
        detail = (
            f"the echo canceller removed the page's playback at {default.rate_hz} Hz but "
            f"not in the 24 kHz context ({api.summary})"
        )
        return problem(
            Status.FAIL,
            "aec_ineffective_at_context_rate",
            detail,
            ev,
            guide.fix("browser_mixed_rates", detail=detail),
        ), round_trip
    echoes = [r for r in done if r.verdict == "echo"]
    if echoes:
        detail = "; ".join(line(r) for r in echoes)
        return problem(
            Status.FAIL,
            "echo_detected",
            f"the page's own playback comes back in the microphone although "
            f"echoCancellation is on: {detail}",
            ev,
            guide.fix("echo_loop", detail=detail),
        ), round_trip
    if all(r.verdict == "mic_silent" for r in done):
        return skipped(
            "no_capture",
            "the microphone delivered digital silence during the "
            "echo test (see browser-microphone)",
            ev,
        ), None
    unsure = [r for r in done if r.verdict in ("inconclusive", "insufficient_reference")]
    if unsure:
        detail = "; ".join(line(r) for r in unsure)
        return problem(
            Status.WARN,
            "echo_inconclusive",
            detail,
            ev,
            guide.fix("echo_measurement", detail=detail),
        ), None
    return passed("no echo of the page's playback: " + "; ".join(line(r) for r in done), ev), None
