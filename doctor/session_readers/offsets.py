"""Go `offset` durations in app logs (session-formats §7.1): parsed, and turned into receive
times where an entry has no `at`.

`offset` counts from the app's own start, so it is a clock only once anchored: `at − offset`
is constant over a file (within 1 ms), so one entry carrying both anchors the rest, those
before it included (held until it comes). Without any `at`, a service event's own
`timestamp` anchors it roughly (tens of ms of network and
skew); without either, the times stay relative to the app's start, which every duration the
analysis measures still allows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from doctor.session.events import server_time
from doctor.session_readers.applog import OFFSET_KEY, TIME_KEYS, direction_of, recv_time, split
from doctor.session_readers.jsonstream import Note

_NS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # µ MICRO SIGN, what Go prints
    "\u03bcs": 1_000,  # μ GREEK SMALL LETTER MU, also accepted by Go
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]+)")
_MAX_NS = (1 << 63) - 1
HOLD = 2000
"""Entries held while no anchor is known yet; then they are placed on the relative clock."""


def parse_go_duration(text: object) -> float | None:
    """Seconds of a Go duration string (`time.ParseDuration`'s grammar: `[-+]?(\\d*(\\.\\d*)?unit)+`
    with units ns, us/µs/μs, ms, s, m, h, or a bare "0"), or None when it is not one."""
    if not isinstance(text, str) or len(text) > 100:
        return None
    s = text
    sign = 1
    if s[:1] in ("-", "+"):
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    if s == "0":
        return 0.0
    if not s:
        return None
    ns = 0
    pos = 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            return None
        whole, frac, unit = m.groups()
        if not whole and not frac:
            return None  # ".s", "s": no digits
        scale = _NS.get(unit)
        if scale is None:
            return None
        ns += int(whole or "0") * scale
        if frac:  # Go truncates each component below a nanosecond
            ns += int(frac[:30]) * scale // 10 ** len(frac[:30])
        if ns > _MAX_NS:
            return None
        pos = m.end()
    if ns > _MAX_NS:
        return None
    return sign * ns / 1e9


def _has_time(obj: dict[str, Any]) -> bool:
    return recv_time(obj) is not None


def _server_t(obj: dict[str, Any]) -> float | None:
    msg, wrapper = split(obj)
    if msg is None or direction_of(wrapper, str(msg.get("type"))) != "service":
        return None
    return server_time(msg)


class OffsetClock:
    """Receive times from `offset` for the entries of one log that lack `at` (streaming: it
    holds at most HOLD entries while it waits for an anchor).

    Only an `at` anchors while entries are held: the service's timestamps are another clock
    (tens of ms of network and skew), so they anchor only a file, or its first HOLD entries,
    that has no `at` at all; else one file would mix two clocks and run backwards."""

    def __init__(self, note: Note | None = None) -> None:
        self.anchor: float | None = None
        self.how: str | None = None  # "at", "server timestamp" or "relative"
        self.note = note
        self.held: list[tuple[int, Any, float | None]] = []  # no offset: passed as it is
        self.placed = 0

    def _set(self, anchor: float, how: str) -> None:
        self.anchor, self.how = anchor, how
        if how != "at" and self.note is not None:
            self.note(
                "entries have an `offset` but no receive time: "
                + (
                    "anchored on the service's timestamps (within tens of ms)"
                    if how == "server timestamp"
                    else "times are relative to the app's start"
                )
            )

    def _place(self, line: int, obj: dict[str, Any], off: float) -> tuple[int, Any]:
        assert self.anchor is not None
        self.placed += 1
        return line, {**obj, OFFSET_KEY: self.anchor + off}

    def _release(self) -> Iterator[tuple[int, Any]]:
        held, self.held = self.held, []
        for line, obj, off in held:
            yield (line, obj) if off is None else self._place(line, obj, off)

    def _hold(self, line: int, obj: Any, off: float | None) -> Iterator[tuple[int, Any]]:
        self.held.append((line, obj, off))
        if len(self.held) >= HOLD:
            yield from self.flush()

    def feed(self, line: int, obj: Any) -> Iterator[tuple[int, Any]]:
        """This entry (and any held before it), each with its receive time when derivable."""
        if not isinstance(obj, dict) or "offset" not in obj:
            off = None
        elif self.how == "at" and not self.held and any(obj.get(k) for k in TIME_KEYS):
            yield line, obj  # the common case (§7.1): `at` on every entry, anchor known
            return
        else:
            off = parse_go_duration(obj.get("offset"))
        if off is None:
            if self.held:  # an entry without offset waits too: the file's order is kept
                yield from self._hold(line, obj, None)
                return
            yield line, obj
            return
        assert isinstance(obj, dict)
        if _has_time(obj):
            if self.anchor is None or self.how != "at":
                t = recv_time(obj)
                assert t is not None
                self._set(t - off, "at")
            yield from self._release()
            yield line, obj
            return
        if self.anchor is None:  # wait for an `at`; the service's clock only at the end
            yield from self._hold(line, obj, off)
            return
        yield from self._release()
        yield self._place(line, obj, off)

    def flush(self) -> Iterator[tuple[int, Any]]:
        """Held entries: anchored on the first service timestamp among them when no `at`
        came, else on the relative clock."""
        if self.held and self.anchor is None:
            st = next(
                (
                    t - off
                    for _, obj, off in self.held
                    if off is not None and (t := _server_t(obj)) is not None
                ),
                None,
            )
            if st is not None:
                self._set(st, "server timestamp")
            else:
                self._set(0.0, "relative")
        yield from self._release()


def with_offsets(
    values: Iterator[tuple[int, Any]], note: Note | None = None
) -> Iterator[tuple[int, Any]]:
    """The log's entries, those with an `offset` and no receive time given one."""
    clock = OffsetClock(note)
    for line, obj in values:
        if not clock.held and (
            not isinstance(obj, dict)
            or "offset" not in obj
            or (clock.how == "at" and (obj.get("at") or any(obj.get(k) for k in TIME_KEYS)))
        ):
            yield line, obj  # nothing to derive (the common case): no generator per entry
            continue
        yield from clock.feed(line, obj)
    yield from clock.flush()
