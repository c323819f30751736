"""One spoken sentence at the wrong rate (issue 14): caught by the one-sentence rule.

espeak-ng sentences of 2-5 s as labelled; the full accuracy table is in
`benchmarks/bench_rate_accuracy.py` (single sentences, dev/heldout/fresh sets).
"""

from __future__ import annotations

import numpy as np
import pytest
from audio_format_signals import espeak, resample, to_i16
from realparts import need_tool

from doctor.audio.format.analyze import validate_bytes


def _sentence(text: str, voice: str, pitch: int, speed: int, true_rate: int) -> np.ndarray:
    need_tool("espeak-ng")
    x, sr = espeak(text, voice, pitch, speed)
    loud = np.flatnonzero(np.abs(x) > 0.01)
    x = x[max(0, loud[0] - 1000) : loud[-1] + 1000]
    return resample(x, sr, true_rate)


@pytest.mark.parametrize(
    ("true_rate", "text"),
    [
        # read 3x fast: a long sentence is under 3 s as labelled
        (
            8000,
            "My internet connection keeps dropping every evening, usually around eight "
            "o'clock, and it only comes back after I restart the router twice.",
        ),
        (48000, "I would like to check the status of my order."),  # read 2x slow
    ],
)
def test_a_sentence_at_a_far_rate_is_caught(true_rate: int, text: str) -> None:
    y = _sentence(text, "en+m1", 40, 160, true_rate)
    assert 2.0 <= len(y) / 24000 <= 5.0  # one sentence, as labelled
    v = validate_bytes(to_i16(y).tobytes())
    assert "sample_rate_mismatch" in v.codes(), v.stats.get("rate")
    rate = v.stats["rate"]
    assert rate["claimed_by"] in ("long", "short")
    assert (rate["estimated_rate_hz"] > 24000) == (true_rate > 24000)


def test_the_same_sentence_at_24k_is_valid() -> None:
    y = _sentence("I ordered a pair of shoes last week.", "en+m1", 40, 160, 24000)
    v = validate_bytes(to_i16(y).tobytes())
    assert "sample_rate_mismatch" not in v.codes(), v.stats.get("rate")
    assert v.verdict == "valid"


@pytest.mark.parametrize(
    ("true_rate", "voice", "pitch", "speed", "text"),
    [
        # a low voice at 44.1/48 kHz whose cues, on one sentence, are too uneven for the
        # general model (its pitch group alone disagrees): the sentence model weighs them
        (48000, "fr+m4", 35, 175, "Je voudrais changer mon rendez-vous."),
        (44100, "es+m5", 50, 185, "Quiero cancelar mi suscripción."),
    ],
)
def test_a_sentence_at_44k_is_caught_by_the_sentence_model(
    true_rate: int, voice: str, pitch: int, speed: int, text: str
) -> None:
    y = _sentence(text, voice, pitch, speed, true_rate)
    assert 2.0 <= len(y) / 24000 <= 5.0
    v = validate_bytes(to_i16(y).tobytes())
    rate = v.stats["rate"]
    assert "sample_rate_mismatch" in v.codes(), rate
    assert rate["claimed_by"] == "sentence", rate
    assert rate["estimated_rate_hz"] in (44100, 48000), rate
    # the same sentence spoken at 24 kHz stays valid
    v24 = validate_bytes(to_i16(_sentence(text, voice, pitch, speed, 24000)).tobytes())
    assert "sample_rate_mismatch" not in v24.codes(), v24.stats.get("rate")


def _bright(x: np.ndarray) -> np.ndarray:
    """A high shelf, +12 dB above ~2.5 kHz (a thin laptop microphone), as the stress split."""
    from scipy.signal import butter, lfilter

    b, a = butter(2, 2500 / 12000, "highpass")
    y = x + 3.0 * lfilter(b, a, x)
    return y / float(np.max(np.abs(y))) * 0.9


def _clipped(x: np.ndarray) -> np.ndarray:
    """Driven 4x past full scale, hard-clipped, as the stress split."""
    return np.clip(x / float(np.max(np.abs(x))) * 4.0, -1.0, 1.0)


@pytest.mark.parametrize(
    ("voice", "pitch", "speed", "text", "bright"),
    [
        # a very low, slow man and a dark robot voice: read as 48 kHz speech by the long gate
        ("fr+Jacky", 3, 104, "Pouvez-vous répéter le numéro, s'il vous plaît?", False),
        ("tr+robosoft5", 44, 110, "Merhaba, beni duyuyor musunuz?", False),
        ("en+iven4", 35, 84, "Is the parking garage open tonight?", False),
        # children's voices through a bright channel: read as 8 kHz speech
        (
            "nb+zac",
            33,
            201,
            "Pakken jeg bestilte for to uker siden har fortsatt ikke kommet frem til postkontoret.",
            True,
        ),
        (
            "en+zac",
            79,
            227,
            "The heating engineer left a note saying that the boiler needs a new pressure "
            "valve before the winter.",
            True,
        ),
    ],
)
def test_unusual_voices_at_24k_are_not_a_mismatch(
    voice: str, pitch: int, speed: int, text: str, bright: bool
) -> None:
    """False claims the stress split found (benchmarks/sentence_corpus.py): every rule's
    posterior was sure; only the physical limits of `RateEstimate._plausible` stop them."""
    y = _sentence(text, voice, pitch, speed, 24000)
    y = _bright(y) if bright else y
    v = validate_bytes(to_i16(y).tobytes())
    assert "sample_rate_mismatch" not in v.codes(), v.stats.get("rate")


