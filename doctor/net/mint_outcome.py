"""What an answer of the token endpoint (GET /v1/token) means: contract cause codes for
the `token` and `resume` checks (pure: status and body in, an `Outcome` out)."""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

from doctor.net.auth_outcome import TOKEN_PARAMS, Failure, Outcome
from doctor.result import Status

# --- temporary tokens ---------------------------------------------------------------------


def bad_request_param(text: str | None) -> str | None:
    """Which query parameter a 400 body (protocol.md's documented answer) blames."""
    if not text:
        return None
    for name in TOKEN_PARAMS:
        if name in text:
            return name
    match = re.search(r"\b([a-z]+(?:_[a-z]+)+)\b", text)
    return match.group(1) if match else None


def answer_seen(body: Any) -> str:
    """A body in a few words, so a summary says which answer it judged."""
    if isinstance(body, (dict, list)):
        return "JSON " + json.dumps(body)[:120]
    if isinstance(body, str) and body.strip():
        text = body.strip()
        if text[:1] == "<":
            title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
            return "an HTML page" + (f" titled {title.group(1).strip()[:60]!r}" if title else "")
        return f"the text {text[:80]!r}"
    return "an empty body"


def invalid_key_answer(body: Any) -> bool:
    """field-facts §1: the live endpoint answers a wrong key with 404 `Invalid API key`."""
    detail = body.get("detail") if isinstance(body, dict) else None
    return isinstance(detail, str) and detail.strip().rstrip(".").lower() == "invalid api key"


def validation_items(body: Any) -> list[dict[str, Any]]:
    """The entries of a FastAPI 422 body `{"detail": [{"loc": [...], "msg": ...}, ...]}`."""
    detail = body.get("detail") if isinstance(body, dict) else None
    return [i for i in detail if isinstance(i, dict)] if isinstance(detail, list) else []


def _loc(item: dict[str, Any]) -> list[str]:
    loc = item.get("loc")
    return [str(part).lower() for part in loc] if isinstance(loc, list) else []


GET = "GET /v1/token"  # the request as a detail names it; `request_for` gives the real path


def request_for(token_url: str) -> str:
    """ "GET <path>" of the token URL actually used (a wrong path is the point of a 404)."""
    try:
        path = urllib.parse.urlsplit(token_url).path
    except ValueError:
        return GET
    return f"GET {path or '/'}"


OUR_ASK = "agent-doctor asked for expires_in_seconds=60 and max_session_duration_seconds=60"


def _validation_outcome(body: Any, asked: str = OUR_ASK, get: str = GET) -> Outcome:
    """field-facts §1: 422 names what is missing or out of range, header or query."""
    items = validation_items(body)
    if any(_loc(i)[:2] == ["header", "authorization"] for i in items):
        return Outcome(
            "no_credentials",
            Status.FAIL,
            "the token endpoint says no API key arrived: HTTP 422, Authorization header "
            "missing (agent-doctor sent one: something on the way removed it, or it was empty)",
            "token_auth",
            f"{get} answered 422 with loc [header, authorization]: a proxy or relay "
            "between this machine and the service may strip the Authorization header",
        )
    blamed = [
        f"`{_loc(i)[-1]}` ({i.get('msg', 'invalid')})" for i in items if _loc(i)[:1] == ["query"]
    ]
    if blamed:
        what = "; ".join(blamed)
        return Outcome(
            "bad_request",
            Status.FAIL,
            f"the token endpoint rejected {what}: HTTP 422",
            "token_request",
            f"HTTP 422 on {what}; {asked}",
        )
    return Outcome(
        "bad_request",
        Status.FAIL,
        f"the token endpoint refused the request: HTTP 422 with {answer_seen(body)}",
        "token_request",
        "HTTP 422 naming no parameter",
    )


