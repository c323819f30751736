"""Stream JSON values out of a file: the elements of one big array, or one value per line.

A 300 MB log never sits in memory whole: the array reader keeps a window of text and lets
the C decoder (`raw_decode`) take one element at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import IO, Any

CHUNK_CHARS = 1 << 20
MAX_VALUE_CHARS = 32 << 20
"""One element or line longer than this is skipped (a log line is never that big)."""
TAIL_CHARS = 64
"""A decode error this close to the end of the window may just be a value cut by the window."""
_WS = " \t\r\n"
_DECODER = json.JSONDecoder()

Note = Callable[[str], None]


_NUMBER_TAIL = frozenset("eE.+-0123456789")
"""What may follow the part of a number `raw_decode` took when the number was cut."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _resync(buf: str, start: int) -> int:
    """Where the next element of an indented array probably starts, or -1."""
    for marker in ("\n  {", "\n{", ",{"):
        i = buf.find(marker, start)
        if i >= 0:
            return i + len(marker) - 1
    return -1


def array_elements(
    fh: IO[str], note: Note, progress: Callable[[int], None] | None = None
) -> Iterator[tuple[int, Any]]:
    """(index, element) of the top-level JSON array in `fh`; problems go to `note`."""
    buf = ""
    pos = 0
    eof = False
    index = 0

    def more() -> bool:
        nonlocal buf, pos, eof
        if eof:
            return False
        chunk = fh.read(CHUNK_CHARS)
        if progress is not None:
            progress(len(chunk))
        if not chunk:
            eof = True
            return False
        buf = buf[pos:] + chunk
        pos = 0
        return True

    def skip(chars: str) -> None:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in chars:
                pos += 1
            if pos < len(buf) or not more():
                return

    skip(_WS)
    if pos >= len(buf) or buf[pos] != "[":
        note("not a JSON array")
        return
    pos += 1
    while True:
        skip(_WS + ",")
        if pos >= len(buf):
            note(f"the array is truncated after element {index} (no closing ])")
            return
        if buf[pos] == "]":
            return
        try:
            value, end = _DECODER.raw_decode(buf, pos)
            if len(buf) - end < TAIL_CHARS and more():  # a number may go on in the next chunk
                continue
            if end < len(buf) and buf[end] in _NUMBER_TAIL and _is_number(value):
                # "1.5e+" of a cut "1.5e+16" decodes as 1.5: a number cut, not a number
                raise json.JSONDecodeError("Number cut short", buf, end)
            if eof and not buf[end:].strip():  # the file ends inside this element
                note(f"the array is truncated inside element {index + 1}; read {index} elements")
                return
        except (RecursionError, json.JSONDecodeError) as exc:
            if isinstance(exc, RecursionError):
                what = "nested too deeply to read"
            else:
                at_end = exc.pos >= len(buf) - TAIL_CHARS or "Unterminated" in exc.msg
                if at_end and len(buf) - pos < MAX_VALUE_CHARS and more():
                    continue
                if at_end and eof:
                    note(
                        f"the array is truncated inside element {index + 1}; read {index} elements"
                    )
                    return
                big = len(buf) - pos >= MAX_VALUE_CHARS
                what = "too large" if big else f"not JSON ({exc.msg})"
            note(f"element {index + 1} is {what}; skipped")
            nxt = _resync(buf, pos + 1)
            while nxt < 0 and more():
                nxt = _resync(buf, max(pos + 1, len(buf) - CHUNK_CHARS - 8))
            if nxt < 0:
                return
            pos = nxt
            index += 1
            continue
        pos = end
        index += 1
        yield index, value
        if pos > CHUNK_CHARS:
            buf, pos = buf[pos:], 0


def _loads(text: bytes) -> Any:
    """`json.loads` of one line, minus its per-call encoding sniff for the common UTF-8 line
    (a BOM or UTF-16 still goes through `json.loads`)."""
    # stripped: no leading whitespace for `decode` to skip; "{\0" is UTF-16-LE without a BOM
    if text[:1] == b"{" and text[1:2] != b"\x00":
        s = text.decode("utf-8", "surrogatepass")
        value, end = _DECODER.raw_decode(s)
        if end != len(s):
            raise json.JSONDecodeError("Extra data", s, end)
        return value
    return json.loads(text)


def json_lines(
    fh: IO[bytes], note: Note, progress: Callable[[int], None] | None = None
) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each line that is JSON; others get one note each."""
    line_no = 0
    bad = 0
    while True:
        raw = fh.readline(MAX_VALUE_CHARS)
        if not raw:
            return
        if progress is not None:
            progress(len(raw))
        line_no += 1
        if len(raw) >= MAX_VALUE_CHARS and not raw.endswith(b"\n"):
            skipped = len(raw)
            while True:
                rest = fh.readline(MAX_VALUE_CHARS)
                if progress is not None:
                    progress(len(rest))
                skipped += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
            note(f"line {line_no}: {skipped} bytes long; skipped")
            continue
        text = raw.strip()
        if not text:
            continue
        try:
            value = _loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            bad += 1
            if bad <= 20:
                tail = " (truncated?)" if not raw.endswith(b"\n") else ""
                what = (
                    "nested too deeply to read" if isinstance(exc, RecursionError) else "not JSON"
                )
                note(f"line {line_no}: {what}{tail}; skipped")
            elif bad == 21:
                note("more lines are not JSON; not listing them")
            continue
        yield line_no, value
