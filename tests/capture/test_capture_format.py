"""The capture format: what watch writes is what analyze reads, and no secret is kept."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from doctor.capture.format import (
    FORMAT_VERSION,
    CaptureFormatError,
    ConnEvent,
    Frame,
    Header,
    decode,
    decode_header,
    encode,
    frame_from_message,
    is_header,
)


def test_header_round_trips_and_is_detected() -> None:
    header = Header(1800000000.5, 12.25, "summary", "wss://agents.assemblyai.com/v1/ws", "0.1.0")
    line = json.loads(encode(header))
    assert is_header(line)
    assert decode_header(line) == header


def test_a_newer_version_is_refused_with_the_next_step() -> None:
    with pytest.raises(CaptureFormatError, match="upgrade agent-doctor"):
        decode_header({"capture": "agent-doctor", "version": FORMAT_VERSION + 1})


def test_summary_drops_the_audio_and_keeps_its_size() -> None:
    pcm = b"\x01\x00" * 1200
    message = json.dumps({"type": "input.audio", "audio": base64.b64encode(pcm).decode()})
    frame = frame_from_message(0.5, 1.0, 1, "app", message, "summary")
    assert frame.msg == {"type": "input.audio"}
    assert frame.audio == {"valid_base64": True, "chars": 3200, "bytes": 2400, "field": "audio"}
    assert decode(json.loads(encode(frame))) == frame


def test_keep_mode_keeps_the_reply_audio() -> None:
    message = json.dumps({"type": "reply.audio", "data": "AAAA", "reply_id": "resp_1"})
    frame = frame_from_message(0.5, 1.0, 2, "service", message, "keep")
    assert frame.msg is not None and frame.msg["data"] == "AAAA"
    assert frame.audio is None


def test_invalid_base64_is_summarised_as_invalid() -> None:
    message = json.dumps({"type": "input.audio", "audio": "not base64!"})
    frame = frame_from_message(0.0, 0.0, 1, "app", message, "summary")
    assert frame.audio is not None and frame.audio["valid_base64"] is False


def test_resume_tokens_are_never_written() -> None:
    message = json.dumps({"type": "session.ready", "session_id": "sess_1", "resume_token": "s3"})
    line = encode(frame_from_message(0.0, 0.0, 1, "service", message, "keep"))
    assert "s3" not in line and "sess_1" in line


def test_non_json_and_binary_frames_keep_only_what_is_safe() -> None:
    text = frame_from_message(0.0, 0.0, 1, "app", "x" * 10_000, "keep")
    assert text.msg is None and text.length == 10_000 and len(text.text or "") == 4096
    binary = frame_from_message(0.0, 0.0, 1, "app", b"\x00" * 7, "keep")
    assert binary.binary == 7 and decode(json.loads(encode(binary))) == binary


def test_connection_events_round_trip() -> None:
    event = ConnEvent(3.0, 4.0, 1, "close", {"by": "app", "code": None, "reason": ""})
    assert decode(json.loads(encode(event))) == event


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists, max_leaves=5))
def test_decode_raises_only_the_format_error(junk: object) -> None:
    try:
        record = decode(junk)
    except CaptureFormatError:
        return
    assert isinstance(record, (Frame, ConnEvent))
