"""Strict base64 decoding of audio payloads, with pybase64 (SIMD) when it is installed.

An hour of an app's `input.audio` is ~230 MB of base64: the standard library's decoder
spends seconds on it on a slow core, pybase64 a tenth of that. pybase64 is stricter than
the standard library in one way (it refuses extra `=` after a complete quad, "QUJD=", which
the standard decoder reads), so its refusals are confirmed by the standard decoder: the
verdict is the standard library's with or without pybase64. Pure.
"""

from __future__ import annotations

import base64
import importlib
from collections.abc import Callable


def _decoder() -> Callable[..., bytes]:
    try:
        fast: Callable[..., bytes] = importlib.import_module("pybase64").b64decode
    except ImportError:  # an optional speed-up: the standard decoder gives the same bytes
        return base64.b64decode
    return fast


_decode = _decoder()


def b64decode_strict(text: str | bytes) -> bytes:
    """The bytes of `text`; ValueError (binascii.Error) when it is not strict base64 as the
    standard library reads it (`validate=True`)."""
    try:
        return _decode(text, validate=True)
    except (ValueError, TypeError):  # rare: confirmed (or read) by the reference decoder
        return base64.b64decode(text, validate=True)
