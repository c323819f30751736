"""Quiet audio without speech is one finding, not two: `too_little_signal` (the encoding
cannot be judged) and `low_level`/`silence` told the same story with two fixes. Under a
second it is a pause (validate more audio); from a second on, the microphone's fix."""

from __future__ import annotations

import base64

import numpy as np
from synth import Script

from doctor.audio.format.analyze import validate_bytes
from doctor.result import Status
from doctor.session.analyzer import SessionAnalyzer, Source


def _noise(dbfs: float, seconds: float, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 10 ** (dbfs / 20), int(24000 * seconds)) * 32767
    return x.astype("<i2").tobytes()


def _codes(pcm: bytes) -> dict[str, str]:
    return {f.code: f.severity for f in validate_bytes(pcm).findings}


def test_a_second_of_room_noise_is_one_low_level_warning_with_the_other_as_evidence() -> None:
    v = validate_bytes(_noise(-55, 1.0))
    assert [(f.code, f.severity) for f in v.findings] == [("low_level", "warning")]
    (f,) = v.findings
    assert f.evidence["too_little_signal"]["quiet_fraction"] >= 0.9
    assert not f.message.startswith("speech peaks")  # it may hold no speech at all


def test_near_digital_silence_is_one_silence_warning() -> None:
    assert _codes(_noise(-90, 2.0)) == {"silence": "warning"}


def test_a_short_quiet_chunk_is_one_too_little_signal_info() -> None:
    v = validate_bytes(_noise(-60, 0.5))
    assert [(f.code, f.severity) for f in v.findings] == [("too_little_signal", "info")]
    assert v.findings[0].evidence["low_level"]["active_level_dbfs"] < -45


def test_quiet_speech_keeps_its_speech_wording() -> None:
    t = np.arange(72000) / 24000
    x = 0.003 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    v = validate_bytes((x * 32767).astype("<i2").tobytes())
    (f,) = [f for f in v.findings if f.code == "low_level"]
    assert f.message.startswith("speech peaks")


def test_a_one_second_session_without_speech_lists_one_finding() -> None:
    s = Script().open()
    pcm = _noise(-55, 1.0)
    for i in range(20):
        chunk = base64.b64encode(pcm[i * 2400 : (i + 1) * 2400]).decode()
        s.app("input.audio", s.t + i * 0.05, audio=chunk)
    s.t += 1.0
    s.end()
    a = SessionAnalyzer(Source(shape="test", path="x", sent_logged=True))
    for ev in s.sorted():
        a.feed(ev)
    (found,) = a.finish()
    r = next(r for r in found.results if r.id == "session-audio")
    assert (r.status, r.cause) == (Status.WARN, "low_level")
    assert r.evidence["content"]["findings"] == ["warning:low_level"]
