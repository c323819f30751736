"""What the service accepts from a client: message parsing, session config validation, audio.

Pure: text in, decisions out. Two styles: `documented` follows protocol.md §4.2
(`invalid_format`, `invalid_audio`, `invalid_value`, `invalid_config`, `immutable_field`);
`field` follows what the live service answered (field-facts.md §4: its verbatim messages,
`agent_not_found`, `agent_id_not_first`, `conversation.message` accepted).
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

CLIENT_TYPES = frozenset(
    {
        "session.update",
        "session.resume",
        "input.audio",
        "tool.result",
        "reply.create",
        "session.end",
    }
)
# field-facts §11: the live service accepts conversation.message (and ignores its content).
FIELD_CLIENT_TYPES = CLIENT_TYPES | {"conversation.message"}
ENCODING_RATES = {"audio/pcm": 24000, "audio/pcmu": 8000, "audio/pcma": 8000}
EXECUTION_MODES = ("interactive", "hold")
IMMUTABLE_AFTER_READY = (("greeting",), ("output", "voice"), ("output", "format"))
DEFAULT_VOICE = "ivy"  # protocol.md §3.4
TURN_DEFAULTS_MS = {"min_silence": 1000, "max_silence": 3000}  # protocol.md §3.4 limits
SESSION_FIELDS = ("system_prompt", "greeting", "tools", "input", "output")


@dataclass(frozen=True)
class ProtocolError:
    """A `session.error` the service would send; `fatal` ones close the socket."""

    code: str
    message: str
    param: str | None = None
    # field-facts §4: config and credential errors carry `session_id` and `param` (null
    # when there is none); protocol errors omit both.
    config: bool = False

    def payload(self, timestamp: str | float) -> dict[str, Any]:
        """protocol.md §4.1: type, code, message, param when there is one, timestamp."""
        event: dict[str, Any] = {
            "type": "session.error",
            "code": self.code,
            "message": self.message,
        }
        if self.param is not None:
            event["param"] = self.param
        event["timestamp"] = timestamp
        return event

    def field_payload(self, timestamp: float, session_id: str | None) -> dict[str, Any]:
        """field-facts §2, §4: the live key order, code first and type near the end."""
        event: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.config:
            event["session_id"] = session_id
            event["param"] = self.param
        event["type"] = "session.error"
        event["timestamp"] = timestamp
        return event


def _fmt(message: str, param: str | None = None) -> ProtocolError:
    return ProtocolError("invalid_format", message, param)


def parse_client_message(
    data: str | bytes, style: str = "documented"
) -> dict[str, Any] | ProtocolError:
    """A JSON object with a known `type`, or the `invalid_format` error the service sends."""
    if style == "field":
        return _parse_field(data)
    if isinstance(data, bytes):
        return _fmt("Invalid message format: binary frames are not accepted, send JSON text")
    try:
        message = json.loads(data)
    except (json.JSONDecodeError, RecursionError):
        return _fmt("Invalid message format: not valid JSON")
    if not isinstance(message, dict):
        return _fmt("Invalid message format: expected a JSON object")
    kind = message.get("type")
    if kind is None:
        return _fmt("Invalid message format: missing type", "type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        return _fmt(f"Invalid message format: unknown type {str(kind)[:60]!r}", "type")
    return message


def _parse_field(data: str | bytes) -> dict[str, Any] | ProtocolError:
    """field-facts §4: the live service's verbatim messages, no `param`."""
    if isinstance(data, bytes):
        return ProtocolError("invalid_format", "Invalid JSON format.")
    try:
        message = json.loads(data)
    except (json.JSONDecodeError, RecursionError):
        return ProtocolError("invalid_format", "Invalid JSON format.")
    if not isinstance(message, dict):
        return ProtocolError("invalid_format", "Invalid message format")
    kind = message.get("type")
    if not isinstance(kind, str) or kind not in FIELD_CLIENT_TYPES:
        return ProtocolError("invalid_format", f"Unknown message type: {str(kind)[:60]}")
    return message


def _format_of(kind: str) -> ProtocolError:
    return ProtocolError("invalid_format", f"Invalid message format for type '{kind}'")


def conversation_message_error(message: dict[str, Any]) -> ProtocolError | None:
    """field-facts §4: `{role: "user" | "system", content: <string>}` or invalid_format."""
    if message.get("role") in ("user", "system") and isinstance(message.get("content"), str):
        return None
    return _format_of("conversation.message")


