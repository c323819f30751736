"""The echo detector on generated cases with known truth (seeded: same samples every run)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from echo_cases import corpus
from realparts import need_tool

from doctor.audio.echo.analysis import (
    ECHO_S,
    INCONCLUSIVE_S,
    EchoAnalysis,
    LagWindow,
    Verdict,
    analyse_echo,
    detection_gain_db,
    earliest_arrival,
    erl_label,
    search_window,
)
from doctor.audio.echo.dsp import robust_z, sinc_interpolate

RATE = corpus.RATE_HZ


@cache
def talk(seconds: float, seed: int) -> np.ndarray:
    return corpus.speech_like(seconds, seed=seed)


def run(case: corpus.Case, window: LagWindow | None = None) -> EchoAnalysis:
    played, recorded = corpus.pcm16(case)
    if window is None:
        return analyse_echo(played, RATE, recorded, RATE)
    return analyse_echo(played, RATE, recorded, RATE, window=window)


def assert_echo(
    a: EchoAnalysis, case: corpus.Case, delay_tol_ms: float = 2.0, erl_tol_db: float = 3.0
) -> None:
    assert a.verdict is Verdict.ECHO, (a.verdict, a.score_s)
    assert a.score_s is not None and a.score_s >= ECHO_S
    assert a.delay_ms is not None and case.delay_ms is not None
    assert abs(a.delay_ms - case.delay_ms) <= delay_tol_ms, (a.delay_ms, case.delay_ms)
    assert a.erl_db is not None and case.erl_db is not None
    assert abs(a.erl_db - case.erl_db) <= erl_tol_db, (a.erl_db, case.erl_db)


@pytest.mark.parametrize(
    ("erl_db", "delay_ms"), [(-6, 30.0), (-20, 250.0), (-35, 640.5), (-45, 1200.0), (-25, 2300.0)]
)
def test_echo_found_at_its_delay_and_level(erl_db: float, delay_ms: float) -> None:
    case = corpus.make_case(
        "linear", talk(8, 1), seed=2, erl_db=erl_db, delay_ms=delay_ms, nrl_db=-65
    )
    a = run(case)
    assert_echo(a, case)
    assert a.floor_erl_db is not None and a.nrl_db is not None
    assert a.echo_level_dbfs is not None and a.reference_level_dbfs is not None
    assert abs(a.echo_level_dbfs - (a.reference_level_dbfs + erl_db)) < 3.5


@pytest.mark.parametrize("drift_ppm", [-1000.0, 417.0, 1000.0])
def test_clock_drift_is_measured_and_compensated(drift_ppm: float) -> None:
    case = corpus.make_case(
        "drift", talk(10, 3), seed=4, erl_db=-30, delay_ms=180, drift_ppm=drift_ppm, nrl_db=-50
    )
    a = run(case)
    assert_echo(a, case)
    assert a.drift_ppm is not None and abs(a.drift_ppm - drift_ppm) <= 5
    # the delay at the start of the capture follows from the drift
    assert a.delay_start_ms is not None
    mid_s = len(case.recorded) / RATE / 2
    assert abs(a.delay_start_ms - (180 - drift_ppm * 1e-6 * mid_s * 1000)) <= 2.0


def test_reverberant_room_reports_the_direct_path() -> None:
    case = corpus.make_case(
        "room", talk(8, 5), seed=6, erl_db=-25, delay_ms=90, rt60_s=0.8, nrl_db=-55
    )
    a = run(case)
    assert_echo(a, case, erl_tol_db=3.0)


def test_mic_clipping_is_counted_and_echo_still_found() -> None:
    case = corpus.make_case(
        "clip", talk(8, 7), seed=8, erl_db=-10, delay_ms=60, mic_clip_fraction=0.03, nrl_db=-50
    )
    a = run(case)
    assert_echo(a, case, erl_tol_db=4.0)
    assert a.capture_clipped_fraction > 0.01


def test_loudspeaker_clipping_still_found() -> None:
    case = corpus.make_case(
        "spk", talk(8, 9), seed=10, erl_db=-20, delay_ms=75, speaker_clip=0.25, nrl_db=-55
    )
    a = run(case)
    assert_echo(a, case, erl_tol_db=3.0)


def test_double_talk_keeps_delay() -> None:
    near = corpus.speech_like(8.5, seed=11, f0_hz=210, level_dbfs=-26)
    case = corpus.make_case(
        "dt", talk(8, 12), seed=13, erl_db=-20, delay_ms=140, near_end=near, nrl_db=-55
    )
    a = run(case)
    assert_echo(a, case, erl_tol_db=3.0)


def test_weak_echo_near_the_floor_is_found_with_enough_audio() -> None:
    case = corpus.make_case(
        "weak", talk(10, 14), seed=15, erl_db=-50, delay_ms=200, nrl_db=-35
    )  # ENR -15 dB
    a = run(case)
    assert_echo(a, case, erl_tol_db=3.0)


def test_unrelated_speech_is_not_an_echo() -> None:
    other = corpus.speech_like(8, seed=99, f0_hz=130)
    case = corpus.make_case(
        "other", talk(8, 16), seed=17, echo=False, other=other, erl_db=-10, nrl_db=-60
    )
    a = run(case)
    assert a.verdict is Verdict.NO_ECHO
    assert a.score_s is not None and a.score_s < INCONCLUSIVE_S
    assert a.delay_ms is None and a.erl_db is None


def test_noise_only_gives_no_echo_with_its_floor() -> None:
    case = corpus.make_case("noise", talk(6, 18), seed=19, echo=False, nrl_db=-40)
    a = run(case)
    assert a.verdict is Verdict.NO_ECHO
    assert a.nrl_db is not None and abs(a.nrl_db - -40) < 3
    # 6 s of agent audio with pauses: about 5 s active, so the floor is ~24 dB below noise
    assert a.floor_erl_db is not None
    assert a.nrl_db - 25.5 <= a.floor_erl_db <= a.nrl_db - 20
    assert "could not be" in a.describe() or "cannot be excluded" in a.describe()


def test_all_zero_capture_is_not_no_echo() -> None:
    played = (talk(4, 20) * 32767).astype(np.int16)
    a = analyse_echo(played, RATE, np.zeros(len(played), dtype=np.int16), RATE)
    assert a.verdict is Verdict.MIC_SILENT
    assert a.score_s is None
    assert "silence" in a.describe()


def test_too_little_agent_audio_stops_early() -> None:
    played = np.zeros(RATE * 4)
    played[RATE : RATE + RATE // 4] = talk(0.25, 21)
    case = corpus.make_case("short", played, seed=22, erl_db=-10, nrl_db=-50)
    a = run(case)
    assert a.verdict is Verdict.INSUFFICIENT_REFERENCE
    assert a.reference_active_s < 0.5


def test_separate_timelines_need_the_search_window() -> None:
    case = corpus.make_case("offset", talk(8, 23), seed=24, erl_db=-20, delay_ms=150, nrl_db=-55)
    lead = np.zeros(int(1.3 * RATE))  # the recording started 1.3 s before playback began
    shifted = corpus.Case("offset", case.played, np.concatenate([lead, case.recorded]), True)
    played, recorded = corpus.pcm16(shifted)
    a = analyse_echo(played, RATE, recorded, RATE, window=search_window(3.0))
    assert a.verdict is Verdict.ECHO
    assert a.delay_ms is not None and abs(a.delay_ms - 1450) <= 2
    # and the other way round: playback logged before the recording started
    b = analyse_echo(recorded, RATE, played, RATE, window=search_window(3.0))
    assert b.verdict is Verdict.ECHO and b.delay_ms is not None
    assert abs(b.delay_ms + 1450) <= 2


def test_other_sample_rates_are_resampled() -> None:
    from scipy import signal

    case = corpus.make_case("rates", talk(6, 25), seed=26, erl_db=-20, delay_ms=100, nrl_db=-60)
    rec48 = signal.resample_poly(case.recorded, 2, 1)
    a = analyse_echo(case.played, RATE, rec48, 48000)
    assert a.verdict is Verdict.ECHO
    assert a.delay_ms is not None and abs(a.delay_ms - 100) <= 2


def test_evidence_has_units_and_the_track() -> None:
    case = corpus.make_case("ev", talk(6, 27), seed=28, erl_db=-20, delay_ms=100, nrl_db=-60)
    ev = run(case).evidence()
    for key in (
        "delay_ms",
        "erl_db",
        "drift_ppm",
        "noise_level_dbfs",
        "floor_erl_db",
        "score_s",
        "reference_active_s",
        "capture_clipped_fraction",
    ):
        assert key in ev
    assert ev["verdict"] == "echo"
    track = ev["delay_track"]
    strong = [b for b in track if b["z"] > 8]
    assert len(strong) >= 5
    assert all(abs(b["delay_ms"] - 100) < 2 for b in strong)


@pytest.mark.real_parts
def test_same_voice_other_text_is_not_an_echo() -> None:
    need_tool("espeak-ng")
    played = corpus.espeak(" ".join(corpus.SENTENCES[:3]))
    other = corpus.espeak(" ".join(corpus.SENTENCES[6:9]))
    case = corpus.make_case(
        "same-voice", played, seed=29, echo=False, other=other, erl_db=-6, nrl_db=-60
    )
    a = run(case, search_window(3.0))
    assert a.verdict is Verdict.NO_ECHO, a.score_s
    echo_case = corpus.make_case("espeak", played, seed=30, erl_db=-40, delay_ms=333, nrl_db=-55)
    assert_echo(run(echo_case), echo_case)


# --- primitives ----------------------------------------------------------------------------


def test_sinc_interpolation_reproduces_a_shifted_band_limited_signal() -> None:
    n = np.arange(4000)
    x = np.sin(2 * np.pi * 0.0731 * n) + 0.5 * np.sin(2 * np.pi * 0.21 * n + 1)
    pos = n[100:3900] + 0.37
    want = np.sin(2 * np.pi * 0.0731 * pos) + 0.5 * np.sin(2 * np.pi * 0.21 * pos + 1)
    got = sinc_interpolate(x, pos.astype(float))
    assert np.max(np.abs(got - want)) < 1e-2  # -40 dB: far below what the detector needs


def test_robust_z_and_earliest_arrival() -> None:
    rng = np.random.default_rng(0)
    curve = np.abs(rng.standard_normal(2000))
    curve[1000] = 40.0  # strongest reflection
    curve[920] = 25.0  # direct path, 80 lags earlier, over half as strong
    curve[700] = 30.0  # too early to be the same arrival (window 100)
    z = robust_z(curve)
    assert z[1000] > 40
    assert earliest_arrival(z, threshold_z=5.0, window=100) == 920
    assert earliest_arrival(z, threshold_z=1000.0, window=100) == 1000


def test_floor_rule_and_labels() -> None:
    assert detection_gain_db(1.5) == pytest.approx(15.0)
    assert detection_gain_db(3.0) == pytest.approx(20.0)
    assert detection_gain_db(6.0) == pytest.approx(25.0)
    assert detection_gain_db(60.0) == 25.0
    assert erl_label(-10).startswith("loud")
    assert erl_label(-30) == "audible"
    assert erl_label(-55) == "faint"
    with pytest.raises(ValueError):
        LagWindow(1.0, 1.0)
