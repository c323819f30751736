"""The recording's pure part: two channels on one clock, a jitter buffer, bounded memory."""

from __future__ import annotations

import numpy as np
import soundfile

from doctor.sandbox.recorder import JITTER_S, Recorder, StereoTrack

RATE = 24000


def tone(n: int, value: int) -> np.ndarray:
    return np.full(n, value, np.int16)


def test_chunks_a_little_late_continue_the_stream_and_a_pause_stays_silent() -> None:
    track = StereoTrack()
    track.place(0, 0.0, tone(480, 1))
    track.place(0, 0.02 + JITTER_S / 2, tone(480, 2))  # late, within the jitter buffer
    track.place(0, 2.0, tone(480, 3))  # after a real pause
    out = track.take(track.final_until(3.0))
    left = out[:, 0]
    assert list(left[478:482]) == [1, 1, 2, 2]  # back to back
    assert not left[960 : 2 * RATE].any() and left[2 * RATE] == 3
    assert not out[:, 1].any()


def test_what_is_final_is_released() -> None:
    track = StereoTrack()
    for i in range(100):  # 1 s of agent audio, 10 ms chunks
        track.place(1, i * 0.01, tone(240, 5))
        if i % 10 == 9:
            track.take(track.final_until(i * 0.01))
    assert track.held_s <= 0.2


def test_a_recording_is_stereo_ogg_opus_of_the_sessions_length(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "r" / "audio.ogg")
    rec = Recorder(path, t0=1000.0)
    t = np.arange(RATE) / RATE
    voice = (np.sin(2 * np.pi * 300 * t) * 8000).astype(np.int16)
    for i in range(100):
        rec.agent(voice[i * 240 : (i + 1) * 240], 1000.5 + i * 0.01)
    for i in range(50):
        rec.user(voice[i * 480 : (i + 1) * 480], RATE, 1002.0 + i * 0.02)
    rec.close(1004.0)
    samples, rate = soundfile.read(path, dtype="float32")
    assert rate == 48000 and samples.shape[1] == 2
    assert abs(len(samples) / rate - 4.0) < 0.05

    def rms(ch: int, a: float, b: float) -> float:
        return float(np.sqrt(np.mean(samples[int(a * rate) : int(b * rate), ch] ** 2)))

    assert rms(1, 0.6, 1.4) > 0.1 and rms(1, 2.1, 2.9) < 0.01
    assert rms(0, 2.1, 2.9) > 0.1 and rms(0, 0.6, 1.4) < 0.01


def test_a_stall_longer_than_the_jitter_allowance_leaves_no_lasting_offset() -> None:
    """A client sending 20 ms chunks in real time stalls for 0.8 s, then sends its backlog
    in one burst and goes on in real time: later chunks land at their arrival time."""
    track = StereoTrack()
    chunk = 480  # 20 ms
    arrivals: dict[int, float] = {}
    for k in range(200):
        at = 1.8 if 50 <= k < 90 else k * 0.02  # chunks 50..89 held up by the stall
        arrivals[k] = at
        track.place(0, at, tone(chunk, k + 1))
    left = track.take(track.final_until(5.0))[:, 0]
    for k in (100, 150, 199):
        where = int(np.flatnonzero(left == k + 1)[0]) / RATE
        assert abs(where - arrivals[k]) <= JITTER_S, (k, where, arrivals[k])
    # No hole after the stall: the channel runs on from the burst without a gap (the part
    # of the burst that ran past the allowance is replaced by audio that came on time).
    assert left[:RATE].all() and left[round(1.8 * RATE) : 4 * RATE].all()
