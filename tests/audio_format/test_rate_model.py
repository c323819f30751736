"""The rate estimator's pure parts: cues that scale with the rate, and the decision rules."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from audio_format_signals import speech_like

from doctor.audio.rate.estimate import (
    CANDIDATES_HZ,
    COVARIANCE,
    FEATURE_NAMES,
    MEAN_C0,
    MEAN_C1,
    MEAN_C2,
    SHORT_COVARIANCE,
    SHORT_MEAN_C0,
    SHORT_MEAN_C1,
    SHORT_MEAN_C2,
    RateEstimate,
    cues_needed,
    estimate_rate,
    log_likelihoods,
    model_mean,
)
from doctor.audio.rate.features import SpeechFeatures, measure, voiced_run_s


def _features(rate: int, seed: int = 4) -> SpeechFeatures:
    """Speech captured at `rate` and read at 24 kHz."""
    f = measure(speech_like(6.0, rate, f0=120, seed=seed), 24000)
    assert isinstance(f, SpeechFeatures), f
    return f


@pytest.mark.parametrize("true_rate", [16000, 48000])
def test_pitch_and_spectrum_scale_with_the_rate(true_rate: int) -> None:
    ref, f = _features(24000), _features(true_rate)
    s = 24000 / true_rate
    assert f.f0_hz / ref.f0_hz == pytest.approx(s, rel=0.08)
    # the spectrum moves as a whole (single quantiles are noisy: vowels differ per syllable)
    pairs = zip(f.spectrum_quantiles_hz, ref.spectrum_quantiles_hz, strict=True)
    ratios = [a / b for a, b in pairs]
    assert math.exp(np.mean(np.log(ratios))) == pytest.approx(s, rel=0.3)
    # faster audio has a faster envelope (the cue scales less than s: it is band-limited)
    assert (f.modulation_hz > ref.modulation_hz) == (s > 1)


def test_voiced_runs_are_measured_in_seconds() -> None:
    v = np.array([0, 1, 1, 1, 0, 1, 0, 1, 1, 1, 1, 1], bool)  # runs of 3, 1 (noise), 5 frames
    assert voiced_run_s(v) == pytest.approx((0.06 + 0.10) / 2)
    assert voiced_run_s(np.zeros(10, bool)) is None


def test_model_constants_are_consistent() -> None:
    n = len(FEATURE_NAMES)
    assert len(MEAN_C0) == len(MEAN_C1) == len(MEAN_C2) == n
    cov = np.asarray(COVARIANCE)
    assert cov.shape == (n, n) and np.allclose(cov, cov.T)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    # pitch moves one-for-one with log s: the fit recovers the physics
    assert MEAN_C1[0] == pytest.approx(1.0, abs=0.1)


def test_likelihood_peaks_at_the_rate_the_vector_was_built_for() -> None:
    for r in CANDIDATES_HZ:
        vec = list(model_mean(math.log(24000 / r)))
        ll = log_likelihoods(vec, 24000, CANDIDATES_HZ)
        assert max(ll, key=lambda k: ll[k]) == r
        if r not in (22050, 24000):  # a model-typical voice at a far rate hangs on no one cue
            assert cues_needed(vec, 24000, r, CANDIDATES_HZ) == []


def _halved(est: RateEstimate) -> RateEstimate:
    """`est` with two halves that each claim what it claims (as a real mismatch does), every
    cue group of each half at least 2 nats ahead of the label."""
    half = replace(est, margins={g: max(m, 2.0) for g, m in est.margins.items()})
    return replace(est, halves=[half, half])


def _est(
    post: dict[int, float], fragile: list[str] | None = None, voiced_frames: int = 150
) -> RateEstimate:
    best = max(post, key=lambda k: post[k])
    feats = {"voiced_frames": voiced_frames}
    return RateEstimate(best, post[best], post, feats, labelled_hz=24000, fragile_on=fragile or [])


def test_mismatch_rules() -> None:
    base = dict.fromkeys(CANDIDATES_HZ, 0.0)
    clear = _est({**base, 16000: 0.9, 24000: 0.05, 22050: 0.05})
    assert clear.mismatch() and clear.family == (16000,)
    # the label's 9 % neighbour counts as the label: 22050 is never claimed from content
    assert not _est({**base, 22050: 0.8, 24000: 0.2}).mismatch()
    assert not _est({**base, 16000: 0.6, 24000: 0.25, 22050: 0.15}).mismatch()
    # one cue group carries it alone: not reported
    assert not _est({**base, 16000: 0.95, 24000: 0.05}, ["spectrum"]).mismatch()
    # too little voiced speech to claim anything (49 frames of 20 ms < 1 s)
    assert not _est({**base, 16000: 0.9, 24000: 0.05, 22050: 0.05}, voiced_frames=49).mismatch()
    # 44.1 vs 48 kHz is a pair: its joint confidence counts, and both are named
    pair = _est({**base, 44100: 0.45, 48000: 0.5, 24000: 0.05})
    assert pair.mismatch() and pair.describe_rate() == "44100 or 48000"
    assert pair.family_confidence == pytest.approx(0.95)


def test_refusals() -> None:
    x = speech_like(3.0, seed=1)
    assert estimate_rate(x[:1000]).rate_hz is None
    assert "band" in estimate_rate(x, 8000).reason
    assert estimate_rate(np.zeros(48000)).rate_hz is None


def test_estimate_reports_its_evidence() -> None:
    est = estimate_rate(speech_like(6.0, 16000, f0=110, seed=3), 24000)
    d = est.to_dict()
    assert d["estimated_rate_hz"] == 16000, d
    assert set(d) >= {"confidence", "family_confidence", "labelled_confidence", "fragile_on"}
    assert abs(sum(est.posterior.values()) - 1) < 1e-9


def _short(
    post: dict[int, float],
    f0: float,
    margins: dict[str, float] | None = None,
    voiced_frames: int = 40,
    duration_s: float = 3.0,
) -> RateEstimate:
    best = max(post, key=lambda k: post[k])
    # an envelope modulation of 12 Hz or more (a claim of faster audio needs one)
    # a pitch track that holds (a slower rate's low pitch needs one)
    feats = {
        "voiced_frames": voiced_frames,
        "f0_hz": f0,
        "modulation_hz": 14.0,
        "voiced_share": 0.5,
    }
    m = {"pitch": 3.0, "spectrum": 2.0, "rhythm": 1.5} if margins is None else margins
    return RateEstimate(
        best, post[best], post, feats, labelled_hz=24000, margins=m, duration_s=duration_s
    )


def test_one_sentence_rule() -> None:
    base = dict.fromkeys(CANDIDATES_HZ, 0.0)
    fast = {**base, 8000: 0.99, 24000: 0.01}
    slow = {**base, 44100: 0.6, 48000: 0.39, 24000: 0.01}
    # 0.8 s voiced: too little for the long gate, enough for one sentence
    assert _short(fast, 300.0).claimed() == "short"
    assert _short(slow, 48.0).claimed() == "short"
    # the pitch on its own must be out of place at the label: a 24 kHz bass or soprano is not
    assert _short(slow, 85.0).claimed() is None
    assert _short(fast, 180.0).claimed() is None
    # every cue group must still point the same way without the others
    assert _short(fast, 300.0, {"pitch": 3.0, "spectrum": -0.2, "rhythm": 1.0}).claimed() is None
    # overwhelming only: 3 % for the label is too much for one sentence
    assert _short({**base, 8000: 0.97, 24000: 0.03}, 300.0).claimed() is None
    # under 0.3 s voiced, and samples over 5 s (the long gate's alone), are not claimed here
    assert _short(fast, 300.0, voiced_frames=14).claimed() is None
    assert _short(fast, 300.0, duration_s=8.0).claimed() is None


def test_long_gate_on_one_sentence_asks_for_an_overwhelming_posterior() -> None:
    """One Spanish sentence of a fast, high voice at 24 kHz read as 16 kHz with 6.7 % left
    for the label: enough for the long gate on long clips, not on a 4 s sample."""
    base = dict.fromkeys(CANDIDATES_HZ, 0.0)
    # (shown as 8 kHz: 16 kHz is claimed at no length any more)
    post = {**base, 8000: 0.9, 24000: 0.067, 22050: 0.033}
    long_clip = _halved(_short(post, 240.0, voiced_frames=133, duration_s=12.0))
    sentence = _short(post, 240.0, voiced_frames=133, duration_s=4.2)
    assert long_clip.claimed() == "long" and sentence.claimed() is None


def _sentence(
    post: dict[int, float],
    margins: dict[str, float] | None = None,
    duration_s: float = 3.0,
    voiced_frames: int = 40,
    f0: float = 55.0,
) -> RateEstimate:
    """An estimate whose general model keeps the label and whose sentence model does not."""
    base = dict.fromkeys(CANDIDATES_HZ, 0.0)
    general = {**base, 24000: 0.9, 44100: 0.1}
    m = {"pitch": 2.0, "spectrum": 4.0, "rhythm": 1.0} if margins is None else margins
    return RateEstimate(
        24000,
        0.9,
        general,
        {"voiced_frames": voiced_frames, "f0_hz": f0, "voiced_share": 0.5},
        labelled_hz=24000,
        duration_s=duration_s,
        sentence_posterior={**base, **post},
        sentence_margins=m,
    )


def test_sentence_model_rule() -> None:
    slow = {44100: 0.7, 48000: 0.27, 24000: 0.03}
    # the general model keeps the label; the sentence model, every cue group agreeing and
    # a pitch below any adult's at 24 kHz, claims 44.1 kHz
    assert _sentence(slow).claimed() == "sentence"
    # at a man's pitch it does not: a dark channel (muffled microphone, dark espeak voices
    # at 24 kHz) moves the spectrum like a slowed woman's voice
    assert _sentence(slow, f0=120.0).claimed() is None
    # nor does it claim faster audio (a high, fast voice at 24 kHz was read as 16 kHz)
    assert _sentence({16000: 0.97, 24000: 0.03}, f0=300.0).claimed() is None
    # the label keeps more than 5 %: not claimed
    assert _sentence({44100: 0.6, 48000: 0.33, 24000: 0.07}).claimed() is None
    # the estimate's family under 90 % (split between faster and slower): not claimed
    assert _sentence({44100: 0.5, 48000: 0.3, 16000: 0.18, 24000: 0.02}).claimed() is None
    # one cue group, left out, flips the preference back to the label: not claimed
    weak = {"pitch": 2.0, "spectrum": -0.1, "rhythm": 1.0}
    assert _sentence(slow, weak).claimed() is None
    # a group that could not be weighed counts as disagreement
    assert _sentence(slow, {"pitch": 2.0, "spectrum": 4.0}).claimed() is None
    # over 5 s (the general gate's alone), or under 0.75 s voiced: not claimed
    assert _sentence(slow, duration_s=6.0).claimed() is None
    assert _sentence(slow, voiced_frames=37).claimed() is None
    assert _sentence(slow, voiced_frames=38).claimed() == "sentence"


def test_settle_reports_the_model_that_claimed() -> None:
    est = _sentence({44100: 0.7, 48000: 0.27, 24000: 0.03}).settle(3.2)
    assert est.claimed() == "sentence" and est.by == "sentence"
    assert est.rate_hz == 44100 and est.confidence == pytest.approx(0.7)
    assert est.family_confidence == pytest.approx(0.97)
    assert est.labelled_confidence == pytest.approx(0.03)
    d = est.to_dict()
    assert d["claimed_by"] == "sentence" and d["estimated_rate_hz"] == 44100
    assert d["duration_s"] == 3.2
    # nothing claimed: the general model's estimate is reported unchanged
    kept = _sentence({24000: 0.9, 44100: 0.1}).settle(3.2)
    assert kept.claimed() is None and kept.rate_hz == 24000 and kept.posterior[44100] == 0.1


def test_sentence_model_moves_with_the_rate() -> None:
    """The one-sentence model's fitted means scale like the general model's: pitch by the
    rate factor itself, the voiced spectrum upward with it, voiced stretches shorter."""
    assert SHORT_MEAN_C1[0] == pytest.approx(1.0, abs=0.1)
    assert all(c > 0.3 for c in SHORT_MEAN_C1[1:6])
    assert SHORT_MEAN_C1[7] < 0
    assert len(SHORT_MEAN_C0) == len(SHORT_MEAN_C2) == len(FEATURE_NAMES)
    cov = np.asarray(SHORT_COVARIANCE)
    assert np.allclose(cov, cov.T) and np.all(np.linalg.eigvalsh(cov) > 0)


def test_on_one_sentence_the_sentence_model_can_veto_the_other_rules() -> None:
    """A fast, high voice at 24 kHz under 25 dB of noise: the general model called it
    16 kHz (label 1 %), the sentence model left the label 51 %: nothing is claimed."""
    # (shown as 8 kHz: a 16 kHz claim is never made on a short clip any more)
    base = dict.fromkeys(CANDIDATES_HZ, 0.0)
    general = {**base, 8000: 0.98, 24000: 0.01, 22050: 0.01}
    doubt = {**base, 8000: 0.49, 24000: 0.4, 22050: 0.11}
    sure = {**base, 8000: 0.75, 24000: 0.2, 22050: 0.05}

    def est(sentence: dict[int, float], duration_s: float) -> RateEstimate:
        return RateEstimate(
            8000,
            0.98,
            general,
            {"voiced_frames": 80, "f0_hz": 300.0, "modulation_hz": 14.0},
            labelled_hz=24000,
            margins={"pitch": 3.0, "spectrum": 2.0, "rhythm": 1.5},
            duration_s=duration_s,
            sentence_posterior=sentence,
        )

    assert est(doubt, 3.0).claimed() is None
    assert est(sure, 3.0).claimed() == "long"  # the sentence model leaves the label 25 %
    assert est(doubt, 8.0).claimed() == "long"  # a long clip: the general gate alone


def test_on_a_short_clip_the_claimed_rate_must_be_physically_out_of_place() -> None:
    """Both models sure, every cue group agreeing, and still 24 kHz: a very low, slow man
    (72 Hz) read as 48 kHz speech, a child (300 Hz, 10 Hz rhythm) as 8 kHz. On a clip under
    PLAUSIBLE_MAX_S, slower audio needs a pitch below any adult's at the label and faster
    audio an envelope modulation of 12 Hz or more or a pitch above any child's; a long clip
    keeps the general gate alone."""
    base = dict.fromkeys(CANDIDATES_HZ, 0.0)
    slow = {**base, 48000: 0.99, 44100: 0.01}
    fast = {**base, 8000: 0.999, 24000: 0.001}

    def est(
        post: dict[int, float], f0: float, modulation: float, duration_s: float
    ) -> RateEstimate:
        best = max(post, key=lambda k: post[k])
        return RateEstimate(
            best,
            post[best],
            post,
            {"voiced_frames": 120, "f0_hz": f0, "modulation_hz": modulation, "voiced_share": 0.6},
            labelled_hz=24000,
            margins={"pitch": 3.0, "spectrum": 5.0, "rhythm": 1.2},
            duration_s=duration_s,
        )

    assert est(slow, 72.0, 9.6, 3.0).claimed() is None  # fr+Jacky p3 s104 at 24 kHz
    assert est(slow, 55.0, 9.6, 3.0).claimed() == "long"  # a slowed man
    assert est(fast, 301.0, 10.3, 3.0).claimed() is None  # nb+zac p33 s201, bright
    assert est(fast, 301.0, 14.0, 3.0).claimed() == "long"  # a man read 3x fast
    assert est(fast, 301.0, 12.9, 3.0).claimed() is None  # ro+linda p99 s243 bright: 12.87
    # ...or a pitch above any child's: a woman at 8 kHz (200 Hz) reads 600 Hz
    assert est(fast, 600.0, 10.5, 3.0).claimed() == "long"
    assert est(fast, 464.0, 10.5, 3.0).claimed() is None  # en+zac p79 s227, bright
    # on a steady pitch track only: tr+Storm p9, bright, "600 Hz" on 9 % voiced
    rough = est(fast, 600.0, 10.5, 3.0)
    assert replace(rough, features={**rough.features, "voiced_share": 0.09}).claimed() is None
    # x1.5 is never claimed on a short clip, however fast or high (nothing is out of range)
    x15 = {**base, 16000: 0.999, 24000: 0.001}
    assert est(x15, 600.0, 16.0, 3.0).claimed() is None
    assert _halved(est(x15, 600.0, 16.0, 12.0)).claimed() is None  # nor on a long one
    # slower audio: 60 Hz is the limit (tr+m8 p5 s94 at 24 kHz, clipped, read 64.7 Hz)
    assert est(slow, 64.7, 9.6, 3.0).claimed() is None
    assert est(slow, 59.0, 9.6, 3.0).claimed() == "long"
    # ...on a pitch track that holds: da+announcer p36 s197, dark, 56 Hz on 21 % voiced
    low = est(slow, 56.1, 9.6, 3.0)
    assert replace(low, features={**low.features, "voiced_share": 0.207}).claimed() is None
    assert replace(low, features={**low.features, "voiced_share": 0.25}).claimed() == "long"
    # beyond PLAUSIBLE_MAX_S faster audio is claimed if each half claims it on its own;
    # slower audio only by the short-clip limits (see the test below)
    assert _halved(est(slow, 72.0, 9.6, 12.0)).claimed() is None
    assert _halved(est(slow, 59.0, 9.6, 12.0)).claimed() == "long"
    assert _halved(est(fast, 301.0, 10.3, 12.0)).claimed() == "long"
    # the sentence model's claim is held to the same limits, on its own estimate
    sent = replace(est(base | {24000: 0.9, 44100: 0.1}, 72.0, 9.6, 3.0), rate_hz=24000)
    sent = replace(
        sent,
        sentence_posterior={**base, 48000: 0.97, 24000: 0.03},
        sentence_margins={"pitch": 2.0, "spectrum": 4.0, "rhythm": 1.0},
    )
    assert sent.claimed() is None
    assert replace(sent, features={**sent.features, "f0_hz": 55.0}).claimed() == "sentence"


def test_over_8_s_of_speech_the_claim_must_hold_in_each_half() -> None:
    """The long stress split (random voices, 8.5-20 s): a fast, high man at 24 kHz (it+pedro
    p89 s226) tipped the whole clip to 16 kHz but not each half on its own (shown as 8 kHz
    here: 16 kHz is no longer claimed on a long clip); a dark robot
    voice (de+robosoft6, 88 Hz), a slow, low man (tr+antonio, 102 Hz) and deep men through a
    dark channel (66-85 Hz) were read as 44.1/48 kHz in both halves: slower audio is claimed
    only out of place at the label by the short-clip limits, which needs no halves."""
    base = dict.fromkeys(CANDIDATES_HZ, 0.0)
    sure = {"pitch": 3.0, "spectrum": 2.0, "rhythm": 1.6}

    def est(post: dict[int, float], f0: float, margins: dict[str, float]) -> RateEstimate:
        best = max(post, key=lambda k: post[k])
        feats = {"voiced_frames": 300, "f0_hz": f0, "modulation_hz": 11.0, "voiced_share": 0.6}
        return RateEstimate(
            best, post[best], post, feats, labelled_hz=24000, margins=margins, duration_s=15.0
        )

    fast = est({**base, 8000: 0.95, 24000: 0.05}, 156.0, sure)
    assert fast.claimed() is None  # no halves measured: nothing to hold
    assert _halved(fast).claimed() == "long"
    # one half's weakest cue group under HALF_MIN_MARGIN: the claim does not hold
    weak = replace(fast, margins={**sure, "rhythm": 1.3})
    assert replace(fast, halves=[fast, weak]).claimed() is None
    # a half that keeps 35 % for the label, or names another rate: neither
    doubt = replace(fast, posterior={**base, 8000: 0.65, 24000: 0.35})
    assert replace(fast, halves=[fast, doubt]).claimed() is None
    other = replace(fast, rate_hz=16000)
    assert replace(fast, halves=[other, fast]).claimed() is None
    # x1.5 (16 kHz) is out of no range: not claimed, whatever the halves say (a child of
    # 250 Hz at 24 kHz, 9 s under 15 dB of noise, was 16 kHz in each half)
    x15 = est({**base, 16000: 0.95, 24000: 0.05}, 250.0, sure)
    assert _halved(x15).claimed() is None
    # slower audio: not by the halves, however low (a deep man at 24 kHz through a dark
    # channel, 66-85 Hz, read x0.5 in both halves)
    slow = {**base, 48000: 0.6, 44100: 0.4}
    assert _halved(est(slow, 88.1, sure)).claimed() is None
    assert _halved(est(slow, 80.0, sure)).claimed() is None
    # out of place at the label as a short clip's claim must be (a man of 110 Hz slowed reads
    # 55 Hz): no halves needed; one half of a very deep man slowed once had a cue at -0.1
    assert est(slow, 55.0, sure).claimed() == "long"
    # 8 s or less of speech: the short-clip limits, not the halves, decide
    assert replace(est(slow, 55.0, sure), duration_s=7.5).claimed() == "long"
