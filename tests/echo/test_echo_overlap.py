"""A recording far shorter than the played audio cannot clear it of echo.

Before the fix the active played audio was counted over the whole file: a 50 ms recording,
or 1000 bytes of random data, "passed" with "an echo stronger than ERL -60 dB would have
been found". What counts is the played audio that overlaps the capture within the lags.
"""

from __future__ import annotations

import numpy as np

from doctor.audio.echo.analysis import (
    FRAME,
    SHARED_TIMELINE,
    Verdict,
    analyse_echo,
    overlap_active_s,
    search_window,
)
from doctor.audio.echo.dsp import FRAME_S

RATE = 24000


def _played(seconds: float = 6.0) -> np.ndarray:
    rng = np.random.default_rng(3)
    return (rng.standard_normal(int(seconds * RATE)) * 3000).astype(np.int16)


def test_a_50_ms_recording_is_insufficient_not_a_pass() -> None:
    played = _played()
    a = analyse_echo(played, RATE, played[: RATE // 20] // 4, RATE)
    assert a.verdict is Verdict.INSUFFICIENT_REFERENCE, a.describe()
    assert a.reference_overlap_s is not None and a.reference_overlap_s <= 0.06
    assert "overlaps the recording" in a.describe()


def test_1000_random_bytes_are_insufficient_not_a_pass() -> None:
    junk = np.frombuffer(np.random.default_rng(5).bytes(1000), dtype=np.int16)
    for window in (SHARED_TIMELINE, search_window(2.0)):
        a = analyse_echo(_played(), RATE, junk, RATE, window=window)
        assert a.verdict is Verdict.INSUFFICIENT_REFERENCE, (window, a.describe())


def test_a_full_length_recording_still_gets_a_verdict() -> None:
    played = _played()
    a = analyse_echo(played, RATE, played // 8, RATE)
    assert a.verdict is Verdict.ECHO, a.describe()
    assert a.reference_overlap_s is not None and a.reference_overlap_s > 5.0


def test_overlap_takes_the_best_lag_in_the_window() -> None:
    active = np.zeros(100, dtype=bool)
    active[50:] = True  # the played audio is active in its second half only
    ten_frames = 10 * FRAME
    assert overlap_active_s(active, ten_frames, 0, 0) == 0.0
    # with the playback starting 50 frames before the capture, all ten capture frames hear it
    assert abs(overlap_active_s(active, ten_frames, -50 * FRAME, 0) - 10 * FRAME_S) < 1e-9
    assert overlap_active_s(active, 0, -50 * FRAME, 0) == 0.0
