"""A client for the Sessions REST API and the artifact downloads (session-formats.md §2).

The REST API lives on the token URL's host (`https://<host>/v1/sessions`), so the same
options reach the service, a relay or the sandbox. The API key goes only to that host;
artifact URLs are pre-signed and are fetched with no credential at all. The pure parts
(`classify_answer`, `find_artifacts`, `kind_of_bytes`) decide; `SessionsApi` moves bytes.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from doctor.net.agent_api import (
    AgentApiError,
    ProxySetting,
    http_client,
    http_failure,
    scrub,
    within,
)

SESSION_ID = re.compile(r"sess_[0-9a-f]{32}")
MAX_ARTIFACT_BYTES = 2 << 30  # a 3-hour stereo recording is far below this


def download_deadline_s(timeout_s: float) -> float:
    """One artifact's whole download: an hour of 24 kHz PCM16 (173 MB) at 10 Mbit/s takes
    about 140 s, so the floor is 300 s; a longer --timeout raises it."""
    return max(300.0, 30 * timeout_s)


MAX_PAGES = 100  # of `--recent`'s listing: a server that never ends its list stops here
FILE_NAMES = {"recording": "audio.ogg", "timeline": "timeline.json", "metadata": "metadata.json"}


def rest_base(token_url: str) -> str:
    """`scheme://host[:port]` of the token URL: where the REST API answers."""
    parts = urllib.parse.urlsplit(token_url)
    return f"{parts.scheme}://{parts.netloc}"


def valid_session_id(text: str) -> bool:
    return SESSION_ID.fullmatch(text) is not None


# --- what an answer means (pure) -----------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One REST answer: HTTP status and the parsed body (or its first 500 characters)."""

    status: int
    body: Any
    elapsed_ms: float = 0.0


