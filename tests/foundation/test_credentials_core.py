"""Offline credential sanity (pure)."""

from __future__ import annotations

import pytest

from doctor.credentials import cleaned, inspect

KEY = "0123456789abcdef0123456789abcdef"


def codes(value: str, kind: str = "api_key") -> list[str]:
    return [f.code for f in inspect(value, kind)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (KEY, []),
        (f"'{KEY}'", ["quoted"]),
        (f'"{KEY}"', ["quoted"]),
        (f" {KEY} ", ["whitespace"]),
        (f"{KEY}\n", ["newline"]),
        (f"Bearer {KEY}", ["bearer_prefix"]),
        (f'"Bearer {KEY}"', ["quoted", "bearer_prefix"]),
        ("", ["empty"]),
        ("   ", ["empty"]),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlc2ln", ["looks_like_token"]),
        ("sk-short", ["looks_like_token"]),
        (f"{KEY[:-1]}é", ["bad_characters", "looks_like_token"]),
    ],
)
def test_api_key_findings(value: str, expected: list[str]) -> None:
    assert codes(value) == expected


def test_token_that_looks_like_a_key() -> None:
    assert codes(KEY, "token") == ["looks_like_key"]
    assert codes("tok_abcdefghijklmnopqrstuvwxyz0123456789", "token") == []


def test_severities() -> None:
    sev = {f.code: f.severity for f in inspect(f"'Bearer {KEY}'", "api_key")}
    assert sev == {"quoted": "fail", "bearer_prefix": "fail"}
    assert inspect(" x" + KEY[1:], "api_key")[0].severity == "warn"


def test_cleaned_undoes_paste_mistakes() -> None:
    for raw in (KEY, f"'{KEY}'", f" Bearer {KEY}\n", f'"Bearer {KEY}"'):
        assert cleaned(raw) == KEY
