"""What an answer of the token endpoint (GET /v1/token) means: contract cause codes for
the `token` and `resume` checks (pure: status and body in, an `Outcome` out)."""

from __future__ import annotations

import re
from typing import Any

from doctor.net.auth_outcome import TOKEN_PARAMS, Failure, Outcome
from doctor.result import Status

# --- temporary tokens ---------------------------------------------------------------------


def bad_request_param(text: str | None) -> str | None:
    """Which query parameter a 400 body blames, if it names one."""
    if not text:
        return None
    for name in TOKEN_PARAMS:
        if name in text:
            return name
    match = re.search(r"\b([a-z]+(?:_[a-z]+)+)\b", text)
    return match.group(1) if match else None


def mint_outcome(
    status: int,
    token_present: bool,
    expires_in_seconds: int | None,
    asked_expires_s: int,
    error: str | None,
    body: Any,
    retry_after_s: float | None = None,
) -> Outcome | None:
    """The answer of GET /v1/token; None when it is a usable token of the right shape.
    `retry_after_s` is what a `Retry-After` header asked for (429)."""
    text = error or (body if isinstance(body, str) else None) or ""
    said = f": {text[:160]}" if text else ""
    if status == 200:
        wrong: list[str] = []
        if not token_present:
            wrong.append("no `token` string")
        if expires_in_seconds is None:
            wrong.append("no integer `expires_in_seconds`")
        elif expires_in_seconds != asked_expires_s:
            wrong.append(
                f"`expires_in_seconds` {expires_in_seconds}, not the {asked_expires_s} asked"
            )
        if not wrong:
            return None
        what = "; ".join(wrong)
        return Outcome(
            "token_response_invalid",
            Status.FAIL,
            f"the token endpoint answered 200 with {what}",
            "service_side",
            f"token response: {what}",
        )
    if status == 401:
        return Outcome(
            "unauthorized",
            Status.FAIL,
            f"the token endpoint refused the API key: HTTP 401{said}",
            "token_auth",
            "GET /v1/token answered 401: the key is wrong, revoked, or not sent",
        )
    if status == 403:
        return Outcome(
            "forbidden",
            Status.FAIL,
            f"the token endpoint refused the API key: HTTP 403{said}",
            "account_access",
            "GET /v1/token answered 403: the key was recognised but refused",
        )
    if status == 429:
        if retry_after_s is None:
            wait, detail = "", "the 429 has no Retry-After header"
        else:
            seconds = f"{round(retry_after_s, 1):g} s"
            wait = f", retry after {seconds}"
            detail = f"the service asks for {seconds} (Retry-After)"
        return Outcome(
            "rate_limited",
            Status.FAIL,
            f"the token endpoint is rate limiting this key: HTTP 429{wait}{said}",
            "rate_limit",
            detail,
        )
    if status == 400:
        param = bad_request_param(text)
        blamed = f"`{param}`" if param else "a query parameter"
        return Outcome(
            "bad_request",
            Status.FAIL,
            f"the token endpoint rejected {blamed}: HTTP 400{said}",
            "token_request",
            f"HTTP 400 blaming {blamed}; agent-doctor asked for expires_in_seconds=60 and "
            "max_session_duration_seconds=60",
        )
    if status in (404, 405):
        return Outcome(
            "bad_request",
            Status.FAIL,
            f"no token endpoint at this URL: HTTP {status}{said}",
            "token_request",
            f"GET /v1/token answered HTTP {status}: nothing serves tokens at this URL",
        )
    if status >= 500:
        return Outcome(
            "server_error",
            Status.FAIL,
            f"the token endpoint failed: HTTP {status}{said}",
            "service_side",
            f"GET /v1/token answered HTTP {status}",
        )
    return Outcome(
        "server_error",
        Status.FAIL,
        f"unexpected answer from the token endpoint: HTTP {status}{said}",
        "service_side",
        f"GET /v1/token answered HTTP {status}",
    )


def mint_unreachable(failure: Failure, token_url_host: str) -> Outcome:
    """No HTTP answer at all from the token endpoint (the `wss` check reached the socket)."""
    if failure.kind == "timeout":
        return Outcome(
            "timeout",
            Status.FAIL,
            f"no answer from the token endpoint within {failure.timeout_s or 0:g} s",
            "firewall",
            f"GET https://{token_url_host}/v1/token timed out",
            endpoint="token",
        )
    why = failure.reason or failure.kind
    if failure.http_status is not None:
        why = f"proxy answered HTTP {failure.http_status}"
    return Outcome(
        "token_url_unreachable",
        Status.FAIL,
        f"the token endpoint could not be reached ({why})",
        "firewall",
        f"GET /v1/token on {token_url_host}: {why}",
        endpoint="token",
    )
