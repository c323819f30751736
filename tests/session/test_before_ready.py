"""Audio sent before session.ready, as the sandbox answers it (an invalid_format error on
the same connection, then session.updated and session.ready): one session, and the audio
check names audio_before_ready (review r15 #4)."""

from __future__ import annotations

import base64

import numpy as np
from synth import T0, Script

from doctor.result import Status
from doctor.session import Source, analyze_events


def early_audio_session(level: float = 3000.0) -> Script:
    s = Script().open()
    wave = np.clip(np.sin(np.arange(1200) * 0.05) * level, -32768, 32767)
    pcm = wave.astype("<i2").tobytes()
    b64 = base64.b64encode(pcm).decode()
    for i in range(4):
        s.app("input.audio", T0 + 0.05 + i * 0.05, audio=b64)
    s.svc(
        "session.error",
        T0 + 0.1,
        code="invalid_format",
        message="input.audio before session.ready: wait for session.ready",
        param="type",
    )
    for i in range(60):  # 3 s more at real-time pace, after session.ready
        s.app("input.audio", s.t + i * 0.05, audio=b64)
    s.t += 3
    s.t += 4
    s.end()
    return s


def test_a_refused_early_chunk_does_not_split_the_session() -> None:
    found = analyze_events(early_audio_session().sorted(), Source(shape="synthetic"))
    assert len(found) == 1
    res = {r.id: r for r in found[0].results}
    assert res["session-audio"].cause == "audio_before_ready"
    assert res["session-errors"].cause == "session_error"
    assert found[0].session_id == "sess_" + "a" * 32


def test_audio_before_ready_is_named_even_when_the_content_warns() -> None:
    s = early_audio_session(level=40000.0)  # clipped: the content check warns too
    (f,) = analyze_events(s.sorted(), Source(shape="synthetic"))
    audio = next(r for r in f.results if r.id == "session-audio")
    assert audio.status is Status.WARN
    assert audio.cause == "audio_before_ready"
    assert "also, the app's audio" in audio.summary
