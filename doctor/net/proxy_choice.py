"""Which proxy the websockets client would use for a URL, and why (pure).

Mirrors `websockets.proxy.get_proxy` (17.x): an explicit `proxy=` wins; otherwise, for
wss:// it takes `wss_proxy`, then `socks_proxy`, then `https_proxy` from the environment,
unless `no_proxy` matches. `all_proxy` is *not* used by websockets, a classic surprise.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

from doctor.context import strip_userinfo


@dataclass(frozen=True)
class ProxyChoice:
    url: str | None  # with credentials: for connecting only, never for display
    source: str  # "--proxy", "environment HTTPS_PROXY", "none"
    bypassed_by: str | None = None  # the no_proxy value that matched
    ignored: dict[str, str] = field(default_factory=dict)  # variables set but unused

    @property
    def display(self) -> str | None:
        return strip_userinfo(self.url)

    def describe(self) -> dict[str, object]:
        return {
            "proxy": self.display,
            "proxy_source": self.source,
            "no_proxy_match": self.bypassed_by,
            "proxy_vars_ignored": {k: strip_userinfo(v) for k, v in self.ignored.items()},
        }


def _environment_proxies(environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """scheme -> url, and scheme -> variable name; lowercase names win, as in urllib."""
    proxies: dict[str, str] = {}
    names: dict[str, str] = {}
    for name in sorted(environ, key=lambda n: n.islower()):  # uppercase first, lower overrides
        value = environ[name]
        if value and name.lower().endswith("_proxy"):
            if name == "HTTP_PROXY" and "REQUEST_METHOD" in environ:  # CGI (httpoxy) rule
                continue
            scheme = name.lower()[: -len("_proxy")]
            proxies[scheme] = value
            names[scheme] = name
    return proxies, names


def choose_proxy(ws_url: str, explicit: str | None, environ: Mapping[str, str]) -> ProxyChoice:
    if explicit:
        return ProxyChoice(explicit, "--proxy")
    parts = urllib.parse.urlsplit(ws_url)
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    proxies, names = _environment_proxies(environ)
    schemes = ["wss", "socks", "https"] if secure else ["ws", "socks", "https", "http"]
    ignored = {names[s]: proxies[s] for s in proxies if s not in schemes and s != "no"}
    host = parts.hostname or ""
    # proxy_bypass_environment is public in urllib but missing from typeshed.
    bypass = getattr(urllib.request, "proxy_bypass_environment")  # noqa: B009
    if proxies.get("no") and bypass(f"{host}:{port}", proxies):
        return ProxyChoice(
            None, "none", bypassed_by=f"{names['no']}={proxies['no']}", ignored=ignored
        )
    for scheme in schemes:
        if scheme in proxies:
            url = proxies[scheme]
            if scheme == "socks" and url.startswith("http://"):
                url = "socks5h://" + url[len("http://") :]
            rest = {
                k: v
                for k, v in (
                    (names[s], proxies[s]) for s in schemes if s in proxies and s != scheme
                )
            }
            return ProxyChoice(url, f"environment {names[scheme]}", ignored={**ignored, **rest})
    return ProxyChoice(None, "none", ignored=ignored)
