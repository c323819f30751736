"""Secrets a session log carries (resume tokens, temporary tokens, keys) kept out of what
the analysis prints: a service error message or a close reason may quote one. Pure."""

from __future__ import annotations

import re
from typing import Any

from doctor.report.redact import Redactor, credential_value, header_pair, secret_name

_JWT = re.compile(r"\beyJ[\w-]{6,}\.[\w-]{6,}\.[\w-]{6,}")
_LABELLED = re.compile(
    r"(?i)\b((?:bearer|token|api[_ -]?key|resume_token|authorization)\b[\"']?\s*[:=]?\s*[\"']?)"
    r"([A-Za-z0-9._~+/=-]{12,})"
)


def secrets_in(payload: Any, key: str = "") -> list[str]:
    """String values under secret-looking keys (`secret_name`), or that read as a bearer
    credential, at any depth: a tool's headers sit in a list inside session.update."""
    if isinstance(payload, dict):
        name = payload.get("name", payload.get("key"))  # {"name": "Authorization", "value"}
        named = str(name) if isinstance(name, str) and secret_name(name) else None
        return [
            s
            for k, v in payload.items()
            for s in secrets_in(v, named if k == "value" and named else str(k))
        ]
    if header_pair(payload):  # ["X-Api-Key", "..."]
        return secrets_in(payload[1], payload[0])
    if isinstance(payload, list):
        return [s for v in payload for s in secrets_in(v, key)]
    if not isinstance(payload, str) or payload == "<redacted>" or len(payload) < 8:
        return []
    return [payload] if secret_name(key) or credential_value(payload) else []


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
