"""One `input.audio` message from a real app: 50 ms, often the near-silent first one.

Such a chunk has too little signal to judge the encoding: it is read as PCM16 (the API's
format) with an info finding, never as μ-law or u8, and no level finding comes from a
decoding the verdict did not choose.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from audio_format_signals import alaw_encode, espeak, mulaw_encode, resample, speech_like, to_i16
from clirun import assert_valid_report, run_cli
from realparts import need_tool

from doctor.audio.format.analyze import validate_bytes

CHUNK = 1200  # 50 ms at 24 kHz
ENCODING_CODES = {
    "big_endian",
    "float32_samples",
    "int32_samples",
    "int24_samples",
    "uint8_samples",
    "mulaw_samples",
    "alaw_samples",
    "stereo_interleaved",
    "noise",
}
UTTERANCES = (
    ("en", "Hello, I need some help with my order from last week.", 50, 160),
    ("en+f3", "Hi there, can you hear me?", 70, 170),
    ("de", "Guten Tag, ich habe eine Frage zu meiner Rechnung.", 40, 150),
    ("fr+f2", "Bonjour, je voudrais changer mon rendez-vous.", 60, 165),
    ("es+m3", "Hola, quiero cancelar mi pedido, por favor.", 35, 175),
    ("it", "Buongiorno, vorrei parlare con un operatore.", 55, 155),
    ("pt+f4", "Olá, preciso de ajuda com a minha conta.", 65, 160),
    ("en-us+m5", "Yes. Okay.", 45, 190),
)


@pytest.fixture(scope="module")
def speech_starts() -> list[np.ndarray]:
    need_tool("espeak-ng")
    out = []
    for voice, text, pitch, speed in UTTERANCES:
        x, sr = espeak(text, voice, pitch, speed)
        out.append(resample(x, sr, 24000))
    return out


def _first_chunks(clips: list[np.ndarray], n: int, seed: int) -> list[bytes]:
    """The first 50 ms of an utterance as an app sends it: some leading silence (a room's
    noise floor, or digital zeros), then maybe the first syllable's onset."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = clips[i % len(clips)]
        onset = int(np.argmax(np.abs(x) > 0.01))
        lead = np.zeros(int(rng.integers(0, 2 * CHUNK)))  # speech starts 0-100 ms in
        y = np.concatenate([lead, x[max(0, onset - CHUNK // 5) :]])[:CHUNK]
        if rng.random() < 0.75:  # a noise floor from -100 to -45 dBFS, sometimes with hum
            y = y + 10 ** (rng.uniform(-100, -45) / 20) * rng.standard_normal(CHUNK)
            if rng.random() < 0.3:
                t = np.arange(CHUNK) / 24000
                y = y + 10 ** (rng.uniform(-70, -50) / 20) * np.sin(2 * np.pi * 50 * t)
        out.append(to_i16(y).tobytes())
    return out


def test_200_first_chunks_are_never_another_encoding(speech_starts: list[np.ndarray]) -> None:
    chunks = _first_chunks(speech_starts, 200, seed=14)
    wrong = []
    judged = 0
    for i, pcm in enumerate(chunks):
        v = validate_bytes(pcm)
        if v.detected.encoding != "s16le" or v.detected.channels != 1:
            wrong.append((i, v.detected.encoding, v.detected.channels))
        assert not set(v.codes()) & ENCODING_CODES, (i, v.codes())
        assert "dc_offset" not in v.codes() and "clipping" not in v.codes(), (i, v.codes())
        assert v.verdict == "valid", (i, v.codes())
        judged += "too_little_signal" in v.codes()
    assert wrong == []
    # the case the finding exists for is common among first chunks; without it this test
    # would not exercise anything
    assert judged >= 50


def test_a_near_silent_chunk_is_too_little_signal_not_mulaw() -> None:
    rng = np.random.default_rng(3)
    pcm = to_i16(10 ** (-75 / 20) * rng.standard_normal(CHUNK)).tobytes()
    v = validate_bytes(pcm)
    assert v.detected.encoding == "s16le"
    (f,) = [f for f in v.findings if f.code == "too_little_signal"]
    assert f.severity == "info" and f.evidence["quiet_fraction"] >= 0.9
    assert "dc_offset" not in v.codes() and v.verdict == "valid"
    # one chunk of room noise is a pause, not a broken microphone
    assert all(f.severity == "info" for f in v.findings), [(f.code, f.severity) for f in v.findings]


def test_quiet_smooth_speech_is_pcm16_without_the_finding() -> None:
    pcm = to_i16(speech_like(3.0, seed=4, level=0.01)).tobytes()
    v = validate_bytes(pcm)
    assert v.detected.encoding == "s16le" and "too_little_signal" not in v.codes()
    assert "low_level" in v.codes()  # three seconds at -40 dBFS: that is worth a warning
    assert next(f for f in v.findings if f.code == "low_level").severity == "warning"


@pytest.mark.parametrize(("level", "seconds"), [(0.3, 0.5), (0.05, 0.5), (0.01, 3.0)])
@pytest.mark.parametrize("law", ["mulaw", "alaw"])
def test_real_companded_chunks_still_read_as_such(level: float, seconds: float, law: str) -> None:
    """Neither the quiet rule nor the companded-silence one may swallow G.711: μ-law and
    A-law speech, even at -40 dBFS, never read as quiet PCM16 or too little signal."""
    x = resample(speech_like(max(1.0, seconds), seed=9, level=level), 24000, 8000)
    encode = mulaw_encode if law == "mulaw" else alaw_encode
    v = validate_bytes(encode(x[: int(8000 * seconds)]))
    assert v.detected.encoding == law, v.codes()
    assert "too_little_signal" not in v.codes()


def test_one_pasted_message_through_the_cli(speech_starts: list[np.ndarray]) -> None:
    """What a user pastes: one JSON `input.audio` message holding the first chunk."""
    rng = np.random.default_rng(5)
    y = 10 ** (-70 / 20) * rng.standard_normal(CHUNK)
    msg = json.dumps(
        {"type": "input.audio", "audio": base64.b64encode(to_i16(y).tobytes()).decode()}
    )
    r = run_cli("validate-audio", "-", "--json", input=msg)
    assert r.returncode == 0, r.stdout + r.stderr
    report = assert_valid_report(json.loads(r.stdout))
    val = report["validation"]
    assert val["detected"]["encoding"] == "s16le" and val["verdict"] == "valid"
    codes = {f["code"]: f["severity"] for f in val["findings"]}
    assert codes.get("too_little_signal") == "info"
    assert not set(codes) & ENCODING_CODES
