"""`agent-doctor sandbox` never prints a resume token in clear, on stderr or in --events:
users paste sandbox logs into tickets, and a secret is one even in a test. Masked the way
the doctor masks every token (`****` and the last four characters)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sandbox_wire import recv_until, run, send
from websockets.asyncio.client import connect

from doctor.report.redact import mask
from doctor.sandbox.eventlog import masked_secrets
from doctor.sandbox.pytest_plugin import SandboxProcess

Factory = Callable[..., SandboxProcess]


def test_the_resume_token_is_masked_on_stderr_and_in_the_events_file(
    sandbox_process_factory: Factory,
) -> None:
    sp = sandbox_process_factory("--no-tls", "--reply-seconds", "0.1")

    async def go() -> dict[str, Any]:
        async with connect(
            sp.ws_url, additional_headers={"Authorization": sp.api_key}, proxy=None
        ) as ws:
            await send(ws, {"type": "session.update", "session": {}})
            ready = (await recv_until(ws, "session.ready"))[-1]
            await send(ws, {"type": "session.end"})
            await recv_until(ws, "session.ended")
            return ready

    ready = run(go())
    token = ready["resume_token"]
    assert isinstance(token, str) and len(token) >= 16  # the client still gets it whole
    assert sp.stop() == 0
    stderr = "\n".join(sp.stderr_lines)
    events = sp.events_path.read_text()
    assert token not in stderr and token not in events
    (logged,) = [e for e in sp.events() if e["type"] == "session.ready"]
    assert logged["resume_token"] == mask(token)
    assert f"resume_token={mask(token)}" in stderr


def test_secret_fields_are_masked_at_any_depth_and_once() -> None:
    detail = {
        "resume_token": "r" * 32,
        "config": {"tools": [{"headers": {"X-Api-Key": "k" * 20}}], "voice": "anna"},
        "token": "****abcd",  # masked already: kept, not masked again to "****"
        "session_id": "sess_" + "1" * 32,
    }
    out = masked_secrets(detail)
    assert out["resume_token"] == "****rrrr"
    assert out["config"]["tools"][0]["headers"]["X-Api-Key"] == "****kkkk"
    assert out["config"]["voice"] == "anna" and out["session_id"] == detail["session_id"]
    assert out["token"] == "****abcd"
    assert "r" * 32 not in json.dumps(out)


def test_a_request_path_masks_a_links_signature_as_well_as_a_token() -> None:
    from doctor.sandbox.eventlog import mask_query

    sig = "0123456789abcdef" * 4
    path = f"/a/sess_1/audio.ogg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={sig}"
    shown = mask_query(path)
    assert sig not in shown and "X-Amz-Signature=****cdef" in shown
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in shown
    assert mask_query("/v1/ws?token=" + "t" * 20) == "/v1/ws?token=****tttt"


def test_a_tools_lowercase_header_bearer_values_and_url_keys_are_masked() -> None:
    """A reviewer's session.update: `authorization` is exempt only as a one-word scheme
    ("bearer"), a `Bearer ...` value is a credential under any name, and a tool URL's
    `?api_key=` is masked (all three were logged in clear)."""
    tool = {
        "url": "https://api.example.com/hook?api_key=SECRETQUERYVALUE12345&v=2",
        "headers": {
            "authorization": "Bearer sk_live_LOWERCASEHEADER123456",
            "X-Auth": "Bearer sk_live_OTHERNAMEDHEADER98765",
        },
        "description": "Basic membership lookup",
    }
    out = masked_secrets({"authorization": "bearer", "config": {"tools": [tool]}})
    text = json.dumps(out)
    for secret in ("SECRETQUERYVALUE12345", "LOWERCASEHEADER", "OTHERNAMEDHEADER"):
        assert secret not in text, text
    assert out["authorization"] == "bearer"
    shown = out["config"]["tools"][0]
    assert shown["url"] == "https://api.example.com/hook?api_key=****&v=2"
    assert shown["headers"]["authorization"] == "****3456"
    assert shown["description"] == "Basic membership lookup"


def test_transcripts_that_look_like_a_scheme_and_a_word_are_kept() -> None:
    """`Bearer`/`Basic`/`Token` plus one long word is a credential only inside headers."""
    out = masked_secrets({"text": "Token accepted.", "delta": {"text": "Basic subscription"}})
    assert out == {"text": "Token accepted.", "delta": {"text": "Basic subscription"}}
