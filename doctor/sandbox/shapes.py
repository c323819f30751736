"""How the live service shapes what it says back (field-facts §3, §7, §9): pure.

The resolved session config that `session.ready` and `session.updated` echo, the words of
`transcript.agent.delta`, and tool-call arguments that fit the tool's declared parameters.
"""

from __future__ import annotations

import copy
from typing import Any

from doctor.sandbox import rules, tool_args

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
    (field-facts §9: `arguments` is an object shaped by the declared parameters); never
    raises, whatever the schema (`tool_args`)."""
    return tool_args.arguments_for(parameters)