def _detail_text(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("detail", "message", "error"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return ""


def classify_answer(answer: Answer) -> str:
    """`ok`, `unauthorized` (refused key; field-facts §1: also a 404 "Invalid API key"),
    `no_credentials` (422 on the header), `not_found`, `rate_limited`, `server_error` or
    `unexpected`."""
    status, body = answer.status, answer.body
    if status == 200 and isinstance(body, dict):
        return "ok"
    if status in (401, 403):
        return "unauthorized"
    if status == 404 and "api key" in _detail_text(body).lower():
        return "unauthorized"
    if status == 422 and isinstance(body, dict) and isinstance(body.get("detail"), list):
        locs = [d.get("loc") for d in body["detail"] if isinstance(d, dict)]
        if ["header", "authorization"] in locs:
            return "no_credentials"
    if status == 404:
        return "not_found"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "unexpected"


def _urls(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if value.startswith(("http://", "https://")):
            yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _urls(v)
    elif isinstance(value, list):
        for v in value:
            yield from _urls(v)


def _words(value: Any, skip_urls: bool) -> str:
    """Every key and string in `value`, lower case (URLs left out when asked)."""
    if isinstance(value, str):
        is_url = value.startswith(("http://", "https://"))
        return "" if is_url and skip_urls else value.lower()
    if isinstance(value, dict):
        return " ".join(f"{k} {_words(v, skip_urls)}".lower() for k, v in value.items())
    if isinstance(value, list):
        return " ".join(_words(v, skip_urls) for v in value)
    return ""


def kind_of_words(text: str) -> str | None:
    for kind, words in (
        ("timeline", ("timeline",)),
        ("metadata", ("metadata",)),
        ("recording", ("audio", "recording", "ogg")),
    ):
        if any(w in text for w in words):
            return kind
    return None


def _kind(entry: Any, url: str) -> str | None:
    """By the entry's own words first, then by the URL's path (never its query)."""
    return kind_of_words(_words(entry, skip_urls=True)) or kind_of_words(
        urllib.parse.urlsplit(url).path.lower()
    )


@dataclass(frozen=True)
class ArtifactLink:
    url: str = field(repr=False)  # pre-signed: a secret of sorts, shown only as host + path
    kind: str | None  # recording, timeline, metadata, or None (decided by the bytes)

    @property
    def shown(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"


def find_artifacts(artifacts: Any) -> list[ArtifactLink]:
    """§2's reader rules: a list or an object of entries; URLs found anywhere in an entry;
    the kind from the words in keys and values, else left for the bytes to decide."""
    if isinstance(artifacts, dict):
        entries: list[Any] = [{k: v} for k, v in artifacts.items()]
    elif isinstance(artifacts, list):
        entries = list(artifacts)
    else:
        return []
    links: list[ArtifactLink] = []
    seen: set[str] = set()
    for entry in entries:
        for url in _urls(entry):
            if url not in seen:
                seen.add(url)
                links.append(ArtifactLink(url, _kind(entry, url)))
    return links


def kind_of_bytes(head: bytes) -> str | None:
    """`OggS` = recording; JSON with `turns` = timeline; with `channel_layout` = metadata."""
    if head.startswith(b"OggS"):
        return "recording"
    text = head.lstrip()
    if text[:1] != b"{":
        return None
    try:
        obj = json.loads(head)
    except (ValueError, UnicodeDecodeError):
        obj = None
    if isinstance(obj, dict):
        if "turns" in obj:
            return "timeline"
        if "channel_layout" in obj:
            return "metadata"
        return None
    if b'"turns"' in head:
        return "timeline"
    if b'"channel_layout"' in head:
        return "metadata"
    return None


def s3_code(body: bytes) -> str | None:
    """The `<Code>` of an S3 error body (AccessDenied, SignatureDoesNotMatch...)."""
    found = re.search(rb"<Code>([A-Za-z]+)</Code>", body[:2000])
    return found.group(1).decode() if found else None


def expired_download(status: int, body: bytes) -> bool:
    """A pre-signed URL past its lifetime (S3: 403 AccessDenied "Request has expired")."""
    return status in (400, 403) and (
        b"expired" in body[:2000].lower() or s3_code(body) == "ExpiredToken"
    )


# --- the shell -----------------------------------------------------------------------------


@dataclass
class Download:
    link: ArtifactLink
    status: int | None = None
    path: str | None = None
    kind: str | None = None
    size: int = 0
    error: str | None = None  # why it failed, credentials masked
    expired: bool = False


class SessionsApi:
    """`async with SessionsApi(token_url, api_key, ...) as api:`; every wait has a timeout."""

    def __init__(
        self,
        token_url: str,
        api_key: str,
        *,
        proxy: ProxySetting = None,
        ca_bundle: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base = rest_base(token_url)
        self._key = api_key
        self.proxy = proxy
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self._client: Any = None

    async def __aenter__(self) -> SessionsApi:
        self._client = http_client("sessions", self.proxy, self.ca_bundle, self.timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()

    def _failure(self, exc: Exception, what: str) -> AgentApiError:
        failure = http_failure("sessions", exc, what, self.timeout, self.proxy, self._key)
        if failure is None:
            raise exc
        return failure

    async def _get_json(self, path: str, params: dict[str, Any] | None = None) -> Answer:
        import time

        t0 = time.monotonic()
        try:
            response = await within(
                self.timeout,
                self._client.get(
                    self.base + path, params=params, headers={"Authorization": self._key}
                ),
            )
        except Exception as exc:
            raise self._failure(exc, "the Sessions API") from None
        try:
            body: Any = response.json()
        except ValueError:
            body = scrub(response.text[:500], self._key)
        return Answer(response.status_code, body, round((time.monotonic() - t0) * 1000, 1))

    async def get_session(self, session_id: str) -> Answer:
        return await self._get_json(f"/v1/sessions/{urllib.parse.quote(session_id)}")

    async def list_sessions(self, limit: int, cursor: str | None = None) -> Answer:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return await self._get_json("/v1/sessions", params)

    async def recent(self, count: int, page: int = 50) -> tuple[list[str], Answer]:
        """The ids of the `count` newest sessions, following the cursor (the field puts it
        under `response_metadata.next_cursor`, the docs at the top level).

        A server that repeats its cursor or sends pages with nothing new would be followed
        forever: the walk stops at a page without a new id, at a cursor seen before, and
        after MAX_PAGES pages, with the ids it has."""
        ids: list[str] = []
        cursors: set[str] = set()
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            answer = await self.list_sessions(min(page, 200, max(1, count - len(ids))), cursor)
            if classify_answer(answer) != "ok":
                return ids, answer
            body = answer.body
            before = len(ids)
            for item in body.get("sessions") or []:
                new = isinstance(item, dict) and isinstance(item.get("id"), str)
                if new and item["id"] not in ids:
                    ids.append(item["id"])
            meta = body.get("response_metadata")
            found = (meta.get("next_cursor") if isinstance(meta, dict) else None) or body.get(
                "next_cursor"
            )
            cursor = found if isinstance(found, str) and found else None
            ended = len(ids) >= count or not body.get("has_more")
            if ended or cursor is None or len(ids) == before or cursor in cursors:
                return ids[:count], answer
            cursors.add(cursor)
        return ids[:count], answer

    async def _stream(self, link: ArtifactLink, tmp: str, result: Download) -> bytes:
        """The body into `tmp`; its first 8 KiB (to tell the kind); `result.error` set
        for an HTTP error or an oversized body."""
        head = b""
        # A request of its own: no default header of the REST client can ride along.
        async with self._client.stream("GET", link.url, headers={}) as response:
            result.status = response.status_code
            if response.status_code != 200:
                body = (await response.aread())[:4000]
                result.expired = expired_download(response.status_code, body)
                code = s3_code(body)
                result.error = f"HTTP {response.status_code}" + (f" {code}" if code else "")
                return head
            with open(tmp, "wb") as fh:
                async for chunk in response.aiter_bytes():
                    if len(head) < 8192:
                        head += chunk[: 8192 - len(head)]
                    result.size += len(chunk)
                    if result.size > MAX_ARTIFACT_BYTES:
                        result.error = "larger than 2 GiB"
                        return head
                    fh.write(chunk)
        return head

    async def download(self, link: ArtifactLink, folder: str) -> Download:
        """Fetch a pre-signed URL into `folder` with no Authorization header, streaming,
        within `download_deadline_s` in all (a big recording legitimately takes longer than
        one REST answer; a server trickling bytes for ever does not)."""
        import httpx

        result = Download(link)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".download-{abs(hash(link.url))}.part")
        deadline = download_deadline_s(self.timeout)
        head = b""
        try:
            head = await within(deadline, self._stream(link, tmp, result))
        except httpx.ReadTimeout as exc:
            overall = str(exc).startswith("no complete answer")
            failure = http_failure("download", exc, link.shown, self.timeout, self.proxy, self._key)
            result.error = (
                f"no complete download of {link.shown} within {deadline:g} s"
                if overall
                else str(failure)
                if failure
                else f"{type(exc).__name__}: {exc}"
            )
        except (httpx.HTTPError, OSError) as exc:
            failure = http_failure("download", exc, link.shown, self.timeout, self.proxy, self._key)
            result.error = str(failure) if failure else f"{type(exc).__name__}: {exc}"
        finally:
            if result.error is not None and os.path.exists(tmp):
                os.unlink(tmp)
        if result.error is not None:
            return result
        result.kind = link.kind or kind_of_bytes(head)
        name = FILE_NAMES.get(result.kind or "", os.path.basename(link.shown) or "artifact")
        result.path = os.path.join(folder, name)
        os.replace(tmp, result.path)
        return result
