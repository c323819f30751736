"""`wss`: can this machine reach the Voice Agent API, and if not, which hop fails and why."""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from typing import Any

from doctor import guide
from doctor.context import REGIONS, Context
from doctor.registry import check
from doctor.result import Result, Status, passed, problem
from doctor.runner import run_blocking

_GUIDE_BY_CAUSE = {
    "proxy_unreachable": "proxy",
    "proxy_denied": "proxy",
    "proxy_auth_required": "proxy",
    "tls_intercepted": "tls_interception",
    "tls_untrusted": "tls_certificate",
    "tls_expired": "tls_certificate",
    "tls_hostname_mismatch": "tls_certificate",
    "tls_failed": "tls_certificate",
}
_STAGE_NAMES = {
    "proxy": "proxy",
    "dns": "DNS",
    "tcp": "TCP connect",
    "proxy_connect": "proxy CONNECT",
    "socks": "SOCKS handshake",
    "tls": "TLS handshake",
    "ws_upgrade": "WebSocket upgrade",
}


def _timeout(ctx: Context) -> float:
    # DNS, TCP, CONNECT, TLS, upgrade, plus the second TLS handshakes: each bounded.
    return 8 * ctx.timeout + 5


def _register_env_proxy_secrets(ctx: Context) -> None:
    for name, value in os.environ.items():
        if name.lower().endswith("_proxy") and value:
            parts = urllib.parse.urlsplit(value if "://" in value else f"http://{value}")
            ctx.add_secret("proxy_credentials", parts.password)


def _stage_timings(ev: dict[str, Any]) -> str:
    names = (
        ("dns_ms", "DNS"),
        ("tcp_connect_ms", "TCP"),
        ("proxy_connect_ms", "CONNECT"),
        ("socks_connect_ms", "SOCKS"),
        ("tls_handshake_ms", "TLS"),
        ("ws_upgrade_ms", "upgrade"),
    )
    return ", ".join(f"{label} {ev[key]:.0f} ms" for key, label in names if key in ev)


async def _probe(ctx: Context, url: str) -> Any:
    from doctor.net.probe import probe
    from doctor.net.proxy_choice import choose_proxy

    choice = choose_proxy(url, ctx.proxy, dict(os.environ))
    return await run_blocking(probe, url, choice, ctx.ca_bundle, ctx.timeout)


def _guide_for(cause: str, ev: dict[str, Any]) -> str:
    """The fix for a failure. An untrusted chain from an issuer that is neither a public CA
    nor vouched for by certifi is a private CA (the user's relay, a test server, or a TLS
    inspecting product): the way out is trusting that CA, not the clock or a CA store update.
    Interception is only said on evidence (a proxy, a hint in the issuer: probe.py)."""
    from doctor.net.tls_facts import looks_public

    if cause == "proxy_auth_required" and ev.get("proxy_user") is not None:
        return "proxy_credentials"  # sent and refused, not missing
    issuer = str(ev.get("tls_issuer") or "")
    if (
        cause == "tls_untrusted"
        and issuer
        and not looks_public(issuer)
        and ev.get("tls_certifi_verified") is not True
    ):
        return "tls_private_ca"
    return _GUIDE_BY_CAUSE.get(cause, "firewall")


@check("wss", "WebSocket reachability", timeout=_timeout)
async def wss(ctx: Context) -> Result:
    """DNS, TCP, proxy, TLS and WebSocket upgrade to the region's endpoint."""
    _register_env_proxy_secrets(ctx)
    other = ctx.other_region()
    other_url = REGIONS[other][0]
    probes = [_probe(ctx, ctx.ws_url)]
    if not ctx.urls_overridden:
        probes.append(_probe(ctx, other_url))
    target, *rest = await asyncio.gather(*probes)
    for found in (target, *rest):
        if found.failure is not None and found.failure.cause == "timeout":
            stage = _STAGE_NAMES.get(found.failure.stage, found.failure.stage)
            ctx.stalls.record(found.url, stage, "wss", ctx.timeout)
    evidence: dict[str, Any] = {
        "url": target.url,
        "host": target.host,
        "port": target.port,
        "region": ctx.region,
        **target.evidence,
    }
    if rest:
        o = rest[0]
        evidence["other_region"] = {
            "region": other,
            "url": o.url,
            "reachable": o.ok,
            "cause": o.failure.cause if o.failure else None,
            "detail": o.failure.detail if o.failure else o.meaning,
            "total_ms": o.evidence.get("total_ms"),
        }
        other_note = f"; {other.upper()} {'reachable' if o.ok else 'not reachable either'}"
    else:
        evidence["other_region"] = {
            "region": other,
            "url": other_url,
            "reachable": None,
            "detail": "not probed: the URL was overridden",
        }
        other_note = ""
    where = f"{target.host}:{target.port}"
    if target.ok:
        timings = _stage_timings(target.evidence)  # none through SOCKS (one step)
        return passed(
            f"reached {where}{f' ({timings})' if timings else ''}: {target.meaning}{other_note}",
            evidence,
        )
    failure = target.failure
    stage = _STAGE_NAMES.get(failure.stage, failure.stage)
    peer = evidence.get("tcp_peer") or (
        evidence.get("proxy")
        if failure.stage in ("tcp", "dns", "proxy", "socks") and evidence.get("proxy")
        else where
    )
    if failure.stage in ("tls", "ws_upgrade"):
        # Through a tunnel TLS and the upgrade are with the service, not the proxy.
        hop = evidence.get("tcp_peer") if evidence.get("tcp_target") == "proxy" else None
        peer = f"{where} (through the proxy at {hop})" if hop else where
    if failure.cause == "timeout":
        summary = f"no answer from {peer} within {ctx.timeout:g} s at the {stage} stage"
        evidence["stalled_stage"] = stage
    elif failure.stage == "dns":
        summary = f"DNS lookup failed for {peer}: {failure.detail}"
    else:
        summary = f"{stage} to {peer} failed: {failure.detail}"
    if other_note and rest[0].ok:
        summary += f" ({other.upper()} is reachable)"
    fix = guide.fix(
        _guide_for(failure.cause, evidence),
        host=target.host,
        port=target.port,
        scheme=urllib.parse.urlsplit(ctx.ws_url).scheme,
        other_host=urllib.parse.urlsplit(other_url).hostname,
        issuer=evidence.get("tls_issuer"),
        proxy=evidence.get("proxy"),
        proxy_user=evidence.get("proxy_user"),
        detail=f"{stage}: {failure.detail}",
    )
    return problem(Status.FAIL, failure.cause, summary[:400], evidence, fix)
