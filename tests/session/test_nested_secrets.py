"""Credentials nested anywhere in a message (a tool's HTTP headers sit in a list inside
session.update) never reach the report: the reviewer's log leaked one through `caused_by`."""

from __future__ import annotations

import json

from synth import Script

from doctor.capture.format import REDACTED, redact
from doctor.session import Source, analyze_events
from doctor.session.secrets import secrets_in

KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
TOOLS = [
    {
        "name": "crm",
        "http": {
            "url": "https://crm.example/api",
            "headers": {"Authorization": KEY, "X-API-Key": KEY, "X-Custom": f"Bearer {KEY}"},
        },
        "parameters": {"type": "object", "properties": {"max_tokens": {"type": "integer"}}},
    }
]


def test_redact_reaches_into_lists_and_leaves_ordinary_fields() -> None:
    msg = {"type": "session.update", "session": {"tools": TOOLS, "max_tokens": 300}}
    out = redact(msg)
    assert KEY not in json.dumps(out)
    headers = out["session"]["tools"][0]["http"]["headers"]
    assert headers == {"Authorization": REDACTED, "X-API-Key": REDACTED, "X-Custom": REDACTED}
    assert out["session"]["max_tokens"] == 300
    assert out["session"]["tools"][0]["http"]["url"] == "https://crm.example/api"
    assert out["session"]["tools"][0]["parameters"] == TOOLS[0]["parameters"]


def test_a_header_as_a_name_value_pair_is_redacted_too() -> None:
    pair = {"headers": [{"name": "Authorization", "value": KEY}, {"name": "Accept", "value": "x"}]}
    assert redact(pair) == {
        "headers": [{"name": "Authorization", "value": REDACTED}, {"name": "Accept", "value": "x"}]
    }
    assert secrets_in(pair) == [KEY]


def test_secrets_in_finds_them_at_any_depth() -> None:
    found = secrets_in({"session": {"tools": TOOLS}})
    assert KEY in found and f"Bearer {KEY}" in found


def test_a_tool_key_in_the_offending_session_update_is_not_in_the_report() -> None:
    s = Script().open()
    tool = {"name": "crm", "http": {"headers": {"Authorization": KEY}}}  # short: shown whole
    s.app("session.update", s.t, session={"tools": [tool]})
    s.svc("session.error", s.t + 0.1, code="invalid_value", message="bad tool", param="tools")
    s.end()
    found = analyze_events(s.sorted(), Source(shape="synthetic"))
    text = json.dumps([[r.to_dict() for r in f.results] for f in found], default=str)
    assert "caused_by" in text and "crm" in text  # the message is there, its key is not
    assert KEY not in text


def test_pairs_camel_case_and_query_strings_are_redacted_speech_is_not() -> None:
    """A reviewer's second round: `[["X-Api-Key", k]]`, `accessToken`, `?apikey=` leaked;
    and a transcript starting "Basic membership..." was taken for a credential."""
    msg = {
        "type": "session.update",
        "session": {
            "tools": [
                {
                    "headers": [["X-Api-Key", KEY], ["Accept", "application/json"]],
                    "accessToken": KEY,
                    "clientSecret": KEY,
                    "url": f"https://crm.example/api?apikey={KEY}&page=2",
                    "maxTokens": 300,
                }
            ]
        },
    }
    out = redact(msg)
    assert KEY not in json.dumps(out)
    tool = out["session"]["tools"][0]
    assert tool["headers"] == [["X-Api-Key", REDACTED], ["Accept", "application/json"]]
    assert tool["url"] == "https://crm.example/api?apikey=****&page=2"
    assert tool["maxTokens"] == 300
    assert sorted(secrets_in(msg)) == [KEY, KEY, KEY]
    for said in ("Basic membership please, not premium", "Token transfers usually settle"):
        speech = {"type": "transcript.user", "text": said}
        assert redact(speech) == speech and secrets_in(speech) == []
