"""Strict base64 decoding of audio payloads, with pybase64 (SIMD) when it is installed.

An hour of an app's `input.audio` is ~230 MB of base64: the standard library's decoder
spends seconds on it on a slow core, pybase64 a tenth of that. Both reject the same input
(non-alphabet characters, bad padding) with a `ValueError` (`binascii.Error`). Pure.
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
    """The bytes of `text`; ValueError (binascii.Error) when it is not strict base64."""
    return _decode(text, validate=True)
