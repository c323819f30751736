"""Level statistics and the silent/low/ok verdict of a capture (pure)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from doctor.audio.levels.capture import FLOOR_DBFS, judge, level_stats, to_dbfs


def sine(amplitude: float, n: int = 12000, rate: int = 24000) -> np.ndarray:
    t = np.arange(n) / rate
    return amplitude * np.sin(2 * np.pi * 1000 * t)


def test_full_scale_sine_is_minus_3_dbfs_rms() -> None:
    s = level_stats((sine(1.0) * 32767).astype(np.int16))
    assert s.rms_dbfs == pytest.approx(-3.01, abs=0.05)
    assert s.peak_dbfs == pytest.approx(0.0, abs=0.01)
    assert judge(s) == "ok"


def test_float_and_int16_agree() -> None:
    x = sine(0.25)
    a, b = level_stats(x), level_stats((x * 32768).astype(np.int16))
    assert a.rms_dbfs == pytest.approx(b.rms_dbfs, abs=0.01)


def test_digital_zeros_are_silent_with_a_finite_floor() -> None:
    s = level_stats(np.zeros(12000, dtype=np.int16))
    assert (s.zero_fraction, s.rms_dbfs, s.peak_dbfs) == (1.0, FLOOR_DBFS, FLOOR_DBFS)
    assert judge(s) == "silent"
    assert all(math.isfinite(v) for v in s.evidence().values() if isinstance(v, float))


def test_nearly_all_zeros_is_still_silent() -> None:
    x = np.zeros(12000, dtype=np.int16)
    x[:50] = 20000  # a click at stream start is not a microphone
    assert judge(level_stats(x)) == "silent"


def test_very_quiet_is_low_and_quiet_room_is_ok() -> None:
    low = (sine(1e-4) * 32768).round().astype(np.int16)  # about -83 dBFS RMS
    assert judge(level_stats(low)) == "low"
    rng = np.random.default_rng(1)
    room = (rng.normal(0, 10 ** (-65 / 20), 12000) * 32768).astype(np.int16)  # -65 dBFS noise
    assert judge(level_stats(room)) == "ok"


def test_empty_capture_is_silent() -> None:
    s = level_stats(np.array([], dtype=np.int16))
    assert s.samples == 0 and judge(s) == "silent"


def test_dc_offset_and_unsigned_pcm() -> None:
    assert level_stats(np.full(100, 0.5)).dc_offset == pytest.approx(0.5)
    # uint8 silence is 128: centred, so it counts as zeros
    assert level_stats(np.full(100, 128, dtype=np.uint8)).zero_fraction == 1.0


def test_to_dbfs() -> None:
    assert to_dbfs(1.0) == 0.0 and to_dbfs(0.1) == pytest.approx(-20.0)
    assert to_dbfs(0.0) == FLOOR_DBFS and to_dbfs(float("nan")) == FLOOR_DBFS
    assert to_dbfs(1e-30) == FLOOR_DBFS


@given(arrays(np.int16, st.integers(1, 2000)))
def test_stats_stay_in_range(x: np.ndarray) -> None:
    s = level_stats(x)
    assert FLOOR_DBFS <= s.rms_dbfs <= s.peak_dbfs <= 0.0 + 1e-9
    assert 0.0 <= s.zero_fraction <= 1.0 and 0.0 <= s.peak <= 1.0
    assert judge(s) in ("silent", "low", "ok")
