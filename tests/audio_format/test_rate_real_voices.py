"""Real speakers' voices (Festival and Flite, recorded from real people) at the wrong rate.

Every other rate test speaks through espeak-ng, a formant synthesiser; these voices have a
real vocal tract's envelope, pitch and rhythm (benchmarks/real_corpus.py; the full table is
`benchmarks/bench_rate_accuracy.py --real`). At a true 24 kHz, and 22.05 kHz (9 % off, not
worth a claim), no sentence may be claimed, under any of the seven conditions; 8 and 48 kHz
must stay caught on the voices they are caught on today (a regression fails).
"""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from audio_format_signals import to_i16
from realparts import need_tool

from doctor.audio.format.analyze import validate_bytes

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import real_corpus  # noqa: E402
import sentence_corpus  # noqa: E402

CONDITIONS = (*sentence_corpus.STRESS_CONDITIONS, *sentence_corpus.CHANNEL_CONDITIONS)
VOICES = {v.name: v for v in real_corpus.VOICES}
# clean sentences caught today (bench_rate_accuracy.py --real): 9 of 17 at 8 kHz, 8 at 48 kHz;
# ked and msu_ru (pitch 301 and 481 Hz, rhythm 11.3 and 9.8 Hz at the label) by their wide-band
# formant spacing (estimate.FAST_SPACING_MIN_HZ)
CAUGHT_8K = (
    "voice_czech_dita",
    "voice_czech_krb",
    "voice_czech_machac",
    "voice_czech_ph",
    "voice_lp_diphone",
    "voice_upc_ca_ona_hts",
    "voice_ked_diphone",
    "voice_msu_ru_nsh_clunits",
    "flite_awb",
)
CAUGHT_48K = (
    "voice_czech_machac",
    "voice_hy_fi_mv_diphone",
    "voice_pc_diphone",
    "voice_kal_diphone",
    "voice_ked_diphone",
    "flite_awb",
    "flite_rms",
    "flite_kal16",
)


@cache
def _sentences(name: str) -> dict[int, sentence_corpus.Sentence]:
    need_tool(*real_corpus.TOOLS)
    try:
        return {s.true_rate_hz: s for _, s in real_corpus.sentences((VOICES[name],))}
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:  # a voice not installed
        pytest.skip(f"{name}: {e}")


def _claim(y: np.ndarray) -> dict[str, object] | None:
    v = validate_bytes(to_i16(np.clip(y, -1.0, 1.0)).tobytes())
    return v.stats.get("rate") if "sample_rate_mismatch" in v.codes() else None


@pytest.mark.parametrize("name", list(VOICES))
@pytest.mark.parametrize("true_rate", [24000, 22050])
def test_a_real_voice_at_24k_or_22k_is_not_a_mismatch(name: str, true_rate: int) -> None:
    sent = _sentences(name)[true_rate]
    assert 2.0 <= sent.labelled_s <= 5.0, sent.name  # one sentence, as labelled
    claims = {}
    for i, cond in enumerate(CONDITIONS):
        claim = _claim(sentence_corpus.condition(sent, cond, seed=i))
        if claim is not None:
            claims[cond] = (claim.get("estimated_rate_hz"), claim.get("reason"))
    assert not claims, (sent.name, claims)


@pytest.mark.parametrize("name", CAUGHT_8K)
def test_a_real_voice_at_8k_is_caught(name: str) -> None:
    sent = _sentences(name)[8000]
    assert 2.0 <= sent.labelled_s <= 5.0, sent.name
    claim = _claim(sent.samples)
    assert claim is not None, sent.name
    assert claim["estimated_rate_hz"] == 8000, claim


@pytest.mark.parametrize("name", CAUGHT_48K)
def test_a_real_voice_at_48k_is_caught(name: str) -> None:
    sent = _sentences(name)[48000]
    assert 2.0 <= sent.labelled_s <= 5.0, sent.name
    claim = _claim(sent.samples)
    assert claim is not None, sent.name
    assert claim["estimated_rate_hz"] in (44100, 48000), claim


@pytest.mark.parametrize("name", ["voice_ked_diphone", "voice_msu_ru_nsh_clunits"])
def test_a_real_voice_read_3x_fast_triples_its_wide_band_spacing(name: str) -> None:
    from doctor.audio.rate.estimate import FAST_SPACING_MIN_HZ
    from doctor.audio.rate.spacing import wide_spacing

    sents = _sentences(name)
    fast = wide_spacing(sents[8000].samples, 24000)
    true = wide_spacing(sents[24000].samples, 24000)
    assert fast is not None and true is not None, name
    assert fast >= FAST_SPACING_MIN_HZ > 1.15 * true, (fast, true)


def _vowel(seconds: float, f0: float = 300.0, rate: int = 24000) -> np.ndarray:
    """A 300 Hz pulse train through resonances at 700, 2100 and 3500 Hz: 1400 Hz apart."""
    from scipy.signal import lfilter

    t = np.arange(int(seconds * rate)) / rate
    phase = np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / rate
    x = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)
    r = np.exp(-np.pi * 120 / rate)
    for fc in (700.0, 2100.0, 3500.0):
        x = lfilter([1.0], [1, -2 * r * np.cos(2 * np.pi * fc / rate), r * r], x)
    return 0.3 * x / np.max(np.abs(x))


def test_wide_band_spacing_needs_voiced_speech() -> None:
    from doctor.audio.rate.spacing import wide_spacing

    rng = np.random.default_rng(3)
    assert wide_spacing(np.zeros(24000 * 3), 24000) is None
    assert wide_spacing(rng.normal(0, 0.1, 24000 * 3), 24000) is None
    # a vowel too short for a track that holds (a handful of frames) gives none...
    assert wide_spacing(_vowel(0.3), 24000) is None
    # ...and 2 s of it reads its 1400 Hz spacing
    spacing = wide_spacing(_vowel(2.0), 24000)
    assert spacing is not None and 1260 < spacing < 1540, spacing
