"""Which peers stopped answering during this run, so that no check waits on them again.

A black-holed endpoint (TCP accepted, nothing else) costs `--timeout` per wait; without a
memory of it every later handshake, token request and session would each wait again.
Pure: URLs and facts in, notes out; the shells record a stall when a wait on a peer runs
out and ask before starting one.
"""

from __future__ import annotations

import threading
import urllib.parse
from dataclasses import dataclass

_DEFAULT_PORTS = {"wss": 443, "https": 443, "ws": 80, "http": 80}


def peer_of(url: str) -> str:
    """`host:port` of a URL, the default port of its scheme filled in."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
    except ValueError:
        return url
    host = parts.hostname or url
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Stall:
    """One wait on a peer that ran out."""

    peer: str
    stage: str  # e.g. "TLS handshake", "session.ready", "GET /v1/token"
    check: str
    timeout_s: float

    def text(self) -> str:
        return (
            f"{self.peer} gave no answer to the {self.stage} within {self.timeout_s:g} s "
            f"(in the {self.check} check)"
        )

    def as_evidence(self) -> dict[str, object]:
        return {
            "peer": self.peer,
            "stage": self.stage,
            "check": self.check,
            "timeout_s": self.timeout_s,
        }


class StallBook:
    """The run's stalled peers; the first stall of a peer is the one remembered."""

    def __init__(self) -> None:
        self._by_peer: dict[str, Stall] = {}
        self._lock = threading.Lock()

    def record(self, url: str, stage: str, check: str, timeout_s: float) -> Stall:
        stall = Stall(peer_of(url), stage, check, timeout_s)
        with self._lock:
            return self._by_peer.setdefault(stall.peer, stall)

    def stalled(self, url: str) -> Stall | None:
        with self._lock:
            return self._by_peer.get(peer_of(url))

    def all(self) -> list[Stall]:
        with self._lock:
            return list(self._by_peer.values())
