"""Pure rules of the sandbox: message parsing, session.update validation, audio decoding."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from doctor.sandbox import rules
from doctor.sandbox.config import DOCUMENTED_VOICES

V = DOCUMENTED_VOICES


def update(
    patch: Any, current: dict[str, Any] | None = None, ready: bool = False, **kw: Any
) -> rules.UpdateOutcome:
    return rules.apply_update(
        {"type": "session.update", "session": patch}, current or {}, ready=ready, voices=V, **kw
    )


@pytest.mark.parametrize(
    ("frame", "param"),
    [
        (b"\x00\x01", None),
        ("{not json", None),
        ("[1, 2]", None),
        ('"text"', None),
        ('{"audio": "AAAA"}', "type"),
        ('{"type": "input.audios"}', "type"),
        ('{"type": 5}', "type"),
        ('{"type": "response.create"}', "type"),
    ],
)
def test_bad_frames_are_invalid_format(frame: str | bytes, param: str | None) -> None:
    err = rules.parse_client_message(frame)
    assert isinstance(err, rules.ProtocolError)
    assert err.code == "invalid_format"
    assert err.param == param


@pytest.mark.parametrize("kind", sorted(rules.CLIENT_TYPES))
def test_every_client_type_parses(kind: str) -> None:
    msg = rules.parse_client_message(json.dumps({"type": kind}))
    assert msg == {"type": kind}


def test_error_payload_shape() -> None:
    err = rules.ProtocolError("invalid_value", "bad", "output.voice")
    assert err.payload("T") == {
        "type": "session.error",
        "code": "invalid_value",
        "message": "bad",
        "param": "output.voice",
        "timestamp": "T",
    }
    assert "param" not in rules.ProtocolError("x", "y").payload("T")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("message", "encoding", "code"),
    [
        ({"audio": b64(b"\x00\x01\x02")}, "audio/pcm", "invalid_audio"),  # odd byte count
        ({"audio": "AAA*"}, "audio/pcm", "invalid_audio"),
        ({"audio": "AA=A"}, "audio/pcm", "invalid_audio"),
        ({"audio": "AAAA\nAAAA"}, "audio/pcm", "invalid_audio"),
        ({"audio": "-_-_"}, "audio/pcm", "invalid_audio"),  # URL-safe alphabet
        ({"audio": "AAAÄ"}, "audio/pcm", "invalid_audio"),
        ({}, "audio/pcm", "invalid_format"),
        ({"audio": 12}, "audio/pcm", "invalid_format"),
    ],
)
def test_bad_audio(message: dict[str, Any], encoding: str, code: str) -> None:
    err = rules.decode_audio(message, encoding)
    assert isinstance(err, rules.ProtocolError) and err.code == code


def test_good_audio_and_g711_odd_lengths() -> None:
    assert (
        rules.decode_audio({"audio": b64(b"\x01\x02\x03\x04")}, "audio/pcm") == b"\x01\x02\x03\x04"
    )
    assert rules.decode_audio({"audio": b64(b"\x01\x02\x03")}, "audio/pcmu") == b"\x01\x02\x03"
    assert rules.decode_audio({"audio": ""}, "audio/pcm") == b""


def test_first_update_merges_and_lists_changed_fields() -> None:
    out = update({"system_prompt": "hi", "output": {"voice": "james"}})
    assert out.applied and not out.errors
    assert out.config == {"system_prompt": "hi", "output": {"voice": "james"}}
    assert out.changed_fields == ["output", "system_prompt"]


def test_config_not_under_session_is_silently_ignored() -> None:
    out = rules.apply_update(
        {"type": "session.update", "config": {"system_prompt": "x"}}, {}, ready=False, voices=V
    )
    assert out.applied and not out.errors and out.config == {} and out.changed_fields == []


@pytest.mark.parametrize(
    ("patch", "code", "param"),
    [
        ("nope", "invalid_format", "session"),
        ({"system_prompt": 3}, "invalid_value", "system_prompt"),
        ({"greeting": ["a"]}, "invalid_value", "greeting"),
        ({"output": {"voice": "claire"}}, "invalid_value", "output.voice"),
        ({"output": {"volume": 101}}, "invalid_value", "output.volume"),
        (
            {"output": {"format": {"encoding": "audio/opus"}}},
            "invalid_value",
            "output.format.encoding",
        ),
        (
            {"input": {"format": {"encoding": "audio/pcm", "sample_rate": 16000}}},
            "invalid_value",
            "input.format.sample_rate",
        ),
        (
            {"input": {"format": {"encoding": "audio/pcmu", "sample_rate": 24000}}},
            "invalid_value",
            "input.format.sample_rate",
        ),
        (
            {"input": {"format": {"sample_rate": "24000"}}},
            "invalid_value",
            "input.format.sample_rate",
        ),
        ({"input": {"keyterms": ["a"] * 101}}, "invalid_value", "input.keyterms"),
        ({"input": {"keyterms": "a"}}, "invalid_value", "input.keyterms"),
        (
            {"input": {"turn_detection": {"vad_threshold": 1.5}}},
            "invalid_value",
            "input.turn_detection.vad_threshold",
        ),
        (
            {"input": {"turn_detection": {"min_silence": 20}}},
            "invalid_value",
            "input.turn_detection.min_silence",
        ),
        (
            {"input": {"turn_detection": {"min_silence": 3000, "max_silence": 2000}}},
            "invalid_value",
            "input.turn_detection.min_silence",
        ),
        (
            {"input": {"turn_detection": {"interrupt_response": "no"}}},
            "invalid_value",
            "input.turn_detection.interrupt_response",
        ),
        ({"tools": {}}, "invalid_value", "tools"),
        ({"tools": [{"name": ""}]}, "invalid_value", "tools[0].name"),
        (
            {"tools": [{"name": "a", "execution_mode": "async"}]},
            "invalid_value",
            "tools[0].execution_mode",
        ),
        (
            {"tools": [{"name": "a", "timeout_seconds": 301}]},
            "invalid_value",
            "tools[0].timeout_seconds",
        ),
        ({"tools": [{"name": "a", "type": "http"}]}, "invalid_value", "tools[0].type"),
        ({"agent_id": "u", "system_prompt": "x"}, "invalid_config", "agent_id"),
        ({"agent_id": 5}, "invalid_value", "agent_id"),
    ],
)
def test_invalid_updates_change_nothing(patch: Any, code: str, param: str) -> None:
    current = {"system_prompt": "old"}
    out = update(patch, current)
    assert not out.applied
    assert [(e.code, e.param) for e in out.errors] == [(code, param)]
    assert out.config == current


def test_lax_sample_rate_switch() -> None:
    out = update(
        {"input": {"format": {"encoding": "audio/pcm", "sample_rate": 16000}}}, strict_rate=False
    )
    assert out.applied and not out.errors


def test_agent_id_only_in_first_update() -> None:
    assert update({"agent_id": "abc"}).applied
    out = update({"agent_id": "abc"}, {"system_prompt": "x"}, ready=True)
    assert not out.applied and out.errors[0].code == "invalid_config"


def test_min_silence_checked_against_the_current_max() -> None:
    current = {"input": {"turn_detection": {"max_silence": 500}}}
    out = update({"input": {"turn_detection": {"min_silence": 800}}}, current, ready=True)
    assert not out.applied and out.errors[0].param == "input.turn_detection.min_silence"


@pytest.mark.parametrize(
    ("patch", "current", "param"),
    [
        # one value alone meets the other's default (min 1000, max 3000: protocol.md §3.4)
        ({"max_silence": 500}, {}, "max_silence"),
        ({"max_silence": 1000}, {}, "max_silence"),
        ({"min_silence": 3000}, {}, "min_silence"),
        ({"max_silence": 700}, {"min_silence": 800}, "max_silence"),
    ],
)
def test_silence_bounds_use_the_defaults_in_force(
    patch: dict[str, Any], current: dict[str, Any], param: str
) -> None:
    cur = {"input": {"turn_detection": current}} if current else {}
    out = update({"input": {"turn_detection": patch}}, cur, ready=bool(cur))
    assert not out.applied
    assert [(e.code, e.param) for e in out.errors] == [
        ("invalid_value", f"input.turn_detection.{param}")
    ]


@pytest.mark.parametrize(
    "patch", [{"max_silence": 1001}, {"min_silence": 2999}, {"min_silence": 50, "max_silence": 60}]
)
def test_silence_bounds_within_the_defaults_apply(patch: dict[str, Any]) -> None:
    assert update({"input": {"turn_detection": patch}}).applied


@pytest.mark.parametrize(
    "patch",
    [
        {"output": {"voice": "ivy"}},
        {"output": {"format": {"encoding": "audio/pcm"}}},
        {"output": {"format": {"encoding": "audio/pcm", "sample_rate": 24000}}},
        {"output": {"format": {"sample_rate": 24000}}},
        {"greeting": ""},
    ],
)
def test_sending_a_default_explicitly_is_not_a_change(patch: dict[str, Any]) -> None:
    """The session began with defaults (no voice, format or greeting given)."""
    out = update(patch, {"system_prompt": "p"}, ready=True)
    assert out.applied and out.errors == []


def test_changing_away_from_a_default_is_still_immutable() -> None:
    out = update(
        {"output": {"format": {"encoding": "audio/pcm", "sample_rate": 16000}}},
        {"system_prompt": "p"},
        ready=True,
        strict_rate=False,
    )
    assert [(e.code, e.param) for e in out.errors] == [("immutable_field", "output.format")]


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"greeting": "new"}, "greeting"),
        ({"output": {"voice": "james"}}, "output.voice"),
        ({"output": {"format": {"encoding": "audio/pcmu"}}}, "output.format"),
    ],
)
def test_immutable_fields_after_ready(patch: dict[str, Any], param: str) -> None:
    current = {"greeting": "hi", "output": {"voice": "ivy", "volume": 50}}
    out = update(patch, current, ready=True)
    assert out.applied
    assert [(e.code, e.param) for e in out.errors] == [("immutable_field", param)]
    assert out.config == current  # the change is dropped
    assert out.changed_fields == []


def test_immutable_change_is_dropped_but_mutable_fields_apply() -> None:
    current = {"greeting": "hi", "output": {"voice": "ivy", "volume": 50}}
    out = update(
        {"output": {"voice": "james", "volume": 80}, "system_prompt": "p"}, current, ready=True
    )
    assert [e.code for e in out.errors] == ["immutable_field"]
    assert out.config["output"] == {"voice": "ivy", "volume": 80}
    assert out.config["system_prompt"] == "p"
    assert out.changed_fields == ["output", "system_prompt"]


def test_same_value_is_not_a_change() -> None:
    current = {"greeting": "hi", "output": {"voice": "ivy"}}
    out = update({"greeting": "hi", "output": {"voice": "ivy"}}, current, ready=True)
    assert out.applied and not out.errors and out.changed_fields == []


def test_tools_replace_and_input_format_may_change() -> None:
    current = {"tools": [{"name": "a"}, {"name": "b"}], "input": {"keyterms": ["x"]}}
    out = update(
        {"tools": [{"name": "c"}], "input": {"format": {"encoding": "audio/pcmu"}}},
        current,
        ready=True,
    )
    assert out.applied and not out.errors
    assert rules.tool_names(out.config) == ["c"]
    assert out.config["input"] == {"keyterms": ["x"], "format": {"encoding": "audio/pcmu"}}
    assert rules.input_encoding(out.config) == "audio/pcmu"
    assert rules.output_encoding(out.config) == "audio/pcm"
    assert rules.turn_setting(out.config, "min_silence", 1000) == 1000
