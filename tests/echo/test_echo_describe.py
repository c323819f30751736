"""The one-line echo summary: whole decibels, never "-0"."""

from __future__ import annotations

from doctor.audio.echo.analysis import EchoAnalysis, Verdict


def test_a_small_negative_erl_is_printed_as_0_db() -> None:
    line = EchoAnalysis(Verdict.ECHO, score_s=300.0, delay_ms=21.0, erl_db=-0.3).describe()
    assert "ERL 0 dB" in line and "-0" not in line


def test_a_small_negative_floor_is_printed_as_0_db() -> None:
    line = EchoAnalysis(Verdict.NO_ECHO, score_s=1.0, floor_erl_db=-0.4).describe()
    assert "ERL 0 dB" in line and "-0" not in line
