"""Tool-call `arguments` that fit a tool's declared JSON-schema `parameters` (pure).

field-facts §9: `arguments` is an object the LLM fills after the declared parameters, so
a client's own validation (or its handler) sees plausible values, not a placeholder. The
values follow what the schema says, in this order: `const`, then `default` / `examples`
(when they fit the type and any `enum`), then `enum`, then a value made for the type and
its bounds: integer `minimum` rounded up and clamped to `maximum`, `multipleOf`, strings
padded to `minLength` and cut at `maxLength`, the common `format`s, a string made from a
simple `pattern`, arrays filled to `minItems` (distinct items under `uniqueItems`).

Never raises: a schema that no value can satisfy (`minimum: Infinity`, `minimum` above
`maximum`, a pattern the generator cannot follow) gets a best-effort value, so the
sandbox's turn, and the session, go on.
"""

from __future__ import annotations

import importlib
import math
import re
import string
import uuid
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 24
MAX_ITEMS = 64  # arrays are filled to minItems, but never beyond this
MAX_CHARS = 4096  # nor strings padded beyond this
# Plausible values for the `format`s clients declare most (JSON Schema 2020-12 §7.3).
FORMATS: dict[str, str] = {
    "date": "2026-09-24",
    "date-time": "2026-09-24T12:00:00Z",
    "time": "12:00:00Z",
    "duration": "PT1M",
    "email": "sandbox@example.com",
    "idn-email": "sandbox@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/sandbox",
    "iri": "https://example.com/sandbox",
    "url": "https://example.com/sandbox",
    "uri-reference": "/sandbox",
    "iri-reference": "/sandbox",
    "uri-template": "https://example.com/{id}",
    "json-pointer": "/sandbox",
    "relative-json-pointer": "0",
    "regex": "^sandbox$",
}
_JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")


class _Unfit(Exception):
    """No value of this kind fits; the caller falls back."""


def arguments_for(parameters: Any) -> dict[str, Any]:
    """An object of arguments for a tool's `parameters` (empty when it declares none)."""
    try:
        if not isinstance(parameters, dict):
            return {}
        value = _object(parameters, 0)
    except Exception:  # a safety net: a schema must never end the sandbox's turn
        return {}
    return value if isinstance(value, dict) else {}


def value_for(name: str, schema: Any, variant: int = 0, depth: int = 0) -> Any:
    """One value for `schema` (a property called `name`); `variant` > 0 asks for another
    value than variant 0 where the schema allows (array items under `uniqueItems`)."""
    try:
        return _value(name, schema, variant, depth)
    except Exception:
        return _placeholder(name)


def _placeholder(name: str, why: str = "") -> str:
    return f"sandbox {name}" + (f" ({why})" if why else "")


def _value(name: str, schema: Any, variant: int, depth: int) -> Any:
    if schema is True or not isinstance(schema, dict) or depth > MAX_DEPTH:
        return _placeholder(name)
    schema = _merged(schema)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    enum = enum if isinstance(enum, list) and enum else None
    kinds = _kinds(schema)
    for given in _given(schema):
        if (enum is None or given in enum) and _fits(given, kinds) and variant == 0:
            return given
    if enum is not None:
        return enum[variant % len(enum)]
    kind = next((k for k in kinds if k != "null"), kinds[0] if kinds else None)
    if kind == "integer":
        return _integer(schema, variant)
    if kind == "number":
        return _number(schema, variant)
    if kind == "boolean":
        return variant % 2 == 0
    if kind == "null":
        return None
    if kind == "array":
        return _array(name, schema, variant, depth)
    if kind == "object":
        return _object(schema, depth)
    return _string(name, schema, variant)


def _merged(schema: dict[str, Any]) -> dict[str, Any]:
    """`allOf` folded in; the first usable branch of `anyOf` / `oneOf` taken."""
    out = dict(schema)
    for part in out.pop("allOf", None) or []:
        if isinstance(part, dict):
            part = _merged(part)
            props = {**(out.get("properties") or {}), **(part.get("properties") or {})}
            out = {**part, **out}
            if props:
                out["properties"] = props
    for key in ("anyOf", "oneOf"):
        options = out.pop(key, None)
        if isinstance(options, list):
            usable = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
            if usable:
                out = {**_merged(usable[0]), **out}
    return out


def _kinds(schema: dict[str, Any]) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [k for k in declared if isinstance(k, str) and k in _JSON_TYPES]
    # No type: what the keywords imply.
    if "properties" in schema or "required" in schema:
        return ["object"]
    if "items" in schema or "prefixItems" in schema or "minItems" in schema:
        return ["array"]
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "multipleOf")):
        return ["number"]
    return ["string"]


