"""The `wss` probe's verifying TLS context, loaded once per trust store and early.

OpenSSL 3 takes 0.06-0.3 s of CPU to parse a system CA bundle (150 certificates here; the
upper figure on a busy machine), and the probe needs the context before its first
handshake. `preload` starts that load in a thread when `all`/`check` begins, so it runs
while the checks are imported instead of between start-up and the first handshake
(issue 13: `all --timeout 3` against a silent endpoint ends in under 5 s, start-up
included; measured 0.36-0.51 s from the check's start to its TCP connect without it,
0.06-0.16 s with it, at load 6 on 2 cores).

A context is shared by the probes that want the same store: `wrap_socket` on one
`SSLContext` from several threads is safe, and the probe never changes a context. The key
includes `SSL_CERT_FILE`/`SSL_CERT_DIR`, which the default store reads when it loads.
"""

from __future__ import annotations

import os
import ssl
import threading
from concurrent.futures import Future

_KEEP = 8  # stores kept (a process that tries many CA files, e.g. the tests, stays small)
Key = tuple[str | None, str | None, str | None]

_lock = threading.Lock()
_loads: dict[Key, Future[ssl.SSLContext]] = {}


def _key(cafile: str | None) -> Key:
    return (cafile, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


def trusting(cafile: str | None) -> ssl.SSLContext:
    """The default store (SSL_CERT_FILE/SSL_CERT_DIR honoured) plus `cafile`'s CAs: the
    README's "extra CAs to trust", so a corporate CA for an inspecting proxy does not make
    a host the proxy leaves alone (a public certificate) untrusted."""
    ctx = ssl.create_default_context()
    if cafile:
        ctx.load_verify_locations(cafile=cafile)
    return ctx


def _load(cafile: str | None, done: Future[ssl.SSLContext]) -> None:
    try:
        done.set_result(trusting(cafile))
    except BaseException as exc:  # handed to whoever waits, who raises it
        done.set_exception(exc)


def preload(cafile: str | None) -> None:
    """Start loading the verifying context for `cafile` (None: the system store) in a
    daemon thread, unless it is loaded or loading already."""
    key = _key(cafile)
    with _lock:
        if key in _loads:
            return
        done: Future[ssl.SSLContext] = Future()
        _loads[key] = done
        while len(_loads) > _KEEP:
            del _loads[next(iter(_loads))]
    threading.Thread(target=_load, args=(cafile, done), daemon=True, name="doctor-trust").start()


def verifying_context(cafile: str | None) -> ssl.SSLContext:
    """The context `trusting(cafile)` gives, loaded once; an
    error (an unreadable CA file) is raised to each caller and not kept."""
    key = _key(cafile)
    preload(cafile)
    with _lock:
        done = _loads.get(key)
    if done is None:  # pushed out by other stores in the meantime: load it here
        return trusting(cafile)
    try:
        return done.result()
    except BaseException:
        with _lock:
            if _loads.get(key) is done:
                del _loads[key]
        raise
