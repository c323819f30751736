"""The relay's findings from what it watched on each connection (pure).

Each finding names its cause code (report-contract.md, "Session analysis"), the guide entry
with the fix, and the evidence a support engineer asks for: frame numbers, seconds, codes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from doctor.session.findings import (
    GRACE_S,
    PROTOCOL_CLOSE_CODES,
    percentile,
    protocol_close_text,
)
from doctor.session.state import RESUME_CODES
from doctor.watch.observe import (
    BURST_WINDOW_S,
    CHUNK_MS_RANGE,
    FORMATS,
    SLOW_REPLY_MS,
    Conn,
    Finding,
    RelayObserver,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

WARN, FAIL = "warn", "fail"


def _base(c: Conn) -> dict[str, Any]:
    return {"session_id": c.session_id, "conn": c.conn}


def conn_findings(
    c: Conn, resumed: set[str] | None = None, reused: set[int] | None = None
) -> list[Finding]:
    """`resumed`: session ids a later connection tried to resume (a drop then is no hang-up);
    `reused`: connections refused for a dropped connection's token before any message (the
    resume findings say so; their `unauthorized` is not a service error)."""
    out: list[Finding] = []
    out += _audio(c)
    out += _pacing(c)
    out += _close(c, resumed or set())
    out += _errors(c, c.conn in (reused or set()))
    out += _echo(c)
    out += _latency(c)
    out += _tools(c)
    out += _messages(c)
    return out


def _audio(c: Conn) -> list[Finding]:
    out: list[Finding] = []
    from doctor.audio.format.findings import GUIDE_FOR

    for code, first in c.bad.items():
        out.append(
            Finding(
                "audio",
                code,
                FAIL,
                f"input.audio from frame {first['first_frame']} on (input.audio "
                f"#{first['first_audio_frame']}): {first['message']} ({first['frames']} frames)",
                {
                    **_base(c),
                    "first_bad_frame": first["first_frame"],
                    "first_bad_audio_frame": first["first_audio_frame"],
                    "bad_frames": first["frames"],
                    "audio_frames": c.audio_frames,
                },
                GUIDE_FOR.get(code, "malformed_audio"),
                f"first bad frame {first['first_frame']}",
            )
        )
    for f in c.content:
        if f["code"] in c.bad:
            continue
        out.append(
            Finding(
                "audio",
                f["code"],
                FAIL if f["severity"] == "error" else WARN,
                f"the audio the app sends: {f['message']}",
                {
                    **_base(c),
                    "first_bad_audio_frame": 1,
                    "audio_frames": c.audio_frames,
                    **c.content_stats,
                },
                f["guide"],
                f.get("detail") or "",
            )
        )
    out += _declared(c)
    if c.chunk_ms:
        med = sorted(c.chunk_ms)[len(c.chunk_ms) // 2]
        lo, hi = CHUNK_MS_RANGE
        if not lo <= med <= hi and "chunk_size" not in {f.cause for f in out}:
            out.append(
                Finding(
                    "audio",
                    "chunk_size",
                    WARN,
                    f"input.audio chunks are {med:.0f} ms long (median); about 50 ms is expected",
                    {**_base(c), "chunk_ms_median": round(med, 1), "audio_frames": c.audio_frames},
                    "audio_chunking",
                    f"median chunk {med:.0f} ms",
                )
            )
    return out


def _declared(c: Conn) -> list[Finding]:
    """What session.update declared against what the content shows."""
    detected = (c.content_stats or {}).get("detected") or {}
    declared = c.declared.get("input") or {}
    problems: list[str] = []
    enc = declared.get("encoding")
    if enc is not None and not isinstance(enc, str):  # an app's bug must not stop the analysis
        problems.append(f"encoding {enc!r} is not a string")
        enc = None
    elif enc is not None and enc not in FORMATS:
        problems.append(f"encoding {enc!r} is not one the service knows ({', '.join(FORMATS)})")
    rate = declared.get("sample_rate")
    want = FORMATS.get(str(enc or "audio/pcm"), (24_000, 2))[0]
    if isinstance(rate, int) and rate != want:
        problems.append(f"sample_rate {rate} is declared, but {enc or 'audio/pcm'} is {want} Hz")
    est = (c.content_stats or {}).get("estimated_rate_hz")
    codes = {f["code"] for f in c.content}
    if "sample_rate_mismatch" in codes and isinstance(est, (int, float)):
        problems.append(f"declared {rate or want} Hz, the content sounds like {est:.0f} Hz")
    if detected.get("encoding") not in (None, "s16le") and (enc in (None, "audio/pcm")):
        problems.append(f"declared PCM16, the content is {detected.get('encoding')}")
    if detected.get("channels") not in (None, 1):
        problems.append(f"declared mono, the content has {detected.get('channels')} channels")
    implied = RelayObserver.implied_rate(c)
    explained = bool({"float32_samples", "stereo_interleaved"} & codes) or bool(
        {"float32_samples", "stereo_interleaved"} & set(c.bad)
    )
    rate_problem = "sample_rate_mismatch" in codes or bool(rate and rate != want)
    if implied is not None and not (
        explained and implied["implied_hz"] == 2 * implied["declared_hz"]
    ):
        rate_problem = True
        problems.append(
            f"at real-time pace the app sends {implied['ratio']:.2f} s of audio per second: "
            f"{implied['looks_like']}"
        )
    if not problems:
        return []
    return [
        Finding(
            "audio",
            "format_mismatch",
            FAIL,
            "what session.update declared is not what the app sends: " + "; ".join(problems),
            {
                **_base(c),
                "declared_input_format": declared or None,
                "detected": detected or None,
                "estimated_rate_hz": est,
                "implied_rate_hz": implied["implied_hz"] if implied else None,
                "steady_real_time_ratio": round(implied["ratio"], 3) if implied else None,
                "problems": problems,
            },
            "sample_rate" if rate_problem else "audio_encoding",
            "; ".join(problems),
        )
    ]


def _pacing(c: Conn) -> list[Finding]:
    out: list[Finding] = []
    if c.audio_before_ready:
        out.append(
            Finding(
                "pacing",
                "audio_before_ready",
                WARN,
                f"{c.audio_before_ready} input.audio frames were sent before session.ready "
                f"(the first at frame {c.first_before_ready})",
                {
                    **_base(c),
                    "frames_before_ready": c.audio_before_ready,
                    "first_frame": c.first_before_ready,
                },
                "watch_audio_before_ready",
            )
        )
    if c.first_audio_t is None or c.last_audio_t is None:
        return out
    span = c.last_audio_t - c.first_audio_t
    ratio = c.audio_s / span if span > 0 else None
    ev = {
        **_base(c),
        "audio_s": round(c.audio_s, 2),
        "wall_s": round(span, 2),
        "real_time_ratio": None if ratio is None else round(ratio, 2),
        "max_lead_s": round(c.max_lead_s, 2),
        "lead_at_frame": c.lead_at_frame,
        "worst_gap_s": round(c.max_gap_s, 2),
        "gap_at_frame": c.gap_at_frame,
        "gaps": c.gaps,
    }
    implied = RelayObserver.implied_rate(c)
    ev["steady_real_time_ratio"] = None if implied is None else round(implied["ratio"], 2)
    if c.bursts:
        out.append(
            Finding(
                "pacing",
                "audio_pacing",
                WARN,
                f"audio sent in {c.bursts} burst(s) faster than real time: up to "
                f"{c.max_burst_s:.1f} s of audio within {BURST_WINDOW_S:g} s (at frame "
                f"{c.burst_at_frame})",
                {
                    **ev,
                    "bursts": c.bursts,
                    "max_burst_audio_s": round(c.max_burst_s, 2),
                    "burst_window_s": BURST_WINDOW_S,
                    "burst_at_frame": c.burst_at_frame,
                },
                "audio_chunking",
                f"{c.max_burst_s:.1f} s of audio within {BURST_WINDOW_S:g} s",
            )
        )
    elif c.gaps:
        out.append(
            Finding(
                "pacing",
                "audio_pacing",
                WARN,
                f"{c.gaps} gaps in the app's audio stream, the worst {c.max_gap_s:.1f} s "
                f"(at frame {c.gap_at_frame})",
                ev,
                "audio_chunking",
                f"worst gap {c.max_gap_s:.1f} s",
            )
        )
    return out


def _close(c: Conn, resumed: set[str]) -> list[Finding]:
    d = c.close or {}
    by, code = d.get("by"), d.get("code")
    ev = {
        **_base(c),
        "closed_by": by,
        "close_code": code,
        "close_reason": d.get("reason"),
        "app_close_code": d.get("app_code"),
        "service_close_code": d.get("service_code"),
        "session_end_sent": c.session_end_t is not None,
        "session_ended_received": c.ended_t is not None,
    }
    if d.get("upstream_refused"):
        return _refused(c, d)
    if c.ready_t is None:
        return []
    if by == "relay":
        return _relay_close(c, code, d.get("reason"), ev)
    if by == "service" and code in PROTOCOL_CLOSE_CODES:
        what = protocol_close_text(code, d.get("reason"))
        return [
            Finding(
                "close",
                "protocol_close",
                WARN,
                f"the service closed with {what}",
                ev,
                "protocol_close",
                f"close {code} {d.get('reason') or ''}".strip(),
            )
        ]
    if by == "app" and code is None and c.session_id in resumed:
        return []  # a drop the app recovers from by resuming: see the resume findings
    if by == "app" and c.session_end_t is None:
        shown = f"code {code}" if code is not None else "no close frame"
        return [
            Finding(
                "close",
                "no_session_end",
                WARN,
                f"the app closed the socket ({shown}) without sending session.end: the session "
                f"stays alive for the {GRACE_S:.0f} s resume window, which may be billed",
                {**ev, "grace_s_billed_max": GRACE_S},
                "billing",
                f"closed with {shown}, no session.end",
            )
        ]
    if code is None and by == "service":
        return [
            Finding(
                "close",
                "abrupt_close",
                WARN,
                "the service dropped the connection without a close frame (1006)",
                ev,
                "service_side",
                "TCP drop without a close frame",
            )
        ]
    if isinstance(code, int) and code in (1011, 1012, 1013, 1014) and by == "service":
        return [
            Finding(
                "close",
                "abrupt_close",
                WARN,
                f"the service closed with {code} ({d.get('reason') or 'no reason'})",
                ev,
                "service_side",
                f"close {code}",
            )
        ]
    return []


def _relay_close(c: Conn, code: Any, reason: Any, ev: dict[str, Any]) -> list[Finding]:
    """The relay closed it: watch's own stop is not a finding (watch-relay counts the
    sessions it cut), nor is the relay's own failure (no code, or 1011); a protocol close
    code is the relay refusing what the app sent."""
    if code not in PROTOCOL_CLOSE_CODES:  # watch's own stop, the relay's own failure
        return []
    what = protocol_close_text(code, reason)
    return [
        Finding(
            "close",
            "protocol_close",
            WARN,
            f"the relay closed the connection with {what}: the app's message broke the "
            "WebSocket protocol (the service would refuse it too)",
            ev,
            "protocol_close",
            f"relay close {code} {reason or ''}".strip(),
        )
    ]


def _refused(c: Conn, d: dict[str, Any]) -> list[Finding]:
    """The upgrade never happened: the service (or the way to it) refused it. Said with
    its status, never as a drop: a 401 is a key or token problem, not a firewall."""
    status = d.get("upstream_status")
    reason = str(d.get("reason") or "")
    ev = {**_base(c), "upstream_status": status, "reason": reason}
    if status in (401, 403) and reason.startswith("HTTP"):
        return [
            Finding(
                "connect",
                "unauthorized",
                FAIL,
                f"the service refused the WebSocket upgrade with HTTP {status}: the API key "
                "or the token the app sent was not accepted",
                ev,
                "token_auth",
                f"upgrade refused with HTTP {status}",
            )
        ]
    if status == 429:
        guide_id = "rate_limit"
    elif reason.startswith("proxy"):
        guide_id = "proxy"
    elif reason.startswith("upstream"):  # not reached, or no answer in time
        guide_id = "firewall"
    else:
        guide_id = "service_side"
    return [
        Finding(
            "connect",
            "upgrade_refused",
            FAIL,
            f"the WebSocket upgrade did not happen: {reason or f'HTTP {status}'} "
            f"(the app got HTTP {status})",
            ev,
            guide_id,
            reason or f"HTTP {status}",
        )
    ]


def _errors(c: Conn, reused: bool = False) -> list[Finding]:
    out = []
    for err in c.errors:
        code = str(err.get("code"))
        if c.first_type == "session.resume" and (
            code.lower() in RESUME_CODES or (c.ready_t is None and err is c.errors[0])
        ):
            continue  # the resume findings say it with what the app did next
        if reused and code.lower() == "unauthorized":
            continue  # resume_token_reused says it, with the dropped connection
        out.append(
            Finding(
                "messages",
                "session_error",
                WARN,
                f"session.error {code}: {err.get('message')}"
                + (f" (param {err.get('param')})" if err.get("param") else ""),
                {**_base(c), **err},
                "malformed_audio"
                if code in ("invalid_audio", "invalid_format")
                else "service_side",
                f"{code}: {err.get('message')}",
            )
        )
    return out


def _echo(c: Conn) -> list[Finding]:
    if not c.echo or c.echo.get("verdict") != "echo":
        return []
    if c.echo.get("software_loop"):  # under 30 ms: no room in between, a stream mix-up
        delay = c.echo.get("delay_ms")
        return [
            Finding(
                "echo",
                "echo_loop",
                FAIL,
                f"the agent's audio comes back from the app {delay} ms later, within one "
                "input chunk of being handed over: too soon for a speaker and a microphone, "
                "so the app sends what it receives (a software loop)",
                {
                    **_base(c),
                    "signals": ["audio"],
                    "software_loop": True,
                    **{f"audio_{k}": v for k, v in c.echo.items() if k != "software_loop"},
                },
                "watch_software_loop",
                f"delay {delay} ms",
            )
        ]
    return [
        Finding(
            "echo",
            "echo_loop",
            FAIL,
            f"the agent's audio comes back from the app {c.echo.get('delay_ms')} ms later "
            f"(ERL {c.echo.get('erl_db')} dB): the app plays the agent into its own input",
            {**_base(c), "signals": ["audio"], **{f"audio_{k}": v for k, v in c.echo.items()}},
            "echo_loop",
            f"delay {c.echo.get('delay_ms')} ms, ERL {c.echo.get('erl_db')} dB",
        )
    ]


def _latency(c: Conn) -> list[Finding]:
    if not c.latencies_ms:
        return []
    p50 = percentile(c.latencies_ms, 0.5)
    if p50 <= SLOW_REPLY_MS:
        return []
    return [
        Finding(
            "latency",
            "slow_replies",
            WARN,
            f"end of user speech to the agent's first audible audio: p50 {p50:.0f} ms",
            {
                **_base(c),
                "p50_ms": round(p50),
                "p90_ms": round(percentile(c.latencies_ms, 0.9)),
                "worst_ms": round(max(c.latencies_ms)),
                "turns": len(c.latencies_ms),
            },
            "service_side",
            f"p50 {p50:.0f} ms",
        )
    ]


def _tools(c: Conn) -> list[Finding]:
    out = []
    owed = c.tool_calls.keys() - c.tool_unowed  # a stored agent's may be its HTTP tools
    if owed:
        out.append(
            Finding(
                "tools",
                "tool_result_missing",
                WARN,
                f"{len(owed)} tool.call(s) got no tool.result before the close",
                {**_base(c), "call_ids": sorted(owed)},
                "watch_tool_results",
            )
        )
    if c.tool_late:
        out.append(
            Finding(
                "tools",
                "tool_result_late",
                WARN,
                f"{len(c.tool_late)} tool.result(s) came after the tool timeout",
                {**_base(c), "late": c.tool_late, "timeout_s": c.tool_late_timeout_s},
                "watch_tool_results",
            )
        )
    return out


def _messages(c: Conn) -> list[Finding]:
    app = {k: v for k, v in c.unknown.items() if not k.startswith("service:")}
    if not app:
        return []
    return [
        Finding(
            "messages",
            "unknown_message",
            WARN,
            "the app sends messages the service does not know: "
            + ", ".join(f"{k} ({v}x)" for k, v in app.items()),
            {**_base(c), "unknown": app},
            "watch_unknown_message",
            ", ".join(app),
        )
    ]


def silent_reuses(order: list[Conn]) -> set[int]:
    """The connections refused for a dropped connection's token before any message."""
    return {c.conn for i, c in enumerate(order) if _silent_reuse(c, order[:i])}


