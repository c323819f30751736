"""Tool-call `arguments` fit the declared `parameters` (field-facts §9), checked with
`jsonschema` against a table of the schemas clients declare; schemas no value can satisfy
get a best-effort value and never end the turn (over real sockets at the end)."""

from __future__ import annotations

import base64
import datetime
import json
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from sandbox_wire import chunks, raw, recv_until, run, send, utterance

from doctor.sandbox.shapes import arguments_for
from doctor.sandbox.threaded import ThreadedSandbox

Factory = Callable[..., ThreadedSandbox]

# One property schema each; every one has values that fit.
FITTABLE: dict[str, dict[str, Any]] = {
    "integer minimum 2.5": {"type": "integer", "minimum": 2.5},
    "integer range": {"type": "integer", "minimum": 10, "maximum": 20},
    "integer maximum only": {"type": "integer", "maximum": 0},
    "integer exclusive minimum": {"type": "integer", "exclusiveMinimum": 5},
    "integer exclusive maximum": {"type": "integer", "minimum": 0, "exclusiveMaximum": 1},
    "integer multipleOf": {"type": "integer", "minimum": 1, "multipleOf": 7},
    "number range": {"type": "number", "minimum": 0.5, "maximum": 0.75},
    "number exclusive maximum": {"type": "number", "exclusiveMaximum": 0},
    "number multipleOf": {"type": "number", "minimum": 1.1, "multipleOf": 0.25},
    "string minLength": {"type": "string", "minLength": 40},
    "string maxLength": {"type": "string", "maxLength": 3},
    "string exact length": {"type": "string", "minLength": 5, "maxLength": 5},
    "string maxLength 0": {"type": "string", "maxLength": 0},
    "pattern code": {"type": "string", "pattern": r"^[A-Z]{3}-\d{4}$"},
    "pattern alternatives": {"type": "string", "pattern": "^(ups|dhl|fedex)$"},
    "pattern and minLength": {"type": "string", "pattern": "^ORD[0-9]+$", "minLength": 8},
    "pattern email-like": {"type": "string", "pattern": r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$"},
    "pattern unanchored": {"type": "string", "pattern": r"\d{2}"},
    "pattern negated class": {"type": "string", "pattern": r"^[^\s@]+$", "minLength": 3},
    "pattern backreference": {"type": "string", "pattern": r"^(ab|cd)-\1$"},
    "format date": {"type": "string", "format": "date"},
    "format date-time": {"type": "string", "format": "date-time"},
    "format email": {"type": "string", "format": "email"},
    "format uri": {"type": "string", "format": "uri"},
    "format uuid": {"type": "string", "format": "uuid"},
    "format ipv4": {"type": "string", "format": "ipv4"},
    "enum": {"type": "string", "enum": ["express", "standard"]},
    "enum without type": {"enum": [3, "three"]},
    "const": {"const": "fixed"},
    "default": {"type": "string", "default": "standard", "maxLength": 8},
    "default outside the enum": {"type": "string", "enum": ["a", "b"], "default": "c"},
    "default of the wrong type": {"type": "integer", "default": "five", "minimum": 2},
    "examples": {"type": "integer", "examples": [42]},
    "boolean": {"type": "boolean"},
    "null or string": {"type": ["null", "string"], "maxLength": 4},
    "array minItems": {"type": "array", "items": {"type": "string"}, "minItems": 3},
    "array unique integers": {
        "type": "array",
        "items": {"type": "integer", "minimum": 1, "maximum": 5},
        "minItems": 3,
        "uniqueItems": True,
    },
    "array unique enum": {
        "type": "array",
        "items": {"type": "string", "enum": ["x", "y", "z"]},
        "minItems": 2,
        "maxItems": 2,
        "uniqueItems": True,
    },
    "array unique strings": {"type": "array", "minItems": 4, "uniqueItems": True},
    "array maxItems 0": {"type": "array", "maxItems": 0},
    "tuple": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]},
    "nested object": {
        "type": "object",
        "properties": {
            "street": {"type": "string", "minLength": 3},
            "zip": {"type": "string", "pattern": r"^\d{5}$"},
            "floor": {"type": "integer", "minimum": -2, "maximum": 80},
        },
        "required": ["street", "zip"],
    },
    "required without properties": {"type": "object", "required": ["note"]},
    "anyOf with null": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 3}]},
    "oneOf": {"oneOf": [{"type": "string", "format": "email"}, {"type": "integer"}]},
    "allOf": {"allOf": [{"type": "integer"}, {"minimum": 4}]},
    "no type, bounds": {"minimum": 7.5},
}


def parameters(schema: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"value": schema}, "required": ["value"]}


