"""A sandbox on its own event loop in a daemon thread, for sync code and tests.

Tests and the CLI run their own `asyncio.run`; hosting the server in a thread lets both
talk to it over real sockets without sharing a loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from doctor.sandbox.config import SandboxConfig
from doctor.sandbox.server import Sandbox

Predicate = Callable[[dict[str, Any]], bool]


class ThreadedSandbox:
    """`with ThreadedSandbox(SandboxConfig(...)) as sb:`; same attributes as `Sandbox`."""

    def __init__(self, config: SandboxConfig | None = None, **overrides: Any) -> None:
        self.sandbox = Sandbox(config, **overrides)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sandbox", daemon=True)
        self._cond = threading.Condition()
        self.sandbox.log.listeners.append(self._notify)

    def _notify(self, _: dict[str, Any]) -> None:
        with self._cond:
            self._cond.notify_all()

    def start(self, timeout: float = 120.0) -> ThreadedSandbox:
        """Listening when it returns; a failure (port in use...) is re-raised after the
        loop thread, the temporary CA folder and the events file are released. The start
        imports scipy and libsndfile and makes a CA: at load 15 on 2 cores that took over
        30 s (2 of 10 runs of one test), hence a deadline that only bounds a failure."""
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.sandbox.start(), self._loop).result(timeout)
        except BaseException:
            self.stop(timeout)
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.sandbox.stop(), self._loop).result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> ThreadedSandbox:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- what tests read ----------------------------------------------------------------
    @property
    def config(self) -> SandboxConfig:
        return self.sandbox.config

    @property
    def ws_url(self) -> str:
        return self.sandbox.ws_url

    @property
    def token_url(self) -> str:
        return self.sandbox.token_url

    @property
    def ca_file(self) -> str | None:
        return self.sandbox.ca_file

    @property
    def ca(self) -> Any:
        return self.sandbox.ca

    @property
    def port(self) -> int:
        return self.sandbox.port

    @property
    def api_keys(self) -> list[str]:
        return self.sandbox.api_keys

    @property
    def api_key(self) -> str:
        return self.sandbox.api_keys[0]

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.sandbox.events

    def find(self, type_: str | None = None, **fields: Any) -> list[dict[str, Any]]:
        """Events of this type whose fields equal the given values."""
        return [
            e
            for e in list(self.events)
            if (type_ is None or e["type"] == type_)
            and all(e.get(k) == v for k, v in fields.items())
        ]

    def wait_for(
        self, predicate: Predicate | str, timeout: float = 60.0, **fields: Any
    ) -> dict[str, Any]:
        """The first event matching (a type name plus field values, or a predicate); waits
        for it on the event log's notifications, never by sleeping. The deadline only bounds
        a failing test: generous, for a loaded CI machine."""
        if isinstance(predicate, str):
            type_ = predicate

            def predicate(e: dict[str, Any]) -> bool:
                return e["type"] == type_ and all(e.get(k) == v for k, v in fields.items())

        with self._cond:
            found: list[dict[str, Any]] = []

            def match() -> bool:
                found[:] = [e for e in list(self.events) if predicate(e)]
                return bool(found)

            if not self._cond.wait_for(match, timeout):
                raise TimeoutError(f"no sandbox event matched within {timeout} s")
            return found[0]