def _given(schema: dict[str, Any]) -> list[Any]:
    """Values the schema itself offers: `default`, `examples`, OpenAPI's `example`."""
    out = [schema["default"]] if "default" in schema else []
    examples = schema.get("examples")
    if isinstance(examples, list):
        out += examples
    if "example" in schema:
        out.append(schema["example"])
    return out


def _fits(value: Any, kinds: list[str]) -> bool:
    if not kinds:
        return True
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
        "null": lambda v: v is None,
    }
    return any(checks[k](value) for k in kinds if k in checks)


def _bound(schema: dict[str, Any], key: str) -> float | None:
    """A finite numeric bound, or None (absent, not a number, or not finite)."""
    value = schema.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _bounds(schema: dict[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """(low, low exclusive, high, high exclusive), drafts 4 and 6+ alike."""
    low, high = _bound(schema, "minimum"), _bound(schema, "maximum")
    low_x = high_x = False
    if schema.get("exclusiveMinimum") is True:  # draft 4: a flag on minimum
        low_x = low is not None
    elif (xlow := _bound(schema, "exclusiveMinimum")) is not None and (low is None or xlow >= low):
        low, low_x = xlow, True
    if schema.get("exclusiveMaximum") is True:
        high_x = high is not None
    elif (xhigh := _bound(schema, "exclusiveMaximum")) is not None and (
        high is None or xhigh <= high
    ):
        high, high_x = xhigh, True
    return low, low_x, high, high_x


def _integer(schema: dict[str, Any], variant: int) -> int:
    low, low_x, high, high_x = _bounds(schema)
    lo = None if low is None else (math.floor(low) + 1 if low_x else math.ceil(low))
    hi = None if high is None else (math.ceil(high) - 1 if high_x else math.floor(high))
    value = (lo if lo is not None else 1) + variant
    if hi is not None and value > hi:
        value = hi if lo is None or hi >= lo else lo  # lo > hi: nothing fits; keep lo
    step = _bound(schema, "multipleOf")
    if step is not None and step > 0 and float(step).is_integer():
        m = int(step)
        up = -(-value // m) * m
        value = up if hi is None or up <= hi else (value // m) * m
    return int(value)


def _number(schema: dict[str, Any], variant: int) -> float:
    low, low_x, high, high_x = _bounds(schema)
    value = 1.0 + variant
    if low is not None:
        value = low + variant + (1.0 if low_x else 0.0)
    if high is not None and (value > high or (high_x and value >= high)):
        if low is not None and low < high:
            value = (low + high) / 2
        else:
            value = high - 1.0 if high_x else high
    step = _bound(schema, "multipleOf")
    if step is not None and step > 0:
        for k in range(math.ceil(value / step), math.ceil(value / step) + 4):
            up = round(k * step, 12)
            if high is not None and (up > high or (up == high and high_x)):
                break
            if (up / step).is_integer():  # what validators check (float division)
                return float(up)
    return float(value)


def _length(schema: dict[str, Any], key: str, cap: int) -> int | None:
    value = _bound(schema, key)
    return None if value is None or value < 0 else min(int(value), cap)


def _string(name: str, schema: dict[str, Any], variant: int) -> str:
    min_len = _length(schema, "minLength", MAX_CHARS) or 0
    max_len = _length(schema, "maxLength", MAX_CHARS)
    fmt = schema.get("format")
    if fmt == "uuid" or (isinstance(fmt, str) and fmt in FORMATS):
        text = str(uuid.uuid4()) if fmt == "uuid" else FORMATS[fmt]
        if variant and fmt in ("email", "idn-email"):
            text = f"sandbox{variant + 1}@example.com"
        return text  # a format's shape wins over length bounds that contradict it
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        made = from_pattern(pattern, min_len, max_len, variant)
        if made is not None:
            return made
        return _placeholder(name, f"no value made for pattern {pattern}")
    text = _placeholder(name) + (f" {variant + 1}" if variant else "")
    return _fit_length(text, min_len, max_len)


def _fit_length(text: str, min_len: int, max_len: int | None) -> str:
    if len(text) < min_len:
        text += "x" * (min_len - len(text))
    if max_len is not None and len(text) > max_len:
        text = text[:max_len].rstrip() if max_len else ""
        text += "x" * (min(min_len, max_len) - len(text))
    return text


def _array(name: str, schema: dict[str, Any], variant: int, depth: int) -> list[Any]:
    min_items = _length(schema, "minItems", MAX_ITEMS) or 0
    max_items = _length(schema, "maxItems", MAX_ITEMS)
    count = max(min_items, 1)
    if max_items is not None:
        count = min(count, max_items)
    count = min(count, MAX_ITEMS)
    prefix = schema.get("prefixItems")
    items = schema.get("items", {"type": "string"})
    if isinstance(items, list):  # draft 4 tuple validation
        prefix, items = items, schema.get("additionalItems", {"type": "string"})
    prefix = prefix if isinstance(prefix, list) else []
    count = max(count, min(len(prefix), max_items if max_items is not None else len(prefix)))
    unique = schema.get("uniqueItems") is True
    out: list[Any] = []
    for i in range(count):
        sub = prefix[i] if i < len(prefix) else items
        out.append(value_for(name, sub, (i + variant) if unique else variant, depth + 1))
    return out


def _object(schema: dict[str, Any], depth: int) -> dict[str, Any]:
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    out = {str(name): value_for(str(name), sub, 0, depth + 1) for name, sub in props.items()}
    required = schema.get("required")
    for name in required if isinstance(required, list) else []:
        if isinstance(name, str) and name not in out:
            out[name] = _placeholder(name)
    return out


# --- strings from a `pattern` ----------------------------------------------------------------


def _sre() -> Any:
    """The stdlib's regex parser (`re._parser` from 3.11, `sre_parse` before)."""
    try:
        return importlib.import_module("re._parser")
    except ImportError:  # pragma: no cover - Python 3.10
        return importlib.import_module("sre_parse")


_POOL = string.ascii_letters + string.digits + "-_. @:/+#"
_CATEGORY: dict[str, Callable[[str], bool]] = {
    "CATEGORY_DIGIT": lambda c: c.isdigit(),
    "CATEGORY_NOT_DIGIT": lambda c: not c.isdigit(),
    "CATEGORY_WORD": lambda c: c.isalnum() or c == "_",
    "CATEGORY_NOT_WORD": lambda c: not (c.isalnum() or c == "_"),
    "CATEGORY_SPACE": lambda c: c.isspace(),
    "CATEGORY_NOT_SPACE": lambda c: not c.isspace(),
}


def from_pattern(
    pattern: str, min_len: int = 0, max_len: int | None = None, variant: int = 0
) -> str | None:
    """A string that `pattern` matches (searched, as JSON Schema's `pattern` is) and that
    fits the length bounds; None when the simple generator cannot make one."""
    try:
        compiled = re.compile(pattern)
        tree = _sre().parse(pattern)
    except Exception:  # not a pattern Python reads (ECMA-only syntax), or none at all
        return None
    for stretch in (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89):
        try:
            text = _Gen(stretch, variant).run(tree)
        except (_Unfit, RecursionError):
            return None
        if (
            compiled.search(text)
            and len(text) >= min_len
            and (max_len is None or len(text) <= max_len)
        ):
            return text
        if max_len is not None and len(text) > max_len:
            break
    return None


class _Gen:
    """Walks the parsed pattern: the fewest repeats allowed (at least `stretch`), the
    first branch, the first character of each class."""

    def __init__(self, stretch: int, variant: int) -> None:
        self.stretch = stretch
        self.variant = variant
        self.groups: dict[int, str] = {}

    def run(self, items: Any) -> str:
        return "".join(self.one(op, av) for op, av in items)

    def one(self, op: Any, av: Any) -> str:
        kind = getattr(op, "name", str(op))
        if kind == "LITERAL":
            return chr(av)
        if kind == "NOT_LITERAL":
            return next(c for c in _POOL if ord(c) != av)
        if kind == "ANY":
            return "a"
        if kind == "IN":
            return self.char_in(av)
        if kind in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = av
            count = min(max(int(low), self.stretch), int(high))
            return "".join(self.run(sub) for _ in range(count))
        if kind == "SUBPATTERN":
            group, sub = av[0], av[-1]
            text = self.run(sub)
            if group is not None:
                self.groups[group] = text
            return text
        if kind == "ATOMIC_GROUP":
            return self.run(av)
        if kind == "BRANCH":
            branches = av[1]
            return self.run(branches[self.variant % len(branches)])
        if kind == "GROUPREF":
            return self.groups.get(av, "")
        if kind in ("AT", "ASSERT", "ASSERT_NOT"):
            return ""
        raise _Unfit(kind)

    def char_in(self, items: Any) -> str:
        negate = any(getattr(op, "name", "") == "NEGATE" for op, _ in items)
        members = [(getattr(op, "name", str(op)), av) for op, av in items]
        if not negate:
            kind, av = members[0]
            if kind == "LITERAL":
                return chr(av)
            if kind == "RANGE":
                return chr(av[0] + min(self.variant, av[1] - av[0]))
        for c in _POOL:
            if self.in_class(c, members) != negate:
                return c
        raise _Unfit("IN")

    @staticmethod
    def in_class(c: str, members: list[tuple[str, Any]]) -> bool:
        for kind, av in members:
            if kind == "LITERAL" and ord(c) == av:
                return True
            if kind == "RANGE" and av[0] <= ord(c) <= av[1]:
                return True
            if kind == "CATEGORY":
                test = _CATEGORY.get(getattr(av, "name", str(av)))
                if test is not None and test(c):
                    return True
        return False
