"""A credential an app puts in its token request's query string (`?authorization=`,
`?api_key=`...) never reaches watch-token's summary, detail or evidence, the live lines or
the report: the relay forwards it unchanged and masks it everywhere it writes."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from clirun import assert_valid_report
from watchparts import run, start_watch, stop_on_signal

from doctor.report.redact import scrub_query
from doctor.sandbox.threaded import ThreadedSandbox
from doctor.watch.relay import token_answer_outcome

SECRET = "sk_query_secret_0123456789abcdef"


async def _ask_token(url: str, key: str, params: dict[str, Any]) -> int:
    import httpx

    async with httpx.AsyncClient(timeout=20) as client:
        answer = await client.get(url, params=params, headers={"Authorization": key})
    return answer.status_code


def test_every_secret_named_query_parameter_is_masked() -> None:
    for name in (
        "authorization",
        "Authorization",
        "api_key",
        "token",
        "key",
        "accessToken",
        "client_secret",
        "X-API-Key",
        "api%5Fkey",
        "X-Amz-Signature",
    ):
        text = f"https://h/v1/token?expires_in_seconds=60&{name}={SECRET}&x=1"
        assert SECRET not in scrub_query(text), name
        assert f"&{name}=****&x=1" in scrub_query(text), name
    kept = "?expires_in_seconds=60&max_session_duration_seconds=600&sample_rate=16000"
    assert scrub_query(kept) == kept
    assert SECRET not in scrub_query(f"?a=1?authorization={SECRET}")


def test_the_rejected_parameter_detail_masks_a_query_secret() -> None:
    body = {"detail": [{"loc": ["query", "expires_in_seconds"], "msg": "must be <= 600"}]}
    answer = SimpleNamespace(status_code=422, json=lambda: body, text="", headers={})
    out = token_answer_outcome(answer, f"expires_in_seconds=9999&authorization={SECRET}")
    assert out is not None and "expires_in_seconds=9999&authorization=****" in out.detail
    assert SECRET not in out.detail + out.summary


def test_a_query_secret_reaches_no_output_of_a_real_watch(sandbox: ThreadedSandbox) -> None:
    wp = start_watch(sandbox, "--json")
    params = {"expires_in_seconds": 9999, "authorization": SECRET, "api_key": SECRET[::-1]}
    status = run(_ask_token(wp.token_url, sandbox.api_key, params))
    assert status >= 400
    rc, out = stop_on_signal(wp)
    report = assert_valid_report(json.loads(out))
    token = next(c for c in report["checks"] if c["id"] == "watch-token")
    assert token["status"] == "fail" and rc == 1, token
    assert "authorization=****" in json.dumps(token), token
    for where, text in (("stdout", out), ("stderr", wp.stderr_text)):
        assert SECRET not in text and SECRET[::-1] not in text, where


def test_the_start_banner_masks_a_key_in_the_upstream_urls(sandbox: ThreadedSandbox) -> None:
    """The banner quotes the user's --ws-url/--token-url: a key in their query is masked there
    (it was printed in clear), while the example's `?token=${token}` stays as it is."""
    wp = start_watch(
        sandbox,
        "--json",
        "--token-url",
        f"{sandbox.token_url}?authorization={SECRET[::-1]}",
        ws_url=f"{sandbox.ws_url}?api_key={SECRET}",
    )
    stop_on_signal(wp)
    banner = wp.stderr_text
    assert SECRET not in banner and SECRET[::-1] not in banner, banner
    assert "api_key=****" in banner and "authorization=****" in banner, banner
    assert "?token=${token}" in banner
