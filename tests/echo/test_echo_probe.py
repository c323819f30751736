"""The live probe's pure half: the two-sweep signal and its analysis on simulated captures."""

from __future__ import annotations

import numpy as np
import pytest
from echo_cases import corpus

from doctor.audio.echo.analysis import Verdict
from doctor.audio.echo.probe import PROBE_WINDOW, analyse_probe, make_probe
from doctor.audio.echo.report import echo_result
from doctor.result import Status

PROBE = make_probe(corpus.RATE_HZ)


def capture(**kw: object) -> np.ndarray:
    case = corpus.make_case("probe", PROBE.samples, seed=3, capture_extra_s=0.5, **kw)  # type: ignore[arg-type]
    return case.recorded


def test_probe_layout_and_levels() -> None:
    assert PROBE.duration_s == pytest.approx(7.0)
    (a0, a1), (b0, b1) = PROBE.sweeps
    assert (a0, a1, b0, b1) == (0.5, 2.5, 3.5, 5.5)
    x = PROBE.samples
    first = x[int(0.6 * PROBE.rate_hz) : int(2.4 * PROBE.rate_hz)]
    second = x[int(3.6 * PROBE.rate_hz) : int(5.4 * PROBE.rate_hz)]
    rms = lambda s: 20 * np.log10(np.sqrt(np.mean(s**2)))  # noqa: E731
    assert rms(first) == pytest.approx(-20, abs=0.3)
    assert rms(first) - rms(second) == pytest.approx(10, abs=0.1)
    assert np.all(x[: int(0.5 * PROBE.rate_hz)] == 0)
    assert make_probe(16000).samples.size == 7 * 16000  # sweeps capped below Nyquist


def test_echo_of_the_probe_with_delay_erl_and_drift() -> None:
    r = analyse_probe(
        PROBE, capture(erl_db=-35, delay_ms=180, drift_ppm=300, nrl_db=-60), corpus.RATE_HZ
    )
    a = r.analysis
    assert a.verdict is Verdict.ECHO
    assert a.delay_ms is not None and abs(a.delay_ms - 180) <= 2
    assert a.erl_db is not None and abs(a.erl_db - -35) <= 2
    assert a.drift_ppm is not None and abs(a.drift_ppm - 300) <= 20  # two sweeps 3 s apart
    assert all(d is not None and abs(d - 180) <= 2 for d in r.sweep_delays_ms)
    assert not r.erl_disagree and r.erl_spread_db is not None and r.erl_spread_db < 1
    assert not r.near_end_activity
    result = echo_result(a, r.evidence())
    assert result.status is Status.FAIL and result.cause == "echo_detected"
    assert result.fix is not None and result.fix.guide == "echo_loop"
    assert "180 ms" in result.summary


def test_agc_shows_as_disagreeing_sweeps() -> None:
    x = PROBE.samples.copy()
    n = len(x)
    agc = np.ones(n)
    agc[int(3.2 * PROBE.rate_hz) :] = 10 ** (6 / 20)  # mic gain rose 6 dB after the loud sweep
    case = corpus.make_case(
        "agc", x, seed=5, erl_db=-20, delay_ms=50, nrl_db=-70, capture_extra_s=0.0
    )
    r = analyse_probe(PROBE, case.recorded * agc, corpus.RATE_HZ)
    assert r.analysis.verdict is Verdict.ECHO
    assert r.erl_disagree
    assert r.evidence()["sweeps_disagree"] is True


def test_someone_talking_during_the_probe_is_flagged() -> None:
    talk = corpus.speech_like(7.5, seed=8, level_dbfs=-30)
    r = analyse_probe(
        PROBE, capture(erl_db=-25, delay_ms=90, near_end=talk, nrl_db=-65), corpus.RATE_HZ
    )
    assert r.analysis.verdict is Verdict.ECHO
    assert r.near_end_activity


def test_headphones_no_echo_gives_pass_with_floor() -> None:
    r = analyse_probe(PROBE, capture(echo=False, nrl_db=-45), corpus.RATE_HZ)
    a = r.analysis
    assert a.verdict is Verdict.NO_ECHO
    assert a.floor_erl_db is not None and a.floor_erl_db < -60
    result = echo_result(a, r.evidence())
    assert result.status is Status.PASS and result.cause is None
    assert "would have been found" in result.summary


def test_silent_capture_is_no_capture() -> None:
    r = analyse_probe(PROBE, np.zeros(8 * corpus.RATE_HZ, dtype=np.int16), corpus.RATE_HZ)
    assert r.analysis.verdict is Verdict.MIC_SILENT
    result = echo_result(r.analysis, r.evidence())
    assert result.status is Status.FAIL and result.cause == "no_capture"
    assert result.fix is not None and result.fix.guide == "mic_permission"


def test_probe_window_covers_bluetooth_latency() -> None:
    assert PROBE_WINDOW.max_s >= 1.5 and PROBE_WINDOW.min_s <= 0
