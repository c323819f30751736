"""Streaming base64 inspection and lenient decoding (pure).

The service decodes `input.audio` with a strict standard-alphabet decoder; we decode
leniently (so the audio underneath can still be analysed) and count every deviation a
strict decoder would reject: a data-URL prefix, the URL-safe alphabet, whitespace, stray
characters, and padding in the middle (several separately encoded chunks glued together).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

STD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
URLSAFE_ONLY = b"-_"
WHITESPACE = b" \t\r\n\f\v"
LINE_BREAKS = b"\r\n"
ALL_OK = STD + URLSAFE_ONLY + b"=" + WHITESPACE
_TO_STD = bytes.maketrans(b"-_", b"+/")
DATA_URL_MAX = 200  # a `data:<mime>;base64,` prefix is short


@dataclass
class Base64Issues:
    data_url: str | None = None  # the prefix, e.g. "data:audio/wav;base64,"
    urlsafe_chars: int = 0
    line_breaks: int = 0
    spaces: int = 0
    invalid_chars: int = 0
    first_invalid_offset: int | None = None
    first_invalid_char: str | None = None
    inner_padding: int = 0  # '=' groups followed by more data
    missing_padding: bool = False
    bad_length: bool = False  # a final group of 1 character: no decoder accepts it
    text_chars: int = 0  # base64 characters seen
    examples: list[str] = field(default_factory=list)

    @property
    def strict_ok(self) -> bool:
        """Whether a strict standard decoder (the service's) would accept the text."""
        return not (
            self.data_url
            or self.urlsafe_chars
            or self.spaces
            or self.line_breaks
            or self.invalid_chars
            or self.inner_padding
            or self.missing_padding
            or self.bad_length
        )


class Base64Decoder:
    """Feed text chunks, get decoded bytes; `finish()` flushes and settles padding issues."""

    def __init__(self) -> None:
        self.issues = Base64Issues()
        self._pending = b""  # clean standard-alphabet chars not yet decoded (< 4)
        self._offset = 0
        self._started = False
        self._head = b""
        self._after_pad = False

    def feed(self, chunk: bytes) -> bytes:
        if not self._started:
            self._head += chunk
            if (
                len(self._head) < DATA_URL_MAX
                and b"," not in self._head
                and self._head[:5].lower() == b"data:"[: len(self._head)]
            ):
                return b""  # wait for the whole prefix
            self._started = True
            chunk, self._head = self._head, b""
            stripped = chunk.lstrip()
            if stripped[:5].lower() == b"data:":
                comma = stripped.find(b",", 0, DATA_URL_MAX)
                if comma > 0:
                    self.issues.data_url = stripped[: comma + 1].decode("latin-1")
                    self._offset += len(chunk) - len(stripped) + comma + 1
                    chunk = stripped[comma + 1 :]
        return self._decode(chunk)

    def _decode(self, chunk: bytes) -> bytes:
        iss = self.issues
        n_line = chunk.count(b"\n") + chunk.count(b"\r")
        iss.line_breaks += n_line
        body = chunk.translate(None, WHITESPACE)
        iss.spaces += len(chunk) - len(body) - n_line
        bad = body.translate(None, STD + URLSAFE_ONLY + b"=")
        if bad:
            if iss.first_invalid_offset is None:
                i = next(i for i, c in enumerate(chunk) if c not in ALL_OK)
                iss.first_invalid_offset = self._offset + i
                iss.first_invalid_char = repr(chr(chunk[i]))
            iss.invalid_chars += len(bad)
            body = body.translate(None, bad)
        self._offset += len(chunk)
        urlsafe = len(body) - len(body.translate(None, URLSAFE_ONLY))
        if urlsafe:
            iss.urlsafe_chars += urlsafe
            body = body.translate(_TO_STD)
        out = bytearray()
        if b"=" in body:
            parts = body.split(b"=")
            for i, part in enumerate(parts):
                if part and self._after_pad:
                    iss.inner_padding += 1
                    self._flush_group(out)
                self._after_pad = False
                self._push(part, out)
                if i < len(parts) - 1:
                    self._after_pad = True
                    self._flush_group(out)
        else:
            if body and self._after_pad:
                iss.inner_padding += 1
                self._after_pad = False
                self._flush_group(out)
            self._push(body, out)
        iss.text_chars += len(body) - body.count(b"=")
        return bytes(out)

    def _push(self, part: bytes, out: bytearray) -> None:
        data = self._pending + part
        whole = len(data) - len(data) % 4
        if whole:
            out += base64.b64decode(data[:whole])
        self._pending = data[whole:]

    def _flush_group(self, out: bytearray) -> None:
        """Decode a partial final group (2 or 3 chars) as if it were padded."""
        p = self._pending
        self._pending = b""
        if len(p) == 1:
            self.issues.bad_length = True
        elif p:
            try:
                out += base64.b64decode(p + b"=" * (4 - len(p)))
            except binascii.Error:  # pragma: no cover - 2 or 3 valid chars always decode
                self.issues.bad_length = True

    def finish(self) -> bytes:
        if not self._started:
            return self.feed(b"") if self._head else b""
        out = bytearray()
        if self._pending and not self._after_pad and len(self._pending) in (2, 3):
            self.issues.missing_padding = True
        self._flush_group(out)
        return bytes(out)


def decode_all(text: bytes) -> tuple[bytes, Base64Issues]:
    d = Base64Decoder()
    out = d.feed(text)
    if not d._started:
        d._started = True
        head, d._head = d._head, b""
        out = d._decode(head)
    return out + d.finish(), d.issues


def base64_share(text: bytes) -> float:
    """Share of the bytes that may appear in base64 text (alphabet, padding, whitespace)."""
    if not text:
        return 0.0
    return 1.0 - len(text.translate(None, ALL_OK)) / len(text)
