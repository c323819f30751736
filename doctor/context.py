"""Run settings shared by every check: target, credentials (as secrets), network, audio."""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doctor.net.stalls import StallBook
from doctor.report.redact import Redactor, mask
from doctor.result import Result

REGIONS: dict[str, tuple[str, str]] = {
    "us": ("wss://agents.assemblyai.com/v1/ws", "https://agents.assemblyai.com/v1/token"),
    "eu": ("wss://agents.eu.assemblyai.com/v1/ws", "https://agents.eu.assemblyai.com/v1/token"),
}
API_KEY_ENV = "ASSEMBLYAI_API_KEY"


@dataclass(frozen=True)
class Credential:
    """A secret with where it came from; `repr` never shows the value."""

    kind: str  # "api_key" or "token"
    value: str = field(repr=False)
    source: str  # e.g. "option --api-key", "environment ASSEMBLYAI_API_KEY"

    @property
    def masked(self) -> str:
        return mask(self.value)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "length": len(self.value), "masked": self.masked}


@dataclass
class SessionRecord:
    """What the vendor's guide asks users to log for every session a check opened."""

    check: str
    region: str
    session_id: str | None
    started_at: datetime
    duration_s: float | None = None
    close_code: int | None = None
    close_reason: str | None = None
    ended_cleanly: bool | None = None
    auth: str = "api_key"


def strip_userinfo(url: str | None) -> str | None:
    """A proxy URL as it may be shown: user and password removed."""
    if not url:
        return url
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
    except ValueError:  # a port out of range, a broken IPv6 literal: cut the userinfo
        return re.sub(r"(?<=://)[^/@\s]*@", "", url, count=1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@dataclass
class Context:
    region: str = "us"
    ws_url: str = REGIONS["us"][0]
    token_url: str = REGIONS["us"][1]
    urls_overridden: bool = False
    api_key: Credential | None = None
    token: Credential | None = None
    proxy: str | None = None
    ca_bundle: str | None = None
    timeout: float = 10.0
    verbose: bool = False
    audio_file: str | None = None
    input_device: str | None = None
    output_device: str | None = None
    resume_delay: float = 1.0
    redactor: Redactor = field(default_factory=Redactor)
    support: list[SessionRecord] = field(default_factory=list)
    results: dict[str, Result] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)
    stalls: StallBook = field(default_factory=StallBook)  # peers that stopped answering

    @classmethod
    def build(
        cls,
        *,
        region: str = "us",
        ws_url: str | None = None,
        token_url: str | None = None,
        api_key: Credential | None = None,
        token: Credential | None = None,
        proxy: str | None = None,
        **kwargs: Any,
    ) -> Context:
        """Resolve region URLs and register every secret before anything can print."""
        default_ws, default_token = REGIONS[region]
        ctx = cls(
            region=region,
            ws_url=ws_url or default_ws,
            token_url=token_url or default_token,
            urls_overridden=bool(ws_url or token_url),
            api_key=api_key,
            token=token,
            proxy=proxy,
            **kwargs,
        )
        if api_key:
            ctx.redactor.add("api_key", api_key.value)
        if token:
            ctx.redactor.add("token", token.value)
        if proxy:
            parts = urllib.parse.urlsplit(proxy)
            ctx.redactor.add("proxy_credentials", parts.password)
            if parts.username and parts.password:
                ctx.redactor.add("proxy_credentials", f"{parts.username}:{parts.password}")
        return ctx

    @property
    def auth(self) -> str:
        return "token" if self.token else "api_key" if self.api_key else "none"

    @property
    def proxy_display(self) -> str | None:
        """The proxy the WebSocket goes through: --proxy, else the one the environment
        picks for ws_url (HTTPS_PROXY, ALL_PROXY...; NO_PROXY honoured), credentials off."""
        if self.proxy:
            return strip_userinfo(self.proxy)
        from doctor.net.proxy_choice import choose_proxy

        return choose_proxy(self.ws_url, None, os.environ).display

    def other_region(self) -> str:
        return "eu" if self.region == "us" else "us"

    def add_secret(self, kind: str, value: str | None) -> None:
        """For secrets a check creates itself, e.g. a minted temporary token."""
        self.redactor.add(kind, value)

    def record_session(self, record: SessionRecord) -> None:
        self.support.append(record)
