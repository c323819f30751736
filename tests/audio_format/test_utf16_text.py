"""base64 or JSON saved as UTF-16 (PowerShell 5's `>`) is decoded as text, not read as PCM.

A reviewer's `utf16.b64` (BOM FF FE) read as raw PCM: low_level -52 dBFS, "Verdict: valid".
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from audio_format_signals import speech_like, to_i16
from clirun import run_cli

from doctor.audio.format.analyze import validate_bytes

PCM = to_i16(speech_like(2.0, seed=4)).tobytes()
B64 = base64.b64encode(PCM).decode()


@pytest.mark.parametrize(
    "encoding", ["utf-16", "utf-16-le-bom", "utf-16-be-bom", "utf-16-le", "utf-16-be"]
)
def test_utf16_base64_is_decoded_as_base64(encoding: str) -> None:
    bom = {"utf-16-le-bom": b"\xff\xfe", "utf-16-be-bom": b"\xfe\xff"}.get(encoding, b"")
    data = bom + (B64 + "\r\n").encode(encoding.replace("-bom", ""))
    v = validate_bytes(data)
    assert v.detected.input_kind == "base64"
    assert v.stats["audio_bytes"] == len(PCM)
    assert v.verdict == "valid", [f.message for f in v.findings]


def test_utf16_json_message_is_decoded() -> None:
    msg = json.dumps({"type": "input.audio", "audio": B64})
    v = validate_bytes(msg.encode("utf-16"))
    assert v.detected.input_kind == "json" and v.stats["audio_bytes"] == len(PCM)


def test_pcm_that_starts_like_a_bom_stays_pcm() -> None:
    data = b"\xff\xfe" + PCM
    v = validate_bytes(data)
    assert v.detected.input_kind == "raw" and v.stats["audio_bytes"] == len(data)


def test_fix_from_utf16_base64_writes_the_samples(tmp_path: Path) -> None:
    src = tmp_path / "ps.b64"
    src.write_bytes(B64.encode("utf-16"))
    out = tmp_path / "fixed.raw"
    r = run_cli("validate-audio", str(src), "--fix", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert out.read_bytes() == PCM


@pytest.mark.parametrize("kind", [None, "raw"])
def test_pcm_starting_quiet_with_a_positive_offset_stays_pcm(kind: str | None) -> None:
    """A reviewer's file: 3000 samples of 80 +- 10 (zero high bytes, low bytes spelling
    base64) then a tone was decoded as UTF-16 and read as 24-bit audio, invalid."""
    import numpy as np

    rng = np.random.default_rng(5)
    quiet = 80 + rng.integers(-10, 11, 3000)
    t = np.arange(72000) / 24000
    tone = 8000 * np.sin(2 * np.pi * 220 * t)
    data = np.concatenate([quiet, tone]).astype("<i2").tobytes()
    v = validate_bytes(data, kind=kind) if kind else validate_bytes(data)
    assert (v.detected.input_kind, v.detected.encoding) == ("raw", "s16le"), v.detected
    assert v.stats["audio_bytes"] == len(data) and v.verdict == "valid"


def test_bomless_utf16_jsonl_with_a_character_past_latin1_is_still_text() -> None:
    """One em dash between 4 and 64 KiB turned detection off once it judged the whole head
    (a reviewer's repro): a few high bytes are text, not sound."""
    msg = json.dumps({"type": "input.audio", "audio": B64[:4000]})
    note = json.dumps({"note": "a dash \u2014 here"}, ensure_ascii=False)
    lines = [msg] * 2 + [note] + [msg] * 8  # the dash at ~16 KiB
    v = validate_bytes(("\n".join(lines) + "\n").encode("utf-16-le"))
    assert v.detected.input_kind == "jsonl", v.detected
