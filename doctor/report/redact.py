"""Secrets registry: every value registered here is masked in everything we print or write."""

from __future__ import annotations

import functools
import logging
import re
import urllib.parse
from typing import Any

# credentials in a query string: any name `secret_name` calls secret (authorization,
# api_key, access_token...), plus `key` and a pre-signed link's signature and credential
# (S3's X-Amz-*, GCS's X-Goog-*, Azure's sig), which `-v` showed in httpx's request lines
_QUERY_NAME = re.compile(r"[?&]([^=&?#\s\"']+)=")
_QUERY_VALUE = re.compile(r"[^&\s\"']+")
_QUERY_SECRET_EXTRA = re.compile(
    r"key|sig|signature|[\w-]*-(?:signature|credential|security-token)", re.IGNORECASE
)
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)([^/@\s:]+)(?::[^/@\s]*)?@", re.IGNORECASE)


# A fix's own placeholder (`http://USER:PASSWORD@PROXY:PORT`) is an instruction, not a
# credential: only these exact spellings survive; anything else is masked.
_PLACEHOLDER_USERINFO = frozenset({"USER:PASSWORD@", "USER@"})


def _masked_userinfo(m: re.Match[str]) -> str:
    if m.group(0)[len(m.group(1)) :] in _PLACEHOLDER_USERINFO:
        return m.group(0)
    return m.group(1) + "****@"


_SECRET_NAMES = frozenset(
    {"authorization", "proxy_authorization", "cookie", "set_cookie", "password", "passwd"}
    | {"apikey", "token", "secret", "credentials"}
)
_SECRET_SUFFIXES = ("_token", "_secret", "_key", "_password", "apikey")
# the whole value one scheme word and one credential: "Basic membership please" is speech
_CREDENTIAL_VALUE = re.compile(r"(?i)^\s*(?:bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}\s*$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def secret_name(name: str) -> bool:
    """Whether a field or header called `name` holds a credential: api_key, X-API-Key,
    accessToken, resume_token, Authorization, client_secret... The one list every
    redaction uses."""
    n = _CAMEL.sub("_", name.strip()).lower().replace("-", "_")
    return n in _SECRET_NAMES or n.endswith(_SECRET_SUFFIXES)


def credential_value(value: str) -> bool:
    """`Bearer ...`, `Basic ...`, `Token ...`: a credential whatever its field is called."""
    return bool(_CREDENTIAL_VALUE.match(value))


@functools.lru_cache(maxsize=512)  # the same few names again and again, in every string
def query_secret(name: str) -> bool:
    """Whether a query parameter called `name` (percent-encoded or not) holds a credential."""
    name = urllib.parse.unquote_plus(name)
    return secret_name(name) or bool(_QUERY_SECRET_EXTRA.fullmatch(name.strip()))


def scrub_query(text: str) -> str:
    """Credentials in a URL's query string (`?api_key=`, `&authorization=`, a pre-signed
    link's signature): the value masked, the name kept so the reader sees what was sent."""
    out: list[str] = []
    done = 0  # text[:done] is in `out`; a name inside a value masked already is skipped
    for m in _QUERY_NAME.finditer(text):  # `?a=1?token=...`: both names are found
        if m.start() >= done and query_secret(m.group(1)):
            value = _QUERY_VALUE.match(text, m.end())
            if value is not None and not value.group().startswith("****"):  # masked already
                out += [text[done : m.end()], "****"]
                done = value.end()
    return "".join(out) + text[done:] if out else text


def header_pair(value: object) -> bool:
    """`["X-Api-Key", "..."]`: a header written as a two-item list with a secret name."""
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and isinstance(value[0], str)
        and secret_name(value[0])
    )


def mask(value: str) -> str:
    """`****abcd`: enough to tell two keys apart, never enough to use one."""
    value = value.strip()
    return "****" + value[-4:] if len(value) >= 12 else "****"


class Redactor:
    """Holds the run's secrets by kind (api_key, token, proxy_password...)."""

    def __init__(self) -> None:
        self._secrets: dict[str, str] = {}  # any form it may take -> the canonical value
        self._kinds: set[str] = set()

    def add(self, kind: str, value: str | None) -> None:
        if not value or len(value.strip()) < 4:
            return
        self._kinds.add(kind)
        canonical = value.strip().strip("'\"").strip()
        for form in {
            value,
            value.strip(),
            canonical,
            urllib.parse.quote(canonical, safe=""),
            urllib.parse.quote_plus(canonical),
        }:
            if len(form) >= 4:
                self._secrets[form] = canonical

    @property
    def kinds(self) -> list[str]:
        return sorted(self._kinds)

    def scrub(self, text: str) -> str:
        # Longest first, so a secret that contains another is masked whole.
        for value in sorted(self._secrets, key=len, reverse=True):
            if value in text:
                text = text.replace(value, mask(self._secrets[value]))
        text = scrub_query(text)
        return _URL_USERINFO.sub(_masked_userinfo, text)

    def scrub_obj(self, obj: Any) -> Any:
        """A deep copy of JSON-like data with every string scrubbed (keys included)."""
        if isinstance(obj, str):
            return self.scrub(obj)
        if isinstance(obj, dict):
            return {self.scrub(str(k)): self.scrub_obj(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.scrub_obj(v) for v in obj]
        return obj


class ScrubbingFilter(logging.Filter):
    """Applied to our log handler so that no log line carries a secret."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.scrub(record.getMessage())
        record.args = None
        return True
