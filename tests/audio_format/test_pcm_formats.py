"""Format inspection cores: decoders, WAV headers, container sniffing, encoding inference."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from audio_format_signals import (
    alaw_encode,
    mulaw_encode,
    s24_bytes,
    speech_like,
    to_i16,
    wav_bytes,
)

from doctor.audio.format.containers import sniff_container
from doctor.audio.format.encoding import detect_encoding
from doctor.audio.format.pcm import decode
from doctor.audio.format.wav import WavError, parse_wav_header
from doctor.files.pcm_file import AudioReadError, read_pcm16_mono

X = speech_like(3.0, seed=3)
I16 = to_i16(X)


def test_decoders_round_trip_within_quantisation() -> None:
    assert np.allclose(decode(I16.tobytes(), "s16le"), I16 / 32768, atol=1e-7)
    assert np.allclose(decode(I16.astype(">i2").tobytes(), "s16be"), I16 / 32768, atol=1e-7)
    assert np.allclose(decode(X.astype("<f4").tobytes(), "f32le"), X, atol=1e-6)
    assert np.allclose(decode(s24_bytes(X), "s24le"), X, atol=1e-6)
    assert np.allclose(decode(mulaw_encode(X), "mulaw"), X, atol=0.02)
    assert np.allclose(decode(alaw_encode(X), "alaw"), X, atol=0.02)
    stereo = np.stack([I16, I16 // 2], 1).astype("<i2").tobytes()
    assert np.allclose(decode(stereo, "s16le", 2), (I16 + I16 // 2) / 2 / 32768, atol=1e-4)


def test_decode_ignores_a_partial_frame() -> None:
    assert decode(b"\x01\x00\x02", "s16le").size == 1


def test_wav_header_fields_and_extensible() -> None:
    h = parse_wav_header(wav_bytes(I16.tobytes(), 48000, 1))
    assert (h.sample_rate_hz, h.channels, h.bits_per_sample, h.encoding) == (48000, 1, 16, "s16le")
    assert h.data_offset == 44 and h.data_bytes == I16.nbytes
    fmt = struct.pack(
        "<HHIIHHHHIH14s",
        0xFFFE,
        2,
        24000,
        24000 * 8,
        8,
        32,
        22,
        32,
        3,
        3,
        b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71",
    )
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 8)
    ext = parse_wav_header(b"RIFF" + struct.pack("<I", len(body) + 8) + body + bytes(8))
    assert ext.extensible and ext.encoding == "f32le" and ext.channels == 2


@pytest.mark.parametrize(
    "blob",
    [
        b"RIFF\x00\x00\x00\x00WAVE",
        b"RIFF\x10\x00\x00\x00WAVEdata\x00",
        b"RIFX\x00\x00\x00\x00WAVEfmt ",
    ],
)
def test_broken_wav_headers_raise_wav_error(blob: bytes) -> None:
    with pytest.raises(WavError):
        parse_wav_header(blob)


@pytest.mark.parametrize(
    "head,kind",
    [
        (b"fLaC\x00\x00\x00\x22", "flac"),
        (b"OggS\x00\x02" + bytes(22) + b"\x13OpusHead", "ogg"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "webm"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska", "matroska"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00", "mp4"),
        (b"FORM\x00\x00\x10\x00AIFFCOMM", "aiff"),
        (b".snd\x00\x00\x00\x18", "au"),
        (b"caff\x00\x01\x00\x00", "caf"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3"),
    ],
)
def test_containers_are_recognised(head: bytes, kind: str) -> None:
    box = sniff_container(head + bytes(64))
    assert box is not None and box.kind == kind


def test_mp3_frames_without_id3_need_a_chain() -> None:
    frame = b"\xff\xfb\x90\x64" + bytes(413)  # MPEG-1 layer III 128 kbit/s 44.1 kHz: 417 bytes
    assert sniff_container(frame * 4) is not None
    # raw PCM starting with an MPEG-like sync word is still raw
    assert sniff_container(b"\xff\xfb" + I16.tobytes()[:4000]) is None


def test_raw_pcm_is_not_a_container() -> None:
    assert sniff_container(I16.tobytes()[:4096]) is None


@pytest.mark.parametrize(
    "name,blob,encoding,channels",
    [
        ("s16le", I16.tobytes(), "s16le", 1),
        ("s16be", I16.astype(">i2").tobytes(), "s16be", 1),
        ("f32le", X.astype("<f4").tobytes(), "f32le", 1),
        ("s32le-padded", (I16.astype("<i4") << 16).tobytes(), "s32le", 1),
        ("s32le-full", (X * 2**31 * 0.9).astype("<i4").tobytes(), "s32le", 1),
        ("s24le", s24_bytes(X), "s24le", 1),
        ("u8", (X * 127 + 128).astype("u1").tobytes(), "u8", 1),
        ("mulaw", mulaw_encode(X), "mulaw", 1),
        ("alaw", alaw_encode(X), "alaw", 1),
        ("stereo-equal", np.repeat(I16, 2).tobytes(), "s16le", 2),
        ("stereo", np.stack([I16, np.roll(I16, 700) // 2], 1).astype("<i2").tobytes(), "s16le", 2),
        ("s16le-quiet", to_i16(X * 0.003).tobytes(), "s16le", 1),
        ("s16be-quiet", to_i16(X * 0.003).astype(">i2").tobytes(), "s16be", 1),
    ],
)
def test_encoding_inference(name: str, blob: bytes, encoding: str, channels: int) -> None:
    g = detect_encoding(blob)
    assert (g.encoding, g.channels) == (encoding, channels), (name, g.reason, g.scores)


def test_all_zero_bytes_default_to_pcm16_with_no_confidence() -> None:
    g = detect_encoding(bytes(4000))
    assert g.encoding == "s16le" and g.confidence == 0.0


def test_read_pcm16_mono_raw_and_wav(tmp_path: pytest.TempPathFactory) -> None:
    raw = tmp_path / "a.raw"  # type: ignore[operator]
    raw.write_bytes(I16.tobytes())
    x, rate = read_pcm16_mono(str(raw))
    assert rate == 24000 and x.dtype == np.float32 and np.allclose(x, I16 / 32768)
    wav = tmp_path / "a.wav"  # type: ignore[operator]
    wav.write_bytes(wav_bytes(np.repeat(I16, 2).tobytes(), 48000, 2))
    y, rate = read_pcm16_mono(str(wav))
    assert rate == 48000 and np.allclose(y, I16 / 32768, atol=1e-4)


@pytest.mark.parametrize("content,needle", [(b"", "empty"), (b"fLaC" + bytes(100), "FLAC")])
def test_read_pcm16_mono_refuses_with_a_reason(
    tmp_path: pytest.TempPathFactory, content: bytes, needle: str
) -> None:
    p = tmp_path / "x.bin"  # type: ignore[operator]
    p.write_bytes(content)
    with pytest.raises(AudioReadError, match=needle):
        read_pcm16_mono(str(p))
    with pytest.raises(AudioReadError, match="folder"):
        read_pcm16_mono(str(tmp_path))
