"""`session --recent` against list servers that never end their list: a small real HTTP
server (a thread, plain HTTP) that repeats its cursor, sends empty pages or pages forever.
The client must stop after a few requests with the ids it has."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from doctor.net import sessions_api
from doctor.net.sessions_api import SessionsApi

Page = Callable[[int], dict[str, Any]]  # request number -> JSON body


def sid(n: int) -> str:
    return f"sess_{n:032x}"


@contextlib.contextmanager
def list_server(page: Page) -> Iterator[tuple[str, list[str]]]:
    """A server answering GET /v1/sessions with `page(n)`; yields its token URL and the
    request paths it saw."""
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            body = json.dumps(page(len(paths) - 1)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/token", paths
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def recent(token_url: str, count: int, page: int = 2) -> list[str]:
    async def go() -> list[str]:
        async with SessionsApi(token_url, "k" * 32, proxy=False, timeout=5) as api:
            ids, _ = await api.recent(count, page=page)
            return ids

    return asyncio.run(go())


def test_a_repeated_cursor_ends_the_walk() -> None:
    """Each page has the same cursor (and, as such servers do, the same sessions)."""

    def page(n: int) -> dict[str, Any]:
        return {"sessions": [{"id": sid(1)}, {"id": sid(2)}], "has_more": True,
                "response_metadata": {"next_cursor": "c1"}}  # fmt: skip

    with list_server(page) as (url, paths):
        assert recent(url, 10) == [sid(1), sid(2)]
    assert len(paths) == 2  # the first page, then the same cursor once more


def test_a_repeated_cursor_with_new_ids_ends_the_walk() -> None:
    def page(n: int) -> dict[str, Any]:
        return {"sessions": [{"id": sid(n)}], "has_more": True, "next_cursor": "same"}

    with list_server(page) as (url, paths):
        assert recent(url, 10) == [sid(0), sid(1)]
    assert len(paths) == 2


def test_empty_pages_end_the_walk() -> None:
    def page(n: int) -> dict[str, Any]:
        sessions = [{"id": sid(1)}] if n == 0 else []
        return {"sessions": sessions, "has_more": True, "next_cursor": f"c{n}"}

    with list_server(page) as (url, paths):
        assert recent(url, 10) == [sid(1)]
    assert len(paths) == 2


def test_a_list_that_never_ends_stops_at_the_page_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fresh ids and fresh cursors on every page: only the cap stops it."""
    monkeypatch.setattr(sessions_api, "MAX_PAGES", 7)

    def page(n: int) -> dict[str, Any]:
        return {"sessions": [{"id": sid(n)}], "has_more": True, "next_cursor": f"c{n}"}

    with list_server(page) as (url, paths):
        assert recent(url, 1000, page=1) == [sid(n) for n in range(7)]
    assert len(paths) == 7


def test_a_well_behaved_list_is_walked_to_the_count() -> None:
    def page(n: int) -> dict[str, Any]:
        return {"sessions": [{"id": sid(2 * n)}, {"id": sid(2 * n + 1)}], "has_more": n < 4,
                "response_metadata": {"next_cursor": f"c{n}"}}  # fmt: skip

    with list_server(page) as (url, paths):
        assert recent(url, 5) == [sid(n) for n in range(5)]
    assert len(paths) == 3 and "cursor=c1" in paths[2]