def _silent_reuse(c: Conn, earlier: list[Conn]) -> list[Finding]:
    """A reconnection with the token of a dropped connection that the service refused
    before the app said anything: the app's `session.resume` (if it meant one) never left,
    but the spent token is the mistake all the same."""
    seq = c.details.get("token_seq")
    if c.first_type is not None or seq is None or c.details.get("auth") != "query":
        return []
    if not any(str(e.get("code")).lower() == "unauthorized" for e in c.errors):
        return []
    before = next(
        (p for p in reversed(earlier) if p.details.get("token_seq") == seq and p.session_id),
        None,
    )
    if before is None or before.close is None:
        return []
    delay = c.opened_t - float(before.close.get("t", c.opened_t))
    ev = {
        "session_id": before.session_id,
        "conn": c.conn,
        "delay_s": round(delay, 2),
        "within_grace": delay <= GRACE_S,
        "new_token": False,
        "resume_sent": False,
    }
    return [
        Finding(
            "resume",
            "resume_token_reused",
            WARN,
            f"the app reconnected after {before.session_id} ended with the token of that "
            "connection, and the service refused it before any message: tokens are "
            "documented as single use; mint a new one for every connection",
            ev,
            "token_lifetime",
        )
    ]


def resume_findings(conns: Iterable[Conn]) -> list[Finding]:
    """Across connections: what the app did after a drop and after a refused resume."""
    order = list(conns)
    out: list[Finding] = []
    for i, c in enumerate(order):
        if c.first_type != "session.resume":
            out.extend(_silent_reuse(c, order[:i]))
            continue
        target = c.resumed_id
        before = next((p for p in reversed(order[:i]) if p.session_id == target), None)
        ev: dict[str, Any] = {"session_id": target, "conn": c.conn, "resume_sent": True}
        if before is not None and before.close is not None:
            delay = c.opened_t - float(before.close.get("t", c.opened_t))
            ev["delay_s"] = round(delay, 2)
            ev["within_grace"] = delay <= GRACE_S
            same = c.details.get("token_seq") is not None and c.details.get(
                "token_seq"
            ) == before.details.get("token_seq")
            ev["new_token"] = None if c.details.get("auth") != "query" else not same
            if same:
                out.append(
                    Finding(
                        "resume",
                        "resume_token_reused",
                        WARN,
                        f"the app resumed {target} with the token of the dropped connection: "
                        "tokens are documented as single use; mint a new one for every connection",
                        dict(ev),
                        "token_lifetime",
                    )
                )
        refusal = next((e for e in c.errors if str(e.get("code")).lower() in RESUME_CODES), None)
        if refusal is None:
            if c.ready_t is None and c.errors:
                refusal = c.errors[0]
            else:
                continue
        code = str(refusal.get("code"))
        ev["answer"] = code
        out.append(
            Finding(
                "resume",
                "resume_rejected",
                WARN,
                f"session.resume of {target} was answered with {code}",
                dict(ev),
                "resume_refused",
                f"{code} on conn {c.conn}",
            )
        )
        nxt = order[i + 1] if i + 1 < len(order) else None
        if nxt is None:
            handled, what = False, "the app opened no new session afterwards"
        elif nxt.first_type == "session.resume":
            handled, what = (
                False,
                (
                    f"the app retried session.resume on conn {nxt.conn} "
                    "instead of starting a fresh session"
                ),
            )
        else:
            handled, what = True, ""
        if not handled:
            out.append(
                Finding(
                    "resume",
                    "resume_not_handled",
                    WARN,
                    f"after {code}, {what}",
                    {
                        **ev,
                        "next_conn": nxt.conn if nxt else None,
                        "next_first_message": nxt.first_type if nxt else None,
                    },
                    "resume_refused",
                    what,
                )
            )
    return out + _fresh_after_drop(order)


