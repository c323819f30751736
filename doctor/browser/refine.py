"""Why a browser's WebSocket closed before `open`: the CLI repeats the same handshake.

A page sees `error` then close 1006 for a refused upgrade, DNS, TCP, proxy and TLS
failures alike (the WHATWG standard forbids telling it more); Python sees the HTTP status
or the socket error, and the auth core names the cause (unauthorized, dns_failed...).
"""

from __future__ import annotations

from doctor import guide
from doctor.context import Context, SessionRecord
from doctor.result import Result, Status, passed, problem

# a connection that got no HTTP answer: the socket error's reason as the contract's cause
_CONNECT_CAUSES = {
    "dns": ("dns_failed", "firewall"),
    "refused": ("connection_refused", "firewall"),
    "reset": ("connection_reset", "firewall"),
    "no_route": ("no_route", "firewall"),
    "timeout": ("timeout", "firewall"),
    "proxy_unreachable": ("proxy_unreachable", "proxy"),
    "tls_untrusted": ("tls_untrusted", "tls_certificate"),
    "tls_hostname": ("tls_hostname_mismatch", "tls_certificate"),
    "tls_expired": ("tls_expired", "tls_certificate"),
    "tls": ("tls_failed", "tls_certificate"),
}


async def repeat_handshake(ctx: Context, token: str) -> Result:
    """Open the WebSocket with the page's token, start and end a session."""
    from datetime import datetime, timezone

    from doctor.net.agent_api import AgentApiError, AgentConnection, tls_url
    from doctor.net.auth_outcome import Failure, session_outcome
    from doctor.net.sessions import fix_values

    started = datetime.now(timezone.utc)
    conn: AgentConnection | None = None
    try:
        async with AgentConnection.open(
            ctx.ws_url,
            token=token,
            proxy=ctx.proxy,
            ca_bundle=ctx.ca_bundle,
            timeout=ctx.timeout,
        ) as conn:
            await conn.start_session()
            await conn.end()
    except AgentApiError as err:
        ev = {"ws_url": ctx.ws_url, **err.facts()}
        known = _CONNECT_CAUSES.get(err.reason or "") if err.kind == "connect" else None
        if known is not None:
            cause, guide_id = known
            summary = f"the connection failed ({err.reason}): {err}"
            fix = guide.fix(guide_id, **fix_values(ctx), detail=summary)
            return problem(Status.FAIL, cause, summary, ev, fix)
        outcome = session_outcome(Failure.of(err), "token")
        fix = guide.fix(outcome.guide, **fix_values(ctx), detail=outcome.summary)
        status = outcome.status if outcome.status in (Status.WARN, Status.FAIL) else Status.FAIL
        return problem(status, outcome.cause, outcome.summary, ev, fix)
    finally:
        if conn is not None:
            ctx.record_session(
                SessionRecord(
                    check="browser-wss (CLI handshake)",
                    region=ctx.region,
                    session_id=conn.session_id,
                    started_at=started,
                    duration_s=conn.now(),
                    close_code=conn.close_code,
                    close_reason=conn.close_reason,
                    ended_cleanly=conn.close_code == 1000,
                    auth="token",
                )
            )
    if ctx.ca_bundle and tls_url(ctx.ws_url):
        return passed(
            "the same handshake from Python opened a session trusting the CA given with "
            "--ca-bundle: the browser most likely does not trust that CA",
            {"ws_url": ctx.ws_url, "ca_bundle": ctx.ca_bundle},
        )
    return passed(
        "the same handshake from Python opened a session: the browser's own network path "
        "(its proxy settings, an extension, a filter) stopped it",
        {"ws_url": ctx.ws_url},
    )
