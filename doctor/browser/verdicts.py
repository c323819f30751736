"""The page's raw facts as `browser-*` results (pure: no I/O, no numpy).

The page only measures; every verdict, cause and fix is decided here, next to the guide,
so the browser checks follow the same contract as the Python ones (report-contract.md).
Facts a browser does not report (absent `getSettings()` keys, no permissions API) are
"unknown", never a failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, TypeGuard

from doctor import guide
from doctor.result import Result, Status, errored, passed, problem, skipped

API_RATE_HZ = 24000
LOW_LEVEL_DBFS = -60.0
SILENT_ZERO_FRACTION = 0.999
# Delivered frames this far off the declared rate: a clock that is not what it says. The
# nearest real mix-ups are 8.1 % (22.05 vs 24 kHz) and 8.8 % (44.1 vs 48 kHz); a busy
# machine delivered up to 5 % too few frames in tests (CPU starvation, not a wrong rate).
CLOCK_TOLERANCE = 0.06
HIGH_LATENCY_MS = 250.0

TITLES: dict[str, str] = {
    "browser-env": "Browser: secure context and audio APIs",
    "browser-permission": "Browser: microphone permission",
    "browser-microphone": "Browser: microphone opens and delivers sound",
    "browser-processing": "Browser: echo cancellation and processing applied",
    "browser-sample-rate": "Browser: real sample rates",
    "browser-autoplay": "Browser: AudioContext starts",
    "browser-output": "Browser: playback path",
    "browser-latency": "Browser: audio latency",
    "browser-echo": "Browser: speaker-to-microphone echo through the page's own playback",
    "browser-wss": "Browser: WebSocket with a temporary token",
    "browser-page": "Browser: the page reported back",
}


@dataclass(frozen=True)
class BrowserInfo:
    engine: str  # Blink, Gecko, WebKit or unknown
    name: str
    version: str | None
    platform: str
    ua: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "name": self.name,
            "version": self.version,
            "platform": self.platform,
            "user_agent": self.ua,
        }


_UA_RULES = (  # first match wins: Edge and Opera also say Chrome, Chrome also says Safari
    ("Blink", "Edge", r"Edg(?:e|A|iOS)?/([\d.]+)"),
    ("Blink", "Opera", r"OPR/([\d.]+)"),
    ("Blink", "Chrome", r"(?:Headless)?Chrome/([\d.]+)"),
    ("Gecko", "Firefox", r"Firefox/([\d.]+)"),
    ("WebKit", "Safari", r"Version/([\d.]+).*Safari/"),
    ("WebKit", "WebKit", r"AppleWebKit/([\d.]+)"),
)


def browser_info(facts: dict[str, Any]) -> BrowserInfo:
    ua = str(facts.get("ua") or "")[:400]
    platform = str(facts.get("platform") or "")[:100]
    for engine, name, pattern in _UA_RULES:
        m = re.search(pattern, ua)
        if m:
            if name == "Chrome" and "Chromium" in ua:
                name = "Chromium"
            if engine == "WebKit" and "Linux" in ua and "Android" not in ua:
                name = "WebKitGTK"  # Safari does not run on Linux; its UA says Safari anyway
            return BrowserInfo(engine, name, m.group(1), platform, ua)
    return BrowserInfo("unknown", "unknown", None, platform, ua)


def _number(value: Any) -> TypeGuard[float]:
    """A JSON number (the page's facts are untrusted: "loud" or true is not a level)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _meta(check_id: str, result: Result) -> Result:
    return result.with_meta(check_id, TITLES[check_id], 0)


def _needs(check_id: str, need: str, results: dict[str, Result]) -> Result | None:
    """A skip naming the failure at the root of the chain, not the skip in between."""
    dep = results.get(need)
    if dep is None or dep.status.is_ok:
        return None
    root = dep
    while root.cause == "prerequisite_failed" and root.evidence.get("prerequisite") in results:
        root = results[root.evidence["prerequisite"]]
    return _meta(
        check_id,
        skipped(
            "prerequisite_failed",
            f"needs {need}: {root.id} ended with {root.status.value} ({root.cause or 'no cause'})",
            {
                "prerequisite": need,
                "prerequisite_status": dep.status.value,
                "prerequisite_cause": dep.cause,
                "root": root.id,
                "root_cause": root.cause,
            },
        ),
    )


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- one function per check -----------------------------------------------------------------


def env_result(facts: dict[str, Any]) -> Result:
    env = _d(facts.get("env"))
    api = _d(env.get("api_present"))
    ev = {
        "secure_context": env.get("secure_context"),
        "origin": env.get("origin"),
        "api_present": api,
    }
    if env.get("secure_context") is not True:
        detail = (
            f"{env.get('origin')} is not a secure context; navigator.mediaDevices is "
            f"{'present' if api.get('mediaDevices') else 'undefined'}"
        )
        return problem(
            Status.FAIL,
            "insecure_context",
            detail,
            ev,
            guide.fix("browser_secure_context", detail=detail),
        )
    missing = [k for k in ("AudioContext", "WebSocket", "getUserMedia") if not api.get(k)]
    if missing:
        detail = f"missing: {', '.join(missing)}"
        return problem(
            Status.FAIL,
            "unsupported_browser",
            detail,
            ev,
            guide.fix("browser_unsupported", detail=detail),
        )
    if not api.get("audioWorklet") or not api.get("AudioWorkletNode"):
        detail = "AudioWorklet is missing although the page is a secure context"
        return problem(
            Status.FAIL,
            "no_audio_worklet",
            detail,
            ev,
            guide.fix("browser_unsupported", detail=detail),
        )
    return passed(
        "secure context; getUserMedia, AudioContext, AudioWorklet and WebSocket present", ev
    )


def _gum_error(facts: dict[str, Any]) -> dict[str, Any]:
    return _d(_d(facts.get("gum")).get("error"))


def permission_result(facts: dict[str, Any]) -> Result:
    perm = _d(facts.get("permission"))
    gum = _d(facts.get("gum"))
    ev = {
        "query_supported": perm.get("query_supported"),
        "state_before": perm.get("state_before"),
        "state_after": perm.get("state_after"),
    }
    err = _gum_error(facts)
    if err.get("name") == "NotAllowedError":
        message = str(err.get("message", ""))
        ev["error"] = err
        detail = f'getUserMedia: NotAllowedError "{message}"'
        low = message.lower()
        if "by system" in low:
            return problem(
                Status.FAIL,
                "permission_blocked_by_os",
                "the operating system blocks the browser from the microphone",
                ev,
                guide.fix("browser_permission", detail=detail),
            )
        if "dismissed" in low:
            return problem(
                Status.WARN,
                "permission_dismissed",
                "the microphone prompt was closed without an answer: ask again",
                ev,
                guide.fix("browser_permission", detail=detail),
            )
        return problem(
            Status.FAIL,
            "permission_denied",
            "the browser refused the microphone "
            f"(permission {perm.get('state_after') or 'state unknown'})",
            ev,
            guide.fix("browser_permission", detail=detail),
        )
    if not gum.get("ok"):
        # other errors are the microphone's; the permission itself was not refused
        return passed(
            f"not refused (getUserMedia failed with {err.get('name')}: see browser-microphone)", ev
        )
    note = "" if perm.get("query_supported") else " (this browser has no permissions query)"
    return passed(f"granted{note}", ev)


def microphone_result(facts: dict[str, Any]) -> Result:
    gum = _d(facts.get("gum"))
    devices = _d(facts.get("devices"))
    m = _d(facts.get("measure"))
    inputs = devices.get("inputs")
    ev: dict[str, Any] = {
        "inputs_count": inputs,
        "outputs_count": devices.get("outputs"),
        "gum_ms": gum.get("ms"),
        "label": gum.get("label"),
    }
    err = _gum_error(facts)
    name = err.get("name")
    if name:
        ev["error"] = err
        detail = f'getUserMedia: {name} "{err.get("message", "")}"'
        fix = guide.fix("browser_microphone", detail=detail)
        if name == "NotFoundError" or (name == "OverconstrainedError" and not inputs):
            return problem(
                Status.FAIL,
                "no_input_device",
                f"no microphone found ({inputs or 0} inputs)",
                ev,
                fix,
            )
        if name in ("NotReadableError", "AbortError"):
            return problem(
                Status.FAIL,
                "device_busy",
                "the microphone exists but could not be opened (busy or failing)",
                ev,
                fix,
            )
        if name == "OverconstrainedError":
            return problem(
                Status.FAIL,
                "constraints_unsatisfiable",
                f"the device cannot meet the constraint {err.get('constraint')!r}",
                ev,
                fix,
            )
        return problem(
            Status.FAIL, "open_failed", f"the microphone did not open: {detail}", ev, fix
        )
    if not m:
        return skipped("no_capture", "the microphone opened but no audio graph could record it", ev)
    ev.update(
        {
            k: m.get(k)
            for k in (
                "level_rms_dbfs",
                "level_peak_dbfs",
                "zero_fraction",
                "clip_runs",
                "track_muted",
                "samples",
            )
        }
    )
    zero = m.get("zero_fraction")
    rms = m.get("level_rms_dbfs")
    if m.get("track_muted") or (isinstance(zero, (int, float)) and zero >= SILENT_ZERO_FRACTION):
        why = "the track is muted" if m.get("track_muted") else "all samples are digital zeros"
        detail = f"{why} (OS mute, privacy switch, or the wrong input)"
        return problem(
            Status.FAIL, "silent_input", detail, ev, guide.fix("browser_microphone", detail=detail)
        )
    if m.get("samples") == 0:
        detail = "the microphone opened but delivered no audio while the page listened"
        return problem(
            Status.FAIL, "silent_input", detail, ev, guide.fix("browser_microphone", detail=detail)
        )
    if not _number(rms) or rms < LOW_LEVEL_DBFS:
        detail = f"level {rms} dBFS RMS, below {LOW_LEVEL_DBFS:g} dBFS"
        return problem(
            Status.WARN, "low_level", detail, ev, guide.fix("browser_microphone", detail=detail)
        )
    if m.get("clip_runs"):
        detail = f"{m['clip_runs']} runs of clipped samples (peak {m.get('level_peak_dbfs')} dBFS)"
        return problem(Status.WARN, "clipping", detail, ev, guide.fix("audio_gain", detail=detail))
    return passed(
        f"{gum.get('label') or 'microphone'}: {rms} dBFS RMS, peak {m.get('level_peak_dbfs')} dBFS",
        ev,
    )


def processing_result(facts: dict[str, Any]) -> Result:
    proc = _d(facts.get("processing"))
    requested = _d(proc.get("requested"))
    settings = _d(proc.get("settings"))
    ev = {
        "requested": requested,
        "settings": settings,
        "capabilities": proc.get("capabilities"),
        "supported": proc.get("supported"),
    }
    unreported = [
        k
        for k in (
            "echoCancellation",
            "autoGainControl",
            "noiseSuppression",
            "channelCount",
            "sampleRate",
        )
        if k not in settings
    ]
    ev["unreported"] = unreported
    aec = settings.get("echoCancellation")
    if aec is False:
        detail = "echoCancellation was requested, getSettings() says false"
        return problem(
            Status.WARN, "aec_off", detail, ev, guide.fix("browser_processing", detail=detail)
        )
    if settings.get("noiseSuppression") is True and requested.get("noiseSuppression") is False:
        detail = "noiseSuppression: false was requested, getSettings() says true"
        return problem(
            Status.WARN,
            "noise_suppression_on",
            detail,
            ev,
            guide.fix("browser_processing", detail=detail),
        )
    applied = ", ".join(
        f"{k} {settings[k]}"
        for k in ("echoCancellation", "noiseSuppression", "autoGainControl")
        if k in settings
    )
    tail = f"; not reported (unknown, not off): {', '.join(unreported)}" if unreported else ""
    if aec is None:
        ev["cause_info"] = "aec_unreported"
    return passed(f"{applied or 'nothing reported'}{tail}", ev)


def _contexts(facts: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in facts.get("contexts") or [] if isinstance(c, dict)]


def _api_context(facts: dict[str, Any]) -> dict[str, Any]:
    for c in _contexts(facts):
        if c.get("requested_rate_hz") == API_RATE_HZ:
            return c
    return {}


def sample_rate_result(facts: dict[str, Any]) -> Result:
    api = _api_context(facts)
    m = _d(facts.get("measure"))
    processing = _d(facts.get("processing"))
    ev: dict[str, Any] = {
        "requested_rate_hz": API_RATE_HZ,
        "context_rate_hz": api.get("context_rate_hz"),
        "default_context_rate_hz": next(
            (
                c.get("context_rate_hz")
                for c in _contexts(facts)
                if c.get("requested_rate_hz") is None
            ),
            None,
        ),
        "worklet_rate_hz": m.get("worklet_rate_hz") or api.get("worklet_rate_hz"),
        "mic_track_rate_hz": _d(processing.get("settings")).get("sampleRate"),
        "measured_context": m.get("label"),
        "measured_context_rate_hz": m.get("context_rate_hz"),
        "delivered_input_hz": m.get("delivered_input_hz"),
        "delivered_output_hz": m.get("delivered_output_hz"),
    }
    err = _d(api.get("error"))
    if err and not api.get("context_rate_hz"):
        detail = (
            f"new AudioContext({{sampleRate: 24000}}) threw {err.get('name')}: {err.get('message')}"
        )
        ev["error"] = err
        return problem(
            Status.FAIL,
            "context_rate_rejected",
            detail,
            ev,
            guide.fix("browser_sample_rate", detail=detail),
        )
    connect = _d(api.get("mic_connect_error"))
    if connect:
        ev["mic_connect_error"] = connect
        detail = (
            f"connecting the microphone to a 24 kHz AudioContext threw "
            f"{connect.get('name')}: {connect.get('message')}"
        )
        return problem(
            Status.FAIL,
            "mic_source_rate_mismatch",
            detail,
            ev,
            guide.fix("browser_mixed_rates", detail=detail),
        )
    declared = m.get("context_rate_hz")
    for key in ("delivered_input_hz", "delivered_output_hz"):
        got = m.get(key)
        numbers = isinstance(got, (int, float)) and isinstance(declared, (int, float))
        if numbers and declared and abs(got - declared) / declared > CLOCK_TOLERANCE:
            detail = (
                f"the context declares {declared} Hz but its {key.split('_')[1]} runs at "
                f"{got:.0f} frames per second"
            )
            return problem(
                Status.FAIL,
                "clock_mismatch",
                detail,
                ev,
                guide.fix("browser_sample_rate", detail=detail),
            )
    rate = api.get("context_rate_hz")
    if isinstance(rate, (int, float)) and rate != API_RATE_HZ:
        detail = f"asked for a 24000 Hz AudioContext, got {rate} Hz: the app must resample"
        return problem(
            Status.WARN,
            "context_rate_ignored",
            detail,
            ev,
            guide.fix("browser_sample_rate", detail=detail),
        )
    delivered = m.get("delivered_input_hz")
    extra = f", delivered {delivered:.0f} frames/s" if isinstance(delivered, (int, float)) else ""
    return passed(f"a 24 kHz AudioContext runs at {rate} Hz{extra}", ev)


def autoplay_result(facts: dict[str, Any]) -> Result:
    ctxs = [c for c in _contexts(facts) if c.get("context_rate_hz")]
    ev = {
        "contexts": [
            {
                k: c.get(k)
                for k in ("label", "state_initial", "state_after", "resume_ms", "resume_timeout_ms")
            }
            for c in ctxs
        ]
    }
    if not ctxs:
        return skipped(
            "no_context", "no AudioContext could be created (see browser-sample-rate)", ev
        )
    stuck = [c for c in ctxs if c.get("state_after") != "running"]
    if stuck:
        c = stuck[0]
        detail = (
            f"the AudioContext stayed {c.get('state_after')} after resume() "
            f"(waited {c.get('resume_timeout_ms')} ms)"
        )
        return problem(
            Status.FAIL,
            "audio_context_suspended",
            detail,
            ev,
            guide.fix("browser_autoplay", detail=detail),
        )
    first = ctxs[0]
    return passed(
        f"running ({first.get('state_initial')} at creation, resume() took "
        f"{first.get('resume_ms')} ms)",
        ev,
    )


def output_result(facts: dict[str, Any], info: BrowserInfo) -> Result:
    m = _d(facts.get("measure"))
    devices = _d(facts.get("devices"))
    stats = _d(m.get("playback_stats"))
    ev = {
        "outputs_count": devices.get("outputs"),
        "output_latency_ms": m.get("output_latency_ms"),
        "output_latency_unread": m.get("output_latency_unread"),
        "base_latency_ms": m.get("base_latency_ms"),
        "underrun_events": stats.get("underrun_events"),
        "underrun_ms": stats.get("underrun_ms"),
    }
    if not m:
        return skipped("no_context", "no audio graph ran (see browser-sample-rate)", ev)
    # Only Chromium lists outputs reliably (Firefox from 116, Safari not at all).
    if info.engine == "Blink" and devices.get("outputs") == 0:
        detail = "enumerateDevices() lists no audio output"
        return problem(
            Status.WARN, "no_output_device", detail, ev, guide.fix("browser_output", detail=detail)
        )
    if stats.get("underrun_events"):
        detail = (
            f"{stats['underrun_events']} underruns ({stats.get('underrun_ms')} ms) while playing"
        )
        return problem(
            Status.WARN, "output_underruns", detail, ev, guide.fix("browser_output", detail=detail)
        )
    latency = m.get("output_latency_ms")
    shown = f"output latency {latency} ms" if latency else "output latency not reported"
    return passed(f"{shown}, base latency {m.get('base_latency_ms')} ms", ev)


def latency_result(facts: dict[str, Any], round_trip_ms: float | None) -> Result:
    m = _d(facts.get("measure"))
    track = _d(m.get("track_stats"))
    out_ms = m.get("output_latency_ms")
    ev: dict[str, Any] = {
        "output_latency_ms": out_ms,
        "base_latency_ms": m.get("base_latency_ms"),
        "track_stats": track or None,
        "round_trip_ms": None if round_trip_ms is None else round(round_trip_ms, 1),
    }
    if not m:
        return skipped("no_context", "no audio graph ran (see browser-sample-rate)", ev)
    # track.stats is Chrome-only and its units read differently across versions: evidence only
    total = round_trip_ms if round_trip_ms is not None else out_ms
    if isinstance(total, (int, float)) and total > HIGH_LATENCY_MS:
        detail = f"{total:.0f} ms from playback to capture (above {HIGH_LATENCY_MS:g} ms)"
        return problem(
            Status.WARN, "high_latency", detail, ev, guide.fix("browser_output", detail=detail)
        )
    names = {
        "output_latency_ms": "output",
        "base_latency_ms": "processing",
        "round_trip_ms": "acoustic round trip",
    }
    shown = ", ".join(f"{name} {ev[k]} ms" for k, name in names.items() if ev[k])
    return passed(shown or "the browser reports no latency figures", ev)


def wss_result(
    facts: dict[str, Any], refined: Result | None, token_problem: Result | None = None
) -> Result:
    """`refined`: the CLI's own handshake with the same token, for a close before open;
    `token_problem`: the token core's verdict when the CLI had a key and minting failed
    (a wrong or rate-limited key fails here; only a run with no key at all skips)."""
    session = _d(facts.get("session"))
    wss = _d(facts.get("wss"))
    events = [e for e in wss.get("events") or [] if isinstance(e, dict)]
    ev: dict[str, Any] = {"events": events[:50], "ended_by": wss.get("ended_by")}
    if token_problem is not None:
        return replace(token_problem, evidence={**ev, **token_problem.evidence})
    if not session.get("has_token"):
        why = session.get("token_error") or "no API key or token"
        return skipped("no_credentials", f"no temporary token for the page: {why}", ev)
    if not wss:
        return skipped("not_run", "the page did not open the WebSocket", ev)
    ctor = _d(wss.get("constructor_error"))
    if ctor:
        detail = f"new WebSocket() threw {ctor.get('name')}: {ctor.get('message')}"
        return problem(
            Status.FAIL,
            "ws_blocked",
            detail,
            {**ev, "error": ctor},
            guide.fix("browser_websocket", detail=detail),
        )
    types = [e.get("type") for e in events]
    opened = "open" in types
    close = next((e for e in events if e.get("type") == "close"), {})
    messages = [e for e in events if e.get("type") == "message"]
    ready = next((e for e in messages if e.get("message_type") == "session.ready"), None)
    error = next((e for e in messages if e.get("message_type") == "session.error"), None)
    ev.update(
        {
            "close_code": close.get("code"),
            "close_reason": close.get("reason"),
            "was_clean": close.get("was_clean"),
            "open_ms": next((e.get("t_ms") for e in events if e.get("type") == "open"), None),
            "first_event": messages[0].get("message_type") if messages else None,
            "session_id": (ready or {}).get("session_id") or None,
            "error_code": (error or {}).get("error_code"),
        }
    )
    code = close.get("code")
    if wss.get("ended_by") == "error_without_close":
        detail = "the WebSocket fired `error` and never `close` (a port the browser blocks?)"
        return problem(
            Status.FAIL, "ws_blocked", detail, ev, guide.fix("browser_websocket", detail=detail)
        )
    if not opened and (code == 1006 or "error" in types):
        if refined is not None:
            ev["cli_handshake"] = {
                "status": refined.status.value,
                "cause": refined.cause,
                "summary": refined.summary,
                **refined.evidence,
            }
            if refined.status.is_problem and refined.cause:
                summary = (
                    f"closed before open (1006, which a page cannot explain); the CLI's "
                    f"own handshake: {refined.summary}"
                )
                fix = refined.fix or guide.fix("browser_websocket", detail=refined.summary)
                return problem(Status.FAIL, refined.cause, summary, ev, fix)
        ca = refined.evidence.get("ca_bundle") if refined is not None else None
        if isinstance(ca, str) and ca:
            detail = (
                f"closed {code} before open, while the CLI's handshake with the same token "
                f"worked trusting {ca} (--ca-bundle): the browser does not trust the CA "
                "given with --ca-bundle"
            )
            fix = guide.fix("browser_ca", detail=detail)
            return problem(Status.FAIL, "tls_untrusted", detail, ev, fix)
        detail = (
            f"closed {code} before open; the CLI's handshake with the same token "
            f"{'worked' if refined is not None else 'was not tried'}"
        )
        return problem(
            Status.FAIL,
            "closed_before_open",
            detail,
            ev,
            guide.fix("browser_websocket", detail=detail),
        )
    core = _core_outcome(error, close) if error is not None or code == 1008 else None
    if core is not None:
        return problem(
            Status.FAIL, core.cause, core.summary, ev, guide.fix(core.guide, detail=core.detail)
        )
    if code == 1008:
        detail = f"closed 1008 (policy) {close.get('reason')!r} before session.ready"
        return problem(
            Status.FAIL, "policy_close", detail, ev, guide.fix("token_auth", detail=detail)
        )
    if code == 1011:
        detail = f"closed 1011 (server error) {close.get('reason')!r}"
        return problem(
            Status.FAIL, "server_error_close", detail, ev, guide.fix("service_side", detail=detail)
        )
    if ready is None:
        if opened and code == 1006:
            detail = "the connection dropped after open (1006, no close frame)"
            return problem(
                Status.FAIL,
                "abrupt_close",
                detail,
                ev,
                guide.fix("browser_websocket", detail=detail),
            )
        detail = f"no session.ready ({wss.get('ended_by')}, close {code})"
        return problem(
            Status.FAIL,
            "no_session_ready",
            detail,
            ev,
            guide.fix("browser_websocket", detail=detail),
        )
    ended = any(e.get("message_type") == "session.ended" for e in messages)
    return passed(
        f"open in {ev['open_ms']} ms, session.ready ({ev['session_id']}), "
        f"{'session.ended, ' if ended else ''}close {code}",
        ev,
    )


def _core_outcome(error: dict[str, Any] | None, close: dict[str, Any]) -> Any:
    """The page's session.error and close, judged by the same pure core as the CLI's own
    `token` check (doctor/net/auth_outcome.py), so both name one cause and one fix. None
    for a bare 1008 the core cannot name (the browser's own `policy_close` then)."""
    from doctor.net.auth_outcome import Failure, session_outcome

    code = close.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    reason = close.get("reason")
    err = error or {}
    failure = Failure(
        kind="session_error" if error is not None else "closed",
        step="ready",
        error_code=None if err.get("error_code") is None else str(err["error_code"])[:100],
        error_message=None if err.get("error_message") is None else str(err["error_message"])[:200],
        close_code=code,
        close_reason=reason if isinstance(reason, str) else None,
        close_frame=None if code is None else code != 1006,
    )
    outcome = session_outcome(failure, "token")
    if error is None and outcome.cause == "no_session_ready":
        return None
    return outcome


def page_timeout_result(
    wait_s: float,
    last_step: str | None = None,
    page_loaded: bool | None = None,
    opener: str | None = None,
) -> Result:
    """No results: where the page stood, if it got as far as clicking Start; a page no
    browser ever fetched says so (and what `opener`, the launch, did), not "Start"."""
    if last_step:
        where = f"; it last said: {last_step}"
    elif page_loaded is False:
        where = f"; no browser opened the page{f' ({opener})' if opener else ''}"
    else:
        where = "; Start was never clicked"
    detail = f"no results from the page within {wait_s:g} s{where}"
    ev = {"wait_s": wait_s, "last_step": last_step, "page_loaded": page_loaded, "opener": opener}
    return _meta(
        "browser-page",
        problem(
            Status.FAIL, "no_page_results", detail, ev, guide.fix("browser_page", detail=detail)
        ),
    )


def browser_start_result(detail: str, evidence: dict[str, Any], not_started: bool) -> Result:
    """`--browser CMD` could not start, or exited with an error before the page was
    fetched: the wait ends at once, naming the command, its exit code and stderr."""
    cause = "browser_not_started" if not_started else "browser_exited"
    fix = guide.fix("browser_start", detail=detail)
    return _meta("browser-page", problem(Status.FAIL, cause, detail, evidence, fix))


def judging_failed_result(exc: BaseException) -> Result:
    """Judging the page's facts raised: an `error` at once, not a wait until --timeout."""
    detail = f"judging the page's results failed: {type(exc).__name__}: {exc}"[:300]
    ev = {"exception_type": type(exc).__name__, "exception_message": str(exc)[:500]}
    return _meta("browser-page", errored("exception", detail, ev))


def judge(
    facts: dict[str, Any],
    echo: Result,
    round_trip_ms: float | None,
    refined_wss: Result | None,
    token_problem: Result | None = None,
) -> tuple[list[Result], BrowserInfo]:
    """Every browser-* result, in the order a user reads them, prerequisites applied."""
    info = browser_info(facts)
    out: dict[str, Result] = {}
    out["browser-env"] = _meta("browser-env", env_result(facts))
    env_ok = out["browser-env"].status.is_ok
    out["browser-permission"] = _needs("browser-permission", "browser-env", out) or _meta(
        "browser-permission", permission_result(facts)
    )
    out["browser-microphone"] = _needs("browser-microphone", "browser-permission", out) or _meta(
        "browser-microphone", microphone_result(facts)
    )
    mic_open = bool(_d(facts.get("gum")).get("ok"))
    for cid, fn in (
        ("browser-processing", processing_result),
        ("browser-sample-rate", sample_rate_result),
        ("browser-autoplay", autoplay_result),
    ):
        blocked = _needs(cid, "browser-microphone", out) if not mic_open else None
        out[cid] = blocked or _meta(cid, fn(facts))
    if not env_ok or not mic_open:
        for cid in ("browser-output", "browser-latency", "browser-echo"):
            out[cid] = _needs(cid, "browser-microphone", out) or _meta(
                cid, skipped("no_capture", "the microphone did not open")
            )
    else:
        out["browser-output"] = _meta("browser-output", output_result(facts, info))
        out["browser-latency"] = _meta("browser-latency", latency_result(facts, round_trip_ms))
        out["browser-echo"] = _meta("browser-echo", echo)
    out["browser-wss"] = _meta("browser-wss", wss_result(facts, refined_wss, token_problem))
    return list(out.values()), info