def mint_outcome(
    status: int,
    token_present: bool,
    expires_in_seconds: int | None,
    asked_expires_s: int,
    error: str | None,
    body: Any,
    retry_after_s: float | None = None,
    asked: str = OUR_ASK,
    get: str = GET,
) -> Outcome | None:
    """The answer of GET /v1/token; None when it is a usable token of the right shape.
    `retry_after_s` is what a `Retry-After` header asked for (429); `asked` says what the
    request asked for (watch's relay: the app's own query, not agent-doctor's)."""
    text = error or (body if isinstance(body, str) else None) or ""
    said = f": {text[:160]}" if text else ""
    if status == 422:
        return _validation_outcome(body, asked, get)
    if status == 404 and invalid_key_answer(body):
        return Outcome(
            "unauthorized",
            Status.FAIL,
            'the token endpoint refused the API key: HTTP 404 {"detail": "Invalid API key"} '
            "(how the live service answers a wrong key)",
            "token_auth",
            f"{get} answered 404 Invalid API key: the key is wrong or revoked (or, "
            "possibly, made for the other region: whether keys work across regions is not "
            "documented)",
        )
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
            f"{get} answered 401: the key is wrong, revoked, or not sent",
        )
    if status == 403:
        # Issue 13: a refused key is `unauthorized` whichever refusal the token endpoint
        # uses (401, 403, 404 Invalid API key); a 403 here cannot tell a wrong key from
        # one without Voice Agent access, so the fix covers both. (`forbidden` stays for
        # the WebSocket's FORBIDDEN: a credential it accepted and does not permit.)
        return Outcome(
            "unauthorized",
            Status.FAIL,
            f"the token endpoint refused the API key: HTTP 403{said} (a wrong key, or a key "
            "without Voice Agent API access)",
            "token_auth",
            f"{get} answered HTTP 403: the key is wrong, or it has no Voice Agent API access",
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
            f"HTTP 400 blaming {blamed}; {asked}",
        )
    if status in (404, 405):
        return Outcome(
            "bad_request",
            Status.FAIL,
            f"no token endpoint at this URL: HTTP {status} with {answer_seen(body)}",
            "token_request",
            f"{get} answered HTTP {status} with {answer_seen(body)}: nothing serves "
            "tokens at this URL",
        )
    if status >= 500:
        return Outcome(
            "server_error",
            Status.FAIL,
            f"the token endpoint failed: HTTP {status}{said}",
            "service_side",
            f"{get} answered HTTP {status}",
        )
    return Outcome(
        "server_error",
        Status.FAIL,
        f"unexpected answer from the token endpoint: HTTP {status}{said}",
        "service_side",
        f"{get} answered HTTP {status}",
    )


def mint_unreachable(failure: Failure, token_url: str) -> Outcome:
    """No HTTP answer at all from the token endpoint (the `wss` check reached the socket).
    The detail names the URL really used (scheme, port and path: a custom --token-url),
    and the fix is the token endpoint's, not the WebSocket's."""
    shown = _shown_token_url(token_url)
    if failure.not_tried is not None:
        return Outcome(
            "timeout",
            Status.FAIL,
            f"the token request was not sent: {failure.not_tried}",
            "token_unreachable",
            failure.not_tried,
            endpoint="token",
        )
    if failure.kind == "timeout":
        return Outcome(
            "timeout",
            Status.FAIL,
            f"no answer from the token endpoint within {failure.timeout_s or 0:g} s",
            "token_unreachable",
            f"GET {shown} timed out",
            endpoint="token",
        )
    why = failure.reason or failure.kind
    if failure.http_status is not None:
        why = f"proxy answered HTTP {failure.http_status}"
    return Outcome(
        "token_url_unreachable",
        Status.FAIL,
        f"the token endpoint could not be reached ({why})",
        "token_unreachable",
        f"GET {shown}: {why}",
        endpoint="token",
    )


def _shown_token_url(token_url: str) -> str:
    """The token URL without its query (nothing secret is in it, but nothing useful either)."""
    if "://" not in token_url:  # a bare host
        return f"https://{token_url}/v1/token"
    try:
        parts = urllib.parse.urlsplit(token_url)
        return urllib.parse.urlunsplit(parts._replace(query="", fragment=""))
    except ValueError:
        return token_url