@pytest.mark.parametrize("name", sorted(FITTABLE))
def test_arguments_fit_the_declared_parameters(name: str) -> None:
    params = parameters(FITTABLE[name])
    args = arguments_for(params)
    jsonschema.Draft202012Validator(
        params, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(args)
    assert json.loads(json.dumps(args, allow_nan=False)) == args  # plain JSON, no NaN/inf


def test_values_are_the_ones_an_llm_would_pick() -> None:
    pick = {name: arguments_for(parameters(schema))["value"] for name, schema in FITTABLE.items()}
    assert pick["integer minimum 2.5"] == 3  # rounded up, not down
    assert pick["integer range"] == 10 and pick["integer maximum only"] == 0
    assert pick["enum"] == "express" and pick["const"] == "fixed"
    assert pick["default"] == "standard" and pick["examples"] == 42
    assert pick["default outside the enum"] == "a" and pick["default of the wrong type"] == 2
    assert pick["pattern code"] == "AAA-0000" and pick["pattern alternatives"] == "ups"
    assert len(pick["string minLength"]) == 40 and pick["string minLength"].startswith("sandbox")
    assert len(pick["array minItems"]) == 3 and len(set(pick["array unique integers"])) == 3
    datetime.date.fromisoformat(pick["format date"])
    datetime.datetime.fromisoformat(pick["format date-time"].replace("Z", "+00:00"))
    uuid.UUID(pick["format uuid"])
    local, _, domain = pick["format email"].partition("@")
    assert local and "." in domain
    uri = urllib.parse.urlsplit(pick["format uri"])
    assert uri.scheme == "https" and uri.netloc


def test_the_draft_4_exclusive_flags() -> None:
    schema = {"type": "integer", "minimum": 3, "exclusiveMinimum": True, "maximum": 9}
    params = parameters(schema)
    args = arguments_for(params)
    jsonschema.Draft4Validator(params).validate(args)
    assert args["value"] == 4


UNFITTABLE: dict[str, Any] = {
    # JSON as a client sends it: Python's json reads Infinity and NaN
    "integer minimum Infinity": json.loads('{"type": "integer", "minimum": Infinity}'),
    "number maximum -Infinity": json.loads('{"type": "number", "maximum": -Infinity}'),
    "integer minimum NaN": json.loads('{"type": "integer", "minimum": NaN}'),
    "minimum above maximum": {"type": "integer", "minimum": 5, "maximum": 3},
    "huge minLength": {"type": "string", "minLength": 1e12},
    "huge minItems": {"type": "array", "minItems": 1e9},
    "ECMA-only pattern": {"type": "string", "pattern": r"^\p{L}+$"},
    "pattern with a conditional": {"type": "string", "pattern": r"^(a)?(?(1)b|c)$"},
    "contradicting lengths": {"type": "string", "minLength": 9, "maxLength": 2},
    "false schema": False,
    "not a schema": 7,
    "deep nesting": json.loads('{"type": "array", "items": ' * 40 + "{}" + "}" * 40),
}


@pytest.mark.parametrize("name", sorted(UNFITTABLE))
def test_an_unfittable_schema_gets_a_best_effort_value_and_no_exception(name: str) -> None:
    args = arguments_for(parameters(UNFITTABLE[name]))
    assert set(args) == {"value"}
    json.dumps(args, allow_nan=False)  # a frame the sandbox can send


def test_best_effort_values_are_plain_and_say_what_they_could_not_do() -> None:
    pick = {name: arguments_for(parameters(schema))["value"] for name, schema in UNFITTABLE.items()}
    assert isinstance(pick["integer minimum Infinity"], int)
    assert isinstance(pick["number maximum -Infinity"], float)
    assert pick["minimum above maximum"] == 5
    assert len(pick["huge minLength"]) <= 4096 and len(pick["huge minItems"]) <= 64
    assert "no value made for pattern" in pick["ECMA-only pattern"]


def test_a_schema_no_value_fits_does_not_end_the_turn(sandbox_factory: Factory) -> None:
    """Over real sockets: a tool declaring `minimum: Infinity` still gets its tool.call
    (before, an OverflowError killed the turn task silently), and the answer follows."""
    sb = sandbox_factory(reply_s=0.2, tool_call="lookup_order")
    tool = {
        "type": "function",
        "name": "lookup_order",
        "description": "Find an order",
        "parameters": parameters(UNFITTABLE["integer minimum Infinity"]),
    }

    async def go() -> list[dict[str, Any]]:
        ws = await raw(sb, {"Authorization": sb.api_key})
        await send(ws, {"type": "session.update", "session": {"tools": [tool]}})
        seen = await recv_until(ws, "session.ready")
        for chunk in chunks(utterance()):
            await send(ws, {"type": "input.audio", "audio": base64.b64encode(chunk).decode()})
        seen += await recv_until(ws, "tool.call")
        answer = {"type": "tool.result", "call_id": seen[-1]["call_id"], "result": '{"ok": 1}'}
        await send(ws, answer)
        seen += await recv_until(ws, "transcript.agent")
        await ws.close()
        return seen

    seen = run(go())
    call = next(e for e in seen if e["type"] == "tool.call")
    assert isinstance(call["arguments"]["value"], int)
    assert "ok" in next(e for e in seen if e["type"] == "transcript.agent")["text"]
    assert not [e for e in sb.events if e["type"] == "server.task_failed"]