def _fresh_after_drop(order: list[Conn]) -> list[Finding]:
    """A session dropped (no close frame, no session.end) and the app's next connection
    within the grace window starts a fresh session instead of `session.resume`."""
    out: list[Finding] = []
    resumed = {c.resumed_id for c in order if c.resumed_id}
    reused = silent_reuses(order)
    for i, c in enumerate(order):
        d = c.close or {}
        if (
            c.session_id is None
            or c.session_id in resumed
            or c.session_end_t is not None
            or d.get("upstream_refused")
            or d.get("code") is not None
            or d.get("by") not in ("app", "service")
        ):
            continue
        dropped_t = float(d.get("t", c.opened_t))
        nxt = next((n for n in order[i + 1 :] if n.opened_t >= dropped_t), None)
        if nxt is None or nxt.first_type == "session.resume" or nxt.conn in reused:
            continue  # a resume, or a spent token refused before the app said anything
        delay = nxt.opened_t - dropped_t
        if delay > GRACE_S:
            continue
        out.append(
            Finding(
                "resume",
                "resume_not_attempted",
                WARN,
                f"after {c.session_id} dropped (no close frame), the app reconnected "
                f"{delay:.1f} s later on conn {nxt.conn} with a fresh session "
                f"({nxt.first_type or 'no message'}) instead of session.resume within the "
                f"{GRACE_S:.0f} s window: the conversation's context was lost",
                {
                    "session_id": c.session_id,
                    "conn": c.conn,
                    "next_conn": nxt.conn,
                    "next_first_message": nxt.first_type,
                    "delay_s": round(delay, 2),
                    "grace_s": GRACE_S,
                },
                "session_resume",
                f"fresh session {delay:.1f} s after the drop",
            )
        )
    return out
