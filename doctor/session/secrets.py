"""Secrets a session log carries (resume tokens, temporary tokens, keys) kept out of what
the analysis prints: a service error message or a close reason may quote one. Pure."""

from __future__ import annotations

import re
from typing import Any

from doctor.report.redact import Redactor

SECRET_KEYS = frozenset(
    {"resume_token", "token", "api_key", "apikey", "access_token", "authorization", "key"}
)
_JWT = re.compile(r"\beyJ[\w-]{6,}\.[\w-]{6,}\.[\w-]{6,}")
_LABELLED = re.compile(
    r"(?i)\b((?:bearer|token|api[_ -]?key|resume_token|authorization)\b[\"']?\s*[:=]?\s*[\"']?)"
    r"([A-Za-z0-9._~+/=-]{12,})"
)


def secrets_in(payload: dict[str, Any]) -> list[str]:
    """String values under secret-looking keys, one level down too (session.*)."""
    out = []
    for k, v in payload.items():
        if isinstance(v, str) and k.lower() in SECRET_KEYS and v != "<redacted>" and len(v) >= 8:
            out.append(v)
        elif isinstance(v, dict):
            out += secrets_in(v) if k in ("session", "headers", "auth") else []
    return out


def scrub(text: str | None, secrets: set[str]) -> str | None:
    """`text` with every known secret masked, and tokens it labels or JWTs it holds."""
    if not text:
        return text
    red = Redactor()
    for s in secrets:
        red.add("token", s)
    text = red.scrub(text)
    text = _JWT.sub("****", text)
    return _LABELLED.sub(lambda m: m.group(1) + "****", text)
