"""Clips with more than 8 s of speech (issue 14): a claim must be out of place at the label,
or (8 kHz only) hold in each half on its own.

Random espeak-ng voices of the long stress split (benchmarks/sentence_corpus.py, dev half),
one speaker's sentences joined with short pauses, at their true 24 kHz: the general gate
alone called them 16 or 48 kHz. The full table is `bench_rate_accuracy.py --long-stress`.
"""

from __future__ import annotations

import numpy as np
import pytest
from audio_format_signals import espeak, resample, to_i16
from realparts import need_tool

from doctor.audio.format.analyze import validate_bytes


def _long_clip(
    voice: str, pitch: int, speed: int, texts: tuple[str, ...], seconds: float, true_rate: int
) -> np.ndarray:
    """The sentences said in turn, again from the first if need be (50 ms kept around each,
    0.3 s between), cut at `seconds` as labelled at 24 kHz, as captured at `true_rate`."""
    need_tool("espeak-ng")
    parts = []
    sr = 22050
    for text in texts * 3:
        x, sr = espeak(text, voice, pitch, speed)
        loud = np.flatnonzero(np.abs(x) > 0.01)
        pad = int(0.05 * sr)
        parts += [x[max(0, loud[0] - pad) : loud[-1] + pad], np.zeros(int(0.3 * sr))]
    joined = np.concatenate(parts)
    cut = joined[: int(seconds * 24000 / true_rate * sr)]
    assert cut.size / sr * true_rate / 24000 == pytest.approx(seconds, abs=0.01)
    return resample(cut, sr, true_rate)


PEDRO = (
    "Vorrei sapere se è possibile ritirare il pacco direttamente in magazzino invece di "
    "aspettare la consegna a domicilio.",
    "La settimana prossima dobbiamo traslocare e vorrei sapere se è possibile spostare il "
    "contratto della luce al nuovo indirizzo.",
    "Grazie mille.",
    "Il pacco che aspettavo è arrivato aperto e mancano due dei tre articoli che avevo ordinato.",
)
ANTONIO = (
    "Temmuz ayında göl kenarında bir ev kiralamak istiyoruz, altı kişi için yer olup "
    "olmadığını öğrenmek istiyorum.",
    "Merhaba, beni duyuyor musunuz?",
    "Randevumu değiştirmek istiyorum.",
)


@pytest.mark.parametrize(
    ("voice", "pitch", "speed", "texts", "seconds"),
    [
        # a high, fast man: 16 kHz on the whole clip (label 4 %), not in each half
        ("it+pedro", 89, 226, PEDRO, 15.7),
        # a slow, low man at 102 Hz: 48 kHz in both halves; slower audio needs a pitch
        # below any adult's
        ("tr+antonio", 41, 86, ANTONIO, 12.8),
    ],
)
def test_a_long_clip_of_an_unusual_voice_at_24k_is_not_a_mismatch(
    voice: str, pitch: int, speed: int, texts: tuple[str, ...], seconds: float
) -> None:
    y = _long_clip(voice, pitch, speed, texts, seconds, 24000)
    v = validate_bytes(to_i16(y).tobytes())
    assert "sample_rate_mismatch" not in v.codes(), v.stats.get("rate")
    rate = v.stats["rate"]
    assert rate["active_s"] > 8.0  # the long-clip rule, not the short limits
    assert rate["estimated_rate_hz"] != 24000  # the estimate tips; the rule does not claim


@pytest.mark.parametrize(("true_rate", "seconds"), [(8000, 10.0), (48000, 14.0)])
def test_a_long_clip_at_a_far_rate_is_still_caught(true_rate: int, seconds: float) -> None:
    texts = (
        "I ordered a pair of shoes last week, and the tracking page still says that the "
        "parcel is waiting at the warehouse.",
        "My internet connection keeps dropping every evening, usually around eight o'clock, "
        "and it only comes back after I restart the router twice.",
        "Could you send me the invoice again, please?",
        "We are planning a trip to the mountains in July, and I would like to know whether "
        "the cabin near the lake is still available for two weeks.",
    )
    y = _long_clip("en+m1", 40, 160, texts, seconds, true_rate)
    v = validate_bytes(to_i16(y).tobytes())
    assert "sample_rate_mismatch" in v.codes(), v.stats.get("rate")
    rate = v.stats["rate"]
    assert rate["claimed_by"] == "long" and rate["active_s"] > 8.0
    assert (rate["estimated_rate_hz"] > 24000) == (true_rate > 24000)
