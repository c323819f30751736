"""Files that are not audio (images, archives, documents) are named and the verdict is invalid.

A reviewer's PNG, ZIP and PDF (magic bytes, then random bytes) got "WARNING noise … Verdict:
valid", exit 0.
"""

from __future__ import annotations

import base64
import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from audio_format_signals import speech_like, to_i16
from clirun import run_cli

from doctor.audio.format.analyze import validate_bytes
from doctor.audio.format.containers import sniff_container

RANDOM = np.random.default_rng(3).integers(0, 256, 48000, dtype=np.uint8).tobytes()


def zipped() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", RANDOM.hex())
    return buf.getvalue()


FILES = {
    "png": b"\x89PNG\r\n\x1a\n" + RANDOM,
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + RANDOM,
    "gif": b"GIF89a" + RANDOM,
    "pdf": b"%PDF-1.7\n" + RANDOM,
    "zip": zipped(),
    "gzip": gzip.compress(RANDOM),
    "xz": b"\xfd7zXZ\x00" + RANDOM,
    "zstd": b"\x28\xb5\x2f\xfd" + RANDOM,
    "elf": b"\x7fELF\x02\x01\x01" + RANDOM,
}


@pytest.mark.parametrize("kind", sorted(FILES))
def test_well_known_non_audio_files_are_invalid_and_named(kind: str) -> None:
    v = validate_bytes(FILES[kind])
    assert v.verdict == "invalid"
    f = next(f for f in v.findings if f.code == "container_other")
    assert f.evidence["container"] == kind and f.evidence["not_audio"] is True
    assert "not audio" in f.message
    assert v.refuse_reason is not None and not v.convertible


def test_base64_of_a_png_is_named_too() -> None:
    v = validate_bytes(base64.b64encode(FILES["png"]))
    assert v.verdict == "invalid" and v.detected.container == "png"


def test_no_non_audio_signature_matches_speech_at_any_offset() -> None:
    pcm = to_i16(speech_like(5.0, seed=8)).tobytes()
    matched = [
        i
        for i in range(0, len(pcm) - 64, 2)
        if (c := sniff_container(pcm[i : i + 64])) is not None and not c.audio
    ]
    assert matched == []


def test_cli_says_what_the_file_is(tmp_path: Path) -> None:
    p = tmp_path / "img.png"
    p.write_bytes(FILES["png"])
    r = run_cli("validate-audio", str(p), "--no-color")
    assert r.returncode == 1
    assert "PNG image, not audio" in r.stdout and "Verdict: invalid" in r.stdout


def test_random_bytes_are_invalid_as_not_audio() -> None:
    for data in (RANDOM, RANDOM[:2500]):  # a 2.5 KB slice, as cut from the middle of an Ogg
        v = validate_bytes(data)
        f = next(f for f in v.findings if f.code == "noise")
        assert f.severity == "error" and "not audio" in f.message
        assert v.verdict == "invalid" and not v.convertible


@pytest.mark.parametrize("dbfs", [-30, -10, -3, 0])
def test_white_noise_recordings_stay_a_warning(dbfs: int) -> None:
    """Loud acoustic noise is Gaussian (clipped when loud), never uniform over the full scale."""
    x = np.random.default_rng(dbfs + 40).standard_normal(24000 * 3) * 10 ** (dbfs / 20)
    v = validate_bytes(to_i16(x.astype(np.float32)).tobytes())
    assert all(f.severity != "error" for f in v.findings if f.code == "noise")
    assert "noise" in v.codes()  # still said, as a warning