def decode_audio(
    message: dict[str, Any], encoding: str, style: str = "documented"
) -> bytes | ProtocolError:
    """The audio bytes of an `input.audio`, strictly decoded (no whitespace, no URL-safe)."""
    field = style == "field"
    audio = message.get("audio")
    if not isinstance(audio, str):
        if field:
            return _format_of("input.audio")
        return _fmt("Invalid message format: input.audio needs a base64 string in `audio`", "audio")
    try:
        raw = base64.b64decode(audio.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        if field:
            return ProtocolError("invalid_audio", "Invalid audio data")
        return ProtocolError("invalid_audio", "Invalid audio: `audio` is not valid base64", "audio")
    if encoding == "audio/pcm" and len(raw) % 2:
        if field:
            return ProtocolError("invalid_audio", "Invalid audio data")
        return ProtocolError(
            "invalid_audio",
            f"Invalid audio: {len(raw)} bytes is not a whole number of 16-bit samples",
            "audio",
        )
    return raw


def input_encoding(config: dict[str, Any]) -> str:
    fmt = config.get("input", {}).get("format", {})
    return str(fmt.get("encoding", "audio/pcm"))


def output_encoding(config: dict[str, Any]) -> str:
    fmt = config.get("output", {}).get("format", {})
    return str(fmt.get("encoding", "audio/pcm"))


def turn_setting(config: dict[str, Any], name: str, default: Any) -> Any:
    return config.get("input", {}).get("turn_detection", {}).get(name, default)


def tool_names(config: dict[str, Any]) -> list[str]:
    return [t["name"] for t in config.get("tools", []) if isinstance(t, dict) and "name" in t]


@dataclass
class UpdateOutcome:
    """The config after the update, and the errors to report (empty: fully applied)."""

    config: dict[str, Any]
    errors: list[ProtocolError] = field(default_factory=list)
    applied: bool = True  # False: rejected whole (validation error), nothing changed
    changed_fields: list[str] = field(default_factory=list)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _range(value: Any, lo: float, hi: float, param: str) -> ProtocolError | None:
    if not _is_number(value) or not lo <= value <= hi:
        return ProtocolError("invalid_value", f"{param} must be a number from {lo} to {hi}", param)
    return None


def _check_format(fmt: Any, param: str, strict_rate: bool) -> ProtocolError | None:
    if not isinstance(fmt, dict):
        return ProtocolError("invalid_value", f"{param} must be an object", param)
    encoding = fmt.get("encoding", "audio/pcm")
    if encoding not in ENCODING_RATES:
        return ProtocolError(
            "invalid_value",
            f"{param}.encoding must be one of {', '.join(ENCODING_RATES)}",
            f"{param}.encoding",
        )
    if "sample_rate" in fmt:
        rate = fmt["sample_rate"]
        if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
            return ProtocolError(
                "invalid_value", f"{param}.sample_rate must be an integer", f"{param}.sample_rate"
            )
        if strict_rate and rate != ENCODING_RATES[encoding]:
            return ProtocolError(
                "invalid_value",
                f"{param}.sample_rate {rate} is not supported for {encoding} "
                f"(use {ENCODING_RATES[encoding]})",
                f"{param}.sample_rate",
            )
    return None


def _check_tools(tools: Any) -> ProtocolError | None:
    if not isinstance(tools, list):
        return ProtocolError("invalid_value", "tools must be an array", "tools")
    for i, tool in enumerate(tools):
        p = f"tools[{i}]"
        if not isinstance(tool, dict):
            return ProtocolError("invalid_value", f"{p} must be an object", p)
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            return ProtocolError(
                "invalid_value", f"{p}.name must be a non-empty string", p + ".name"
            )
        if tool.get("type", "function") != "function":
            return ProtocolError("invalid_value", f'{p}.type must be "function"', p + ".type")
        if tool.get("execution_mode", "interactive") not in EXECUTION_MODES:
            return ProtocolError(
                "invalid_value",
                f"{p}.execution_mode must be interactive or hold",
                p + ".execution_mode",
            )
        if "timeout_seconds" in tool and (
            err := _range(tool["timeout_seconds"], 1, 300, p + ".timeout_seconds")
        ):
            return err
    return None


def _check_input(inp: Any, merged: dict[str, Any], strict_rate: bool) -> ProtocolError | None:
    if not isinstance(inp, dict):
        return ProtocolError("invalid_value", "input must be an object", "input")
    if "format" in inp and (err := _check_format(inp["format"], "input.format", strict_rate)):
        return err
    if "keyterms" in inp:
        terms = inp["keyterms"]
        if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
            return ProtocolError(
                "invalid_value", "input.keyterms must be strings", "input.keyterms"
            )
        if len(terms) > 100:
            return ProtocolError(
                "invalid_value", "input.keyterms allows at most 100 terms", "input.keyterms"
            )
    if "turn_detection" in inp:
        td = inp["turn_detection"]
        p = "input.turn_detection"
        if not isinstance(td, dict):
            return ProtocolError("invalid_value", f"{p} must be an object", p)
        if "vad_threshold" in td and (
            err := _range(td["vad_threshold"], 0.0, 1.0, p + ".vad_threshold")
        ):
            return err
        for name in ("min_silence", "max_silence"):
            if name in td and (err := _range(td[name], 50, 10000, f"{p}.{name}")):
                return err
        if "interrupt_response" in td and not isinstance(td["interrupt_response"], bool):
            return ProtocolError(
                "invalid_value",
                f"{p}.interrupt_response must be a boolean",
                f"{p}.interrupt_response",
            )
        # min < max holds for the values in force: one set alone meets the other's default
        merged_td = merged.get("input", {}).get("turn_detection", {})
        lo = merged_td.get("min_silence", TURN_DEFAULTS_MS["min_silence"])
        hi = merged_td.get("max_silence", TURN_DEFAULTS_MS["max_silence"])
        if not lo < hi:
            name = "min_silence" if "min_silence" in td else "max_silence"
            return ProtocolError(
                "invalid_value",
                f"{p}.min_silence ({lo:g} ms) must be below max_silence ({hi:g} ms)"
                " (defaults 1000 and 3000)",
                f"{p}.{name}",
            )
    return None


def _check_output(
    out: Any, voices: Sequence[str], strict_rate: bool, style: str = "documented"
) -> ProtocolError | None:
    if not isinstance(out, dict):
        return ProtocolError("invalid_value", "output must be an object", "output")
    if "voice" in out and (not isinstance(out["voice"], str) or out["voice"] not in voices):
        if style == "field":  # field-facts §4, verbatim
            return ProtocolError(
                "invalid_value",
                f"Invalid voice '{str(out['voice'])[:40]}'. Must be one of: "
                + ", ".join(sorted(voices)),
                "output.voice",
            )
        return ProtocolError(
            "invalid_value", f"unknown voice {str(out['voice'])[:40]!r}", "output.voice"
        )
    if "format" in out and (err := _check_format(out["format"], "output.format", strict_rate)):
        return err
    if "volume" in out and (err := _range(out["volume"], 0, 100, "output.volume")):
        return err
    return None


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "tools":
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _get(config: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = config
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _in_force(config: dict[str, Any], path: tuple[str, ...]) -> Any:
    """An immutable field's value with the service's defaults filled in, so that sending
    the default explicitly is not a change."""
    value = _get(config, path)
    if path == ("greeting",):
        return value or ""
    if path == ("output", "voice"):
        return DEFAULT_VOICE if value is None else value
    fmt = value if isinstance(value, dict) else {}
    encoding = fmt.get("encoding", "audio/pcm")
    return {
        **fmt,
        "encoding": encoding,
        "sample_rate": fmt.get("sample_rate", ENCODING_RATES.get(encoding)),
    }


def _drop(patch: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = patch
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _field_checks(patch: dict[str, Any], current: dict[str, Any], ready: bool,
                  agents: Sequence[str]) -> ProtocolError | None:  # fmt: skip
    """What the live service refuses before the generic checks (field-facts §4, §14)."""
    if "agent_id" in patch:
        if ready or current:
            return ProtocolError(
                "agent_id_not_first", "agent_id can only be set on the first session.update"
            )
        if any(k in patch for k in (*SESSION_FIELDS, "llm")):
            return ProtocolError(
                "invalid_value",
                "agent_id is mutually exclusive with other session fields",
                "agent_id",
                config=True,
            )
        if patch["agent_id"] not in agents:
            return ProtocolError("agent_not_found", "Agent not found", "agent_id", config=True)
    if "llm" in patch:
        return ProtocolError(
            "invalid_value",
            "llm can only be configured on a stored agent: create the agent with its llm "
            "and pass agent_id",
            "llm",
            config=True,
        )
    if "greeting" in patch and patch["greeting"] is None:
        return _format_of("session.update")  # field-facts §4: stays open
    if ready:
        voice = _get(patch, ("output", "voice"))
        if voice is not None and voice != _get(current, ("output", "voice")):
            # field-facts §4: even an invalid name is `immutable_field` mid-session
            return ProtocolError(
                "immutable_field",
                "'output.voice' cannot be changed after the first session.update",
                "output.voice",
                config=True,
            )
    tools = patch.get("tools")
    if isinstance(tools, list):
        for i, tool in enumerate(tools):
            props = _get(tool, ("parameters", "properties")) if isinstance(tool, dict) else None
            if props is not None and not isinstance(props, dict):
                name = f"tools[{i}].parameters.properties"
                return ProtocolError(
                    "invalid_value", f"'{name}' must be an object", name, config=True
                )
    return None


def apply_update(
    message: dict[str, Any],
    current: dict[str, Any],
    *,
    ready: bool,
    voices: Sequence[str],
    strict_rate: bool = True,
    style: str = "documented",
    agents: Sequence[str] = (),
) -> UpdateOutcome:
    """Validate a `session.update` against the current config (protocol.md §3.4; with
    `style="field"`, the live service's answers of field-facts §4)."""
    field = style == "field"
    if "session" not in message:
        # Live behaviour (3P-CONTRACT): config under another key is silently ignored.
        return UpdateOutcome(copy.deepcopy(current), changed_fields=[])
    patch = message["session"]
    if not isinstance(patch, dict):
        err = (
            _format_of("session.update")
            if field
            else _fmt("Invalid message format: session must be an object", "session")
        )
        return UpdateOutcome(current, [err], False)
    refused = _field_checks(patch, current, ready, agents) if field else None
    if refused is not None:
        return UpdateOutcome(current, [refused], False)
    if "agent_id" in patch:
        if any(k in patch for k in SESSION_FIELDS):
            return UpdateOutcome(
                current,
                [
                    ProtocolError(
                        "invalid_config",
                        "agent_id cannot be combined with inline configuration",
                        "agent_id",
                    )
                ],
                False,
            )
        if not isinstance(patch["agent_id"], str) or not patch["agent_id"]:
            return UpdateOutcome(
                current,
                [ProtocolError("invalid_value", "agent_id must be a string", "agent_id", field)],
                False,
            )
        if ready or current:
            return UpdateOutcome(
                current,
                [
                    ProtocolError(
                        "invalid_config",
                        "agent_id is only accepted in the first session.update",
                        "agent_id",
                    )
                ],
                False,
            )
    for name in ("system_prompt", "greeting"):
        if name in patch and not isinstance(patch[name], str):
            return UpdateOutcome(
                current,
                [ProtocolError("invalid_value", f"{name} must be a string", name, field)],
                False,
            )
    merged = _merge(current, patch)
    checks: tuple[tuple[str, Callable[[Any], ProtocolError | None]], ...] = (
        ("tools", _check_tools),
        ("input", lambda v: _check_input(v, merged, strict_rate)),
        ("output", lambda v: _check_output(v, voices, strict_rate, style)),
    )
    for key, check in checks:
        found = check(patch[key]) if key in patch else None
        if found is not None:
            return UpdateOutcome(current, [dataclasses.replace(found, config=field)], False)
    errors: list[ProtocolError] = []
    if ready:
        patch = copy.deepcopy(patch)
        for path in IMMUTABLE_AFTER_READY:
            if _get(patch, path) is not None and _in_force(merged, path) != _in_force(
                current, path
            ):
                name = ".".join(path)
                message_text = (
                    f"'{name}' cannot be changed after the first session.update"
                    if field
                    else f"{name} cannot change after session.ready"
                )
                errors.append(ProtocolError("immutable_field", message_text, name, field))
                _drop(patch, path)
        merged = _merge(current, patch)
    changed = sorted(k for k in patch if merged.get(k) != current.get(k))
    return UpdateOutcome(merged, errors, True, changed)
