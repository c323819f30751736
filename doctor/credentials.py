"""Offline sanity of a credential: the mistakes people make when pasting keys (pure).

AssemblyAI API keys are 32 hexadecimal characters. Temporary tokens have no documented
shape, so "looks like a token" only means "does not look like a key" plus JWT-like forms;
these findings are hints (warn), never proof.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_KEY = re.compile(r"^[0-9a-f]{32}$")
_JWT = re.compile(r"^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}$")


@dataclass(frozen=True)
class Finding:
    code: str  # quoted, whitespace, newline, bearer_prefix, empty, looks_like_token, ...
    severity: str  # "fail": the service will refuse it as sent; "warn": a likely mix-up
    message: str


def looks_like_key(value: str) -> bool:
    return bool(_KEY.match(value))


def inspect(value: str, kind: str) -> list[Finding]:
    """Problems with `value` used as `kind` ("api_key" or "token"), as the app would send it."""
    what = "API key" if kind == "api_key" else "token"
    found: list[Finding] = []
    if not value.strip():
        return [Finding("empty", "fail", f"the {what} is empty")]
    if "\n" in value or "\r" in value:
        found.append(
            Finding(
                "newline",
                "fail",
                f"the {what} contains a line break (copied "
                "with the newline of a file?): HTTP headers cannot carry it",
            )
        )
    elif value != value.strip():
        found.append(
            Finding(
                "whitespace", "warn", f"the {what} has spaces around it; some clients send them"
            )
        )
    core = value.strip()
    if len(core) >= 2 and core[0] == core[-1] and core[0] in "'\"":
        found.append(
            Finding(
                "quoted",
                "fail",
                f"the {what} is wrapped in quotes, which are "
                "sent as part of it (remove them from the variable)",
            )
        )
        core = core[1:-1]
    if core.lower().startswith("bearer "):
        found.append(
            Finding(
                "bearer_prefix",
                "fail",
                f"the {what} starts with `Bearer `: clients add that themselves, "
                "so the service receives `Bearer Bearer ...`",
            )
        )
        core = core[7:].strip()
    if not core.isascii() or any(ord(c) < 33 for c in core):
        found.append(
            Finding(
                "bad_characters", "fail", f"the {what} contains characters that never appear in one"
            )
        )
    if kind == "api_key" and core and not looks_like_key(core):
        hint = "a JWT-like temporary token" if _JWT.match(core) else "not 32 hex characters"
        found.append(
            Finding(
                "looks_like_token",
                "warn",
                f"this does not look like an API key ({hint}); a temporary token "
                "goes in `--token`, not in ASSEMBLYAI_API_KEY",
            )
        )
    if kind == "token" and looks_like_key(core):
        found.append(
            Finding(
                "looks_like_key",
                "warn",
                "this looks like an API key (32 hex characters), not a temporary "
                "token: pass it with `--api-key` (and never ship a key to a browser)",
            )
        )
    return found


def cleaned(value: str) -> str:
    """The credential with the paste mistakes above undone."""
    core = value.strip()
    if len(core) >= 2 and core[0] == core[-1] and core[0] in "'\"":
        core = core[1:-1].strip()
    if core.lower().startswith("bearer "):
        core = core[7:].strip()
    return core