@pytest.mark.parametrize(
    ("voice", "pitch", "speed", "text", "condition"),
    [
        # a high, very fast voice: 16 kHz (x1.5) by the long gate, 12.5 Hz rhythm
        (
            "ro+linda",
            99,
            243,
            "Factura de luna trecută este mult mai mare decât de obicei și nu înțeleg de unde "
            "vin costurile.",
            "clean",
        ),
        # a man at espeak's pitch 5, clipped: 48 kHz at 64.7 Hz
        ("tr+m8", 5, 94, "Randevumu değiştirmek istiyorum.", "clipped"),
    ],
)
def test_voices_the_held_out_stress_half_found_are_not_a_mismatch(
    voice: str, pitch: int, speed: int, text: str, condition: str
) -> None:
    """False claims of the stress split's held-out half, after the first limits (16 kHz
    allowed, 12 Hz, 65 Hz); the limits were tightened for them, then a fresh half checked."""
    y = _sentence(text, voice, pitch, speed, 24000)
    y = _clipped(y) if condition == "clipped" else y
    v = validate_bytes(to_i16(y).tobytes())
    assert "sample_rate_mismatch" not in v.codes(), v.stats.get("rate")


def _stress_sentence(text: str, voice: str, pitch: int, speed: int) -> np.ndarray:
    """One sentence as the stress split renders it (benchmarks/sentence_corpus.py: 50 ms kept
    around the speech), at 24 kHz."""
    need_tool("espeak-ng")
    x, sr = espeak(text, voice, pitch, speed)
    loud = np.flatnonzero(np.abs(x) > 0.01)
    pad = int(0.05 * sr)
    return resample(x[max(0, loud[0] - pad) : loud[-1] + pad], sr, 24000)


@pytest.mark.parametrize(
    ("voice", "pitch", "speed", "text"),
    [
        (
            "pl+linda",
            45,
            212,
            "Mój samochód nie chce odpalić od wczoraj wieczorem i muszę dzisiaj dojechać do pracy.",
        ),
        (
            "sk+f5",
            86,
            218,
            "Včera večer mi prestal fungovať internet a technik môže prísť až vo štvrtok "
            "popoludní.",
        ),
    ],
)
def test_a_fast_bright_woman_at_24k_is_not_8k(
    voice: str, pitch: int, speed: int, text: str
) -> None:
    """A reviewer's fresh draws: envelope rhythm 13.0-13.2 Hz through a bright channel, just
    over the modulation limit, at a woman's pitch (218 Hz) or on a pitch track that does not
    hold (302 Hz on 15 % voiced), read as 8 kHz."""
    y = _bright(_stress_sentence(text, voice, pitch, speed))
    v = validate_bytes(to_i16(np.clip(y, -1.0, 1.0)).tobytes())
    assert "sample_rate_mismatch" not in v.codes(), v.stats.get("rate")


@pytest.mark.parametrize("tail_db", [None, -60.0, -45.0])
def test_a_quiet_tail_does_not_lift_a_sentence_past_the_plausibility_limits(
    tail_db: float | None,
) -> None:
    """The limits are for one sentence: a recording that goes on quiet after it (10 s in
    all) is still one sentence of speech, and fr+Jacky, a low slow man, is not 48 kHz."""
    y = _sentence("Pouvez-vous répéter le numéro, s'il vous plaît?", "fr+Jacky", 3, 104, 24000)
    rest = 10 * 24000 - y.size
    # digital silence, or room noise under (-60) and over (-45 dBFS) the active-block gate
    quiet = np.random.default_rng(3).normal(0, 10 ** ((tail_db or 0) / 20), rest)
    y = np.concatenate([y, np.zeros(rest) if tail_db is None else quiet])
    v = validate_bytes(to_i16(y).tobytes())
    assert v.stats["rate"]["duration_s"] > 8.0
    assert "sample_rate_mismatch" not in v.codes(), v.stats.get("rate")


def test_the_speech_length_counts_the_last_partial_second_and_ignores_one_click() -> None:
    """8.6 s of continuous speech read 8.0 s (under the 8 s limit: a true 16 kHz claim was
    lost), and one loud click in 14 s made the rest count as quiet (a reviewer's cases)."""
    from doctor.audio.rate.estimate import _speech_s

    rng = np.random.default_rng(5)
    assert abs(_speech_s(rng.normal(0, 0.1, int(8.6 * 24000)), 24000) - 8.6) < 1e-9
    x = rng.normal(0, 0.1, 15 * 24000)
    x[14 * 24000 :] = rng.normal(0, 0.9, 24000)  # a click, cough or beep at the end
    assert _speech_s(x, 24000) == 15.0
