"""How the live service shapes what it says back (field-facts §3, §7, §9): pure.

The resolved session config that `session.ready` and `session.updated` echo, the words of
`transcript.agent.delta`, and tool-call arguments that fit the tool's declared parameters.
"""

from __future__ import annotations

import copy
from typing import Any

from doctor.sandbox import rules

# field-facts §3: the echo lists every field, undocumented ones included, null when unset.
_INPUT_NULLS = (
    "keyterms", "turn_detection", "transcription_mode", "continuous_partials",
    "language_codes", "voice_focus", "voice_focus_threshold",
)  # fmt: skip
_TOOL_DEFAULTS: dict[str, Any] = {
    "type": "function",
    "description": None,
    "parameters": None,
    "execution_mode": "interactive",  # field-facts §3: the echo's defaults
    "timeout_seconds": 120,
    "http": None,
    "response_instructions": None,
    "deployment_id": None,
    "session_update": None,
    "image_tag": None,
}


def _format(fmt: Any) -> dict[str, Any]:
    given = fmt if isinstance(fmt, dict) else {}
    encoding = given.get("encoding", "audio/pcm")
    return {**given, "encoding": encoding, "sample_rate": rules.ENCODING_RATES.get(encoding)}


def resolved_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config as the field's `session.ready.config` shows it: what was set, with the
    service's defaults and nulls for the rest (field-facts §3)."""
    given = copy.deepcopy(config)
    inp = given.pop("input", None) or {}
    out = given.pop("output", None) or {}
    tools = given.pop("tools", None)
    resolved: dict[str, Any] = {
        "system_prompt": given.pop("system_prompt", None),
        "greeting": given.pop("greeting", None),
        "input": {
            "format": _format(inp.get("format")),
            **{name: inp.get(name) for name in _INPUT_NULLS},
            **{k: v for k, v in inp.items() if k != "format" and k not in _INPUT_NULLS},
        },
        "output": {
            "voice": out.get("voice"),
            "format": _format(out.get("format")),
            "volume": out.get("volume"),
            **{k: v for k, v in out.items() if k not in ("voice", "format", "volume")},
        },
        "tools": [
            {**_TOOL_DEFAULTS, **tool} if isinstance(tool, dict) else tool for tool in tools or []
        ],
        "llm": None,
        "pre_connect_requests": None,
    }
    resolved.update(given)  # agent_id and fields the service keeps as they came
    return resolved


def word_timings(text: str, start_ms: float, span_ms: float) -> list[tuple[str, int, int]]:
    """The words of a reply with their times in its audio, evenly spread over `span_ms`."""
    words = text.split()
    if not words:
        return []
    step = span_ms / len(words)
    return [
        (word, round(start_ms + i * step), round(start_ms + (i + 1) * step))
        for i, word in enumerate(words)
    ]


def arguments_for(parameters: Any) -> dict[str, Any]:
    """Arguments that fit a tool's JSON-schema `parameters`, the way an LLM fills them
    (field-facts §9: `arguments` is an object shaped by the declared parameters)."""
    props = parameters.get("properties") if isinstance(parameters, dict) else None
    if not isinstance(props, dict):
        return {}
    return {str(name): _value_for(name, schema) for name, schema in props.items()}


def _value_for(name: Any, schema: Any) -> Any:
    if not isinstance(schema, dict):
        return f"sandbox {name}"
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "integer":
        low = schema.get("minimum", 1)
        return int(low) if isinstance(low, (int, float)) else 1
    if kind == "number":
        low = schema.get("minimum", 1.0)
        return float(low) if isinstance(low, (int, float)) else 1.0
    if kind == "boolean":
        return True
    if kind == "array":
        return [_value_for(name, schema.get("items", {"type": "string"}))]
    if kind == "object":
        return arguments_for(schema)
    if kind == "null":
        return None
    return f"sandbox {name}"
