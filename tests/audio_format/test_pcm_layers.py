"""Base64, JSON message and JSON-lines layers, and the findings they produce."""

from __future__ import annotations

import base64
import json
import os

import numpy as np
import pytest
from audio_format_signals import speech_like, to_i16, wav_bytes

from doctor.audio.format.analyze import validate, validate_bytes
from doctor.audio.format.base64text import Base64Decoder, decode_all
from doctor.audio.format.inputs import sniff_kind
from doctor.audio.format.messages import check_message

PCM = to_i16(speech_like(2.0, seed=5)).tobytes()
B64 = base64.b64encode(PCM)


def codes(data: bytes, kind: str | None = None) -> set[str]:
    return set(validate_bytes(data, kind).codes())


def test_base64_clean_is_strict_ok() -> None:
    out, iss = decode_all(B64)
    assert out == PCM and iss.strict_ok


@pytest.mark.parametrize(
    "text,attr",
    [
        (b"data:audio/pcm;base64," + B64, "data_url"),
        (base64.urlsafe_b64encode(b"\xfb\xff" * 100), "urlsafe_chars"),
        (base64.encodebytes(PCM[:3000]), "line_breaks"),
        (B64[:100] + b" " + B64[100:], "spaces"),
        (B64[:100] + b"*" + B64[100:], "invalid_chars"),
        (base64.b64encode(b"ab") + base64.b64encode(b"cdef"), "inner_padding"),
        (base64.b64encode(b"abcde").rstrip(b"="), "missing_padding"),
    ],
)
def test_base64_issues_are_counted_and_data_still_decodes(text: bytes, attr: str) -> None:
    out, iss = decode_all(text)
    assert getattr(iss, attr)
    assert not iss.strict_ok
    assert len(out) > 0


def test_base64_streaming_equals_whole() -> None:
    text = b"data:audio/pcm;base64," + base64.encodebytes(PCM)
    for step in (1, 3, 7, 4096):
        d = Base64Decoder()
        out = b"".join(d.feed(text[i : i + step]) for i in range(0, len(text), step)) + d.finish()
        assert out == PCM
        assert d.issues.data_url == "data:audio/pcm;base64,"


@pytest.mark.parametrize(
    "head,kind",
    [
        (PCM, "raw"),
        (wav_bytes(PCM, 24000), "container"),
        (B64, "base64"),
        (b"data:audio/wav;base64,AAAA", "base64"),
        (b'{"type": "input.audio"}', "json"),
        (b'{"a":1}\n{"b":2}\n', "jsonl"),
        (b"hello there, this is plain text.", "text"),
        (b"", "empty"),
    ],
)
def test_sniff_kind(head: bytes, kind: str) -> None:
    assert sniff_kind(head) == kind


@pytest.mark.parametrize(
    "msg,code",
    [
        ("{not json", "json_invalid"),
        ("[1, 2]", "json_invalid"),
        ('{"audio": "AAAA"}', "message_missing_type"),
        ('{"type": "input_audio_buffer.append", "audio": "AAAA"}', "message_wrong_type"),
        ('{"type": "input.audio"}', "message_missing_audio"),
        ('{"type": "input.audio", "data": "AAAA"}', "message_missing_audio"),
        ('{"type": "input.audio", "audio": [1, 2, 3]}', "not_base64"),
        ('{"type": "input.audio", "audio": "AAA"}', "base64_invalid"),
        ('{"type": "input.audio", "audio": "AAAA"}', "odd_byte_length"),
        ('{"type": "input.audio", "audio": "data:audio/pcm;base64,AAAA"}', "base64_data_url"),
        ('{"type": "input.audio", "audio": "-_-_"}', "base64_urlsafe"),
    ],
)
def test_message_problems_match_the_service(msg: str, code: str) -> None:
    ck = check_message(msg)
    assert code in [p.code for p in ck.problems]
    assert code in codes(msg.encode())


def test_valid_message_is_valid() -> None:
    msg = json.dumps({"type": "input.audio", "audio": B64.decode()}).encode()
    v = validate_bytes(msg)
    assert v.verdict == "valid", v.codes()
    assert v.detected.input_kind == "json"


def _capture(chunk_samples: int, dt: float | None, extra: list[str] | None = None) -> bytes:
    pcm = np.frombuffer(PCM, "<i2")
    lines = []
    for n, k in enumerate(range(0, pcm.size, chunk_samples)):
        m: dict[str, object] = {
            "type": "input.audio",
            "audio": base64.b64encode(pcm[k : k + chunk_samples].tobytes()).decode(),
        }
        if dt is not None:
            m["t"] = n * dt
        lines.append(json.dumps(m))
    lines[1:1] = extra or []
    return "\n".join(lines).encode() + b"\n"


def test_capture_at_50ms_real_time_is_valid() -> None:
    v = validate_bytes(_capture(1200, 0.05, ['{"type": "session.update", "session": {}}']))
    assert v.verdict == "valid", v.codes()
    assert v.messages is not None and v.messages["chunks"]["median_ms"] == 50.0
    assert v.messages["pacing"]["realtime_ratio"] == pytest.approx(1.0, abs=0.05)


def test_capture_reports_per_line_problems_chunking_and_pacing() -> None:
    bad = ["{oops", '{"type": "input.audio", "audio": "AAAA"}']
    v = validate_bytes(_capture(120, 0.001, bad))  # 5 ms chunks sent 5x faster than real time
    found = {f.code: f for f in v.findings}
    assert found["json_invalid"].evidence["lines"] == [2]
    assert found["odd_byte_length"].evidence["lines"] == [3]
    assert "chunk_size" in found and "chunk_pacing" in found
    assert found["chunk_pacing"].severity == "error"


def test_wav_inside_base64_is_found() -> None:
    v = validate_bytes(b"data:audio/wav;base64," + base64.b64encode(wav_bytes(PCM, 16000)))
    assert {"base64_data_url", "container_wav", "sample_rate_mismatch"} <= set(v.codes())


def test_forced_kinds_report_the_mismatch() -> None:
    assert "not_base64" in codes(PCM, "base64")
    assert "base64_text" in codes(B64, "raw")


def test_large_input_streams_in_chunks() -> None:
    chunks = [PCM[i : i + 1001] for i in range(0, len(PCM), 1001)]
    v = validate(iter(chunks))
    assert v.verdict == "valid" and v.stats["audio_bytes"] == len(PCM)


def test_random_bytes_are_noise_not_speech() -> None:
    v = validate_bytes(os.urandom(100_000))
    assert "noise" in v.codes()
