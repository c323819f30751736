"""Estimate the true sample rate of speech from the signal itself (pure).

Audio captured at R Hz but read at L Hz has every frequency scaled by s = L / R and every
duration by 1 / s. `rate_features.measure` takes eight log-cues at the labelled rate: pitch,
five quantiles of the voiced spectrum, the rhythm of the loudness envelope and the length of
voiced stretches. The model says where speech captured at R lands when read at L: a mean
that moves smoothly (quadratic) with log s, and one covariance for how voices and speakers
vary around it. The likelihood of each candidate R, times a prior that favours the labelled
rate, gives a posterior; a band edge that lands on a common Nyquist frequency once scaled
back (audio that was resampled before) adds a little evidence. A mismatch is claimed only
when it survives the loss of any one cue group (pitch, spectrum, rhythm): an unusual voice
or channel fools one of them, a wrong rate moves all three.

What this can and cannot tell: 8 kHz and 16 kHz speech read at 24 kHz (x3, x1.5) and 44.1 or
48 kHz speech (x0.5) are far from ordinary speech and are usually found. 22050 vs 24000 and
44100 vs 48000 differ by 9 %, less than voices differ from each other: the posterior splits
between them and the estimate reports the pair (`family`) with the pair's confidence.
Non-speech (tones, noise, music) is refused.

One sentence (2-5 s) carries too few vowels for the general model, whose covariance comes
from long clips. A second model of the same form (`SENTENCE`), fitted on single sentences,
weighs the cues with the spread one sentence really has. It may claim only slower audio
(44.1/48 kHz read at 24), only where the general model is unsure, the sentence model all
but certain, every cue group agrees and the pitch is below any adult's at the label. A
woman's voice at 44.1 kHz reads at a man's pitch, with a spectrum lower than a man's: but a
dark channel (a muffled microphone, some espeak voices) lowers the spectrum of a 24 kHz
man's voice just as much, so the spectrum cannot claim it alone (measured: five false
claims on 208 varied 24 kHz sentences when it tried). 16 kHz (x1.5) stays hard: a man's
voice read 1.5x fast looks much like a woman's or a child's at the right rate.

On a clip under PLAUSIBLE_MAX_S every rule's claim must also be physically out of place at
the label: slower audio a pitch below any adult's, faster audio a fast envelope rhythm
(a measured veto, see FAST_MIN_MODULATION_HZ). Random voices showed why: a very low, slow
man and a child at 24 kHz fooled both models at once; only these limits told them apart.
Over it, slower audio is claimed only so out of place; faster audio (8 kHz) that is not
must hold in each half of the clip on its own (a wrong rate is a property of the whole
file; a borderline voice flips in a half; see HALF_MIN_MARGIN).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from doctor.audio.rate.features import HOP_S, SpeechFeatures, measure
from doctor.audio.rate.spacing import wide_spacing

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

CANDIDATES_HZ = (8000, 16000, 22050, 24000, 44100, 48000)
COMMON_NYQUIST_HZ = (4000.0, 8000.0, 11025.0, 12000.0, 16000.0, 22050.0, 24000.0)
NEAR = 1.1  # rates within 10 % of each other cannot be told apart from the voice
PRIOR_LABELLED = 0.5  # most audio is at the rate it claims
EDGE_BONUS = 1.0  # log-likelihood for a band edge that scales back onto a common Nyquist
MIN_LABELLED_HZ = 11025  # the spectrum cues need 5 kHz of band
# Below this much voiced speech the cues are too few to claim a rate (0.3 s of a low,
# slow voice read as 48 kHz speech): the estimate is shown, the mismatch is not reported.
MIN_CLAIM_VOICED_S = 1.0
TEMPERATURE = 1.0
LONG_MAX_LABELLED = 0.3  # the general gate: the label keeps at most this...
LONG_MIN_FAMILY = 0.6  # ...and the estimate's family at least this
# One sentence (issue 14): a clip this short (as labelled) may also be claimed by a
# separate, stricter rule when the long-clip gate above declines. The posterior must be
# overwhelming, and dropping any one cue group must still leave the estimate ahead of
# the label (the long gate asks for e:1; here the whole-model posterior carries the rest).
SHORT_CLIP_S = 5.0
SHORT_MIN_VOICED_S = 0.3
SHORT_MAX_LABELLED = 0.02
SHORT_MIN_FAMILY = 0.95
SHORT_MIN_MARGIN = 0.0
# ...and the pitch, on its own, must be out of place at the labelled rate: below any adult
# voice for a claim of slower audio (44.1/48 kHz read at 24: 50-110 Hz), above a man's for
# a claim of faster audio (8 kHz read at 24 kHz: x3). The model alone once took 0.3 s of a
# low synthetic voice at 24 kHz for 44.1 kHz speech with 99 % (the property test's example).
SHORT_SLOW_MAX_F0_HZ = 65.0
SHORT_FAST_MIN_F0_HZ = 220.0
# The sentence model's rule (see SHORT_MEAN_C0): only a slower true rate; its posterior
# leaves the label at most 5 %, gives the estimate's family at least 90 %, without any one
# cue group the rest still prefer the estimate, and the pitch is out of place at the label
# (SHORT_SLOW_MAX_F0_HZ). Without that last condition it claimed 44.1 kHz for dark 24 kHz
# voices at 90-150 Hz (5 of 208 varied espeak sentences), and 16 kHz for a high, fast one.
# No band-edge bonus: that is a resampler's trace.
# It needs more voiced speech than the pitch-gated rule: from 0.3 s of a low, slow voice at
# 24 kHz (the property test's example) it claimed 44.1 kHz at 97 %; slowed speech (44.1/48
# kHz read at 24) has at least 0.85 s voiced in any 2-5 s sentence of the train split.
SENTENCE_MIN_VOICED_S = 0.75
SENTENCE_MAX_LABELLED = 0.05
# ...and on a clip that short, no rule claims while the sentence model leaves the label more
# than the general gate's own limit (0.3): one sentence of a fast, high voice at 24 kHz under
# 25 dB of noise was claimed 16 kHz by the general gate; the sentence model gave the label 51 %.
SENTENCE_VETO_LABELLED = 0.3
SENTENCE_MIN_FAMILY = 0.9
SENTENCE_MIN_MARGIN = 0.0
# Whatever rule claims, a clip this short (as labelled) must also look physically out of
# place at the label. Random espeak-ng voices (the benchmark's stress split: any language,
# variant, pitch 0-99, speed 80-260) fooled every rule on one sentence: a very low, slow
# man (fr+Jacky p3 s104, 72 Hz) or a dark robot voice read as 48 kHz speech; a child or a
# high, fast woman (zac, anika, Alicia; 280-460 Hz) read as 8 or 16 kHz under noise or a
# bright channel (37 claims on 1,000 true 24 kHz clips of the dev half). Both models were
# sure; only these two limits separated them there:
# - slower audio (44.1/48 kHz read at 24, x0.5) must have a pitch below any adult's at the
#   label (a man of 120 Hz slowed reads 60): a slowed woman (80-130 Hz) is given up;
# - faster audio (8 kHz read at 24, x3) must have an envelope modulation of at least 13 Hz:
#   none of the dev half's false claims reached 12 (at most 11.9 Hz); 8 kHz speech read x3
#   mostly does. A measured limit, not a physical bound: 23 % of the split's true 24 kHz
#   clips exceed 12 Hz too (noise, fast talkers), so it may only veto a claim, never make one.
PLAUSIBLE_MAX_S = 8.0  # a stressed sentence ran to 5.1 s; long clips keep their own record
FAST_MIN_MODULATION_HZ = 13.0
# ...or a pitch above any child's at the label (a woman's 200 Hz at 8 kHz reads 600 Hz; the
# highest false claim, a child's voice, 464 Hz): long clips of women at 8 kHz need it. Only
# on a steady pitch track: a bright, rough voice at 24 kHz tracked at 600 Hz on 9 % voiced.
FAST_MIN_F0_HZ = 520.0
FAST_MIN_VOICED_SHARE = 0.3
# The modulation limit has little margin (true 24 kHz clips at 13.0-13.2 Hz were found
# after it was set), so it also needs the pitch of at least a man's 80 Hz read x3: that
# stops a woman at 218 Hz (pl+linda p45 s212, bright).
FAST_MODULATION_MIN_F0_HZ = 240.0
# ...below this rhythm only: both false claims were at 13.0-13.2 Hz, while deep men at 8 kHz
# (f0 228-238 Hz read x3) that the pitch limit alone lost were at 13 Hz and up, most at 14.5+
FAST_MODULATION_SURE_HZ = 14.0
# ...and below it, a pitch track that holds: the other false claim (sk+f5 p86 s218, bright,
# 302 Hz at 13.0 Hz) tracked on 15 % voiced
FAST_MODULATION_MIN_VOICED_SHARE = 0.25
# ...or, for 8 kHz only, formant spacing over a wide band that no true 24 kHz voice reaches
# (real speakers read x3 are slower than espeak and keep a child's pitch, 298-481 Hz, and a
# rhythm of 9.8-12.3 Hz). benchmarks/fast_spacing.py (spacing.py's measure, lifter 3.5 ms) on
# the stress dev half under 7 conditions, the 17 real voices and the dev/train sets: at a
# pitch of 280 Hz and up, true 24 / 22.05 kHz rows reach at most 1926 Hz (en+zac p79 s227,
# 22.05 kHz, dark); the limit is 15 % above. Below 280 Hz true rows reach 3369 Hz (fr+Lee
# bright, 85 Hz): no limit there. A reviewer's held-out and fresh halves reached 1975 Hz
# (nb+steph p99 s216, 22.05 kHz, bright): 12 % under the limit, not 15.
FAST_SPACING_MIN_HZ = 2215.0
FAST_SPACING_MIN_F0_HZ = 280.0
SPACING_RATE_HZ = 8000  # the claim it may allow
SPACING_LABEL_HZ = 24000  # the label it was measured at
# the speech's own length for the limits: 1 s blocks within this of the loud ones (their 90th
# percentile; a room or hiss tail above the -50 dBFS gate that picks the blocks is not speech)
SPEECH_BLOCK_DB = 20.0
PLAUSIBLE_SLOW_MAX_F0_HZ = 60.0
# ...on a pitch track that holds, as for faster audio: through a dark channel (-12 dB above
# 2 kHz) da+announcer p36 s197 at 24 kHz tracked at 56 Hz on 21 % voiced and was read as
# 48 kHz. On the dev rows (12 dev voices and 60 stress dev draws, six conditions) no 24 kHz
# sentence under 65 Hz had more than 20.7 % voiced; 10 of 426 caught slowed ones had less
# than 25 % (the lowest 21.8 %): they are given up.
PLAUSIBLE_SLOW_MIN_VOICED_SHARE = 0.25
# x1.5 (16 kHz read at 24) puts nothing out of human range: a man's 100-130 Hz reads as a
# woman's, his syllables as a fast talker's. On a short clip it is never claimed; on a long
# one neither (a child of 250 Hz at 24 kHz under 15 dB of noise, 9 s, was claimed 16 kHz in
# each half: the property test found it after the long-clip rule below was frozen).
NEVER_ON_SHORT_FACTOR = (1.3, 1.7)
# Over PLAUSIBLE_MAX_S of speech the general gate ("long") claims where the claimed rate is
# out of place at the label by the short-clip limits above, or else, for faster audio only
# (8 kHz, x3), when the claim holds in each half of the clip on its own (issue 14;
# benchmarks/sentence_corpus.py's long stress split: 16 false claims on 240 true 24 kHz
# clips of its dev half, 8.5-20 s of random voices, with the general gate alone):
# - a wrong rate is a property of the whole file, so each half's estimate must be in the
#   claimed family, the label at most 30 %, and without any one cue group the rest still
#   favour it by HALF_MIN_MARGIN. A voice that only just tips the whole clip over flips in
#   a half;
# - slower audio (44.1/48 kHz read at 24, x0.5) only by the short-clip limits (a pitch below
#   any adult's). The halves with a pitch below 85 Hz were tried and claimed a deep man
#   (66-85 Hz) at 24 kHz through a dark channel (-12 dB above 2 kHz): both halves read x0.5
#   (pt+Michael p9 s114, ca+travis p4, sv+klatt3 p11; 9 of 25 of the long property test's
#   low men); no pitch limit between 60 and 85 Hz parted them from slowed voices;
# - x1.5 (16 kHz) is not claimed at all (see NEVER_ON_SHORT_FACTOR).
# So long clips of slowed voices with a pitch over 60 Hz at the label are given up.
# NOT a proof: frozen, the split's heldout and fresh halves (240 true 24 kHz clips each) were
# read once and still had 5 and 1 false claims (x1.5 aside): fr+gustave p19 s132 at 76-84 Hz
# as 44.1 kHz under four conditions (now refused: slower), sv+zac p24 (287 Hz) and ro+Alicia
# p96 (411 Hz) through the bright channel as 8 kHz. Left as found: tuning on them would leave
# nothing held out.
HALF_MIN_MARGIN = 1.5
# These values were tightened after the stress split's held-out half had been read once
# (6 false claims on 1,000 true 24 kHz clips with 12 Hz / 65 Hz and 16 kHz allowed: ro+linda
# p99 s243 and ro+aunty p56 s182 at 12.5-14.6 Hz, tr+m8 p5 at 64.7 Hz, tr+Storm bright at
# "600 Hz" on 9 % voiced); the "fresh" half was then drawn and evaluated once.

FEATURE_NAMES = (
    "log_f0_hz",
    "log_spectrum_q10_hz",
    "log_spectrum_q25_hz",
    "log_spectrum_q50_hz",
    "log_spectrum_q75_hz",
    "log_spectrum_q90_hz",
    "log_modulation_hz",
    "log_voiced_run_s",
)
# independent kinds of evidence (indices into FEATURE_NAMES)
CUE_GROUPS = {"pitch": (0,), "spectrum": (1, 2, 3, 4, 5), "rhythm": (6, 7)}
ROBUST_MARGIN = 1.0  # without any one group, the rest must still favour the rate e:1

# --- fitted constants -------------------------------------------------------------------
# Pasted from `python benchmarks/bench_rate_accuracy.py --fit` (train split of
# benchmarks/rate_corpus.py only; the accuracy it prints is on the held-out test split).
# Mean of each feature for speech captured at R and read at L: C0 + C1 ls + C2 ls^2,
# ls = log(L / R).
MEAN_C0: tuple[float, ...] = (
    4.9842,
    5.7953,
    6.2631,
    6.9362,
    7.7424,
    8.1045,
    2.0296,
    -2.3779,
)
MEAN_C1: tuple[float, ...] = (
    1.0097,
    0.8121,
    0.77248,
    0.74134,
    0.56904,
    0.39972,
    0.35404,
    -0.1987,
)
MEAN_C2: tuple[float, ...] = (
    -0.0028938,
    0.11821,
    0.027941,
    -0.17468,
    -0.33303,
    -0.22327,
    0.17721,
    0.1394,
)
# residual covariance (shrunk 10 % toward its diagonal)
COVARIANCE: tuple[tuple[float, ...], ...] = (
    (
        0.16401,
        0.026826,
        0.042341,
        0.015075,
        0.023241,
        0.036272,
        -0.059373,
        0.11287,
    ),
    (
        0.026826,
        0.043467,
        0.053593,
        0.041939,
        0.024171,
        0.015165,
        -0.0061361,
        0.03464,
    ),
    (
        0.042341,
        0.053593,
        0.14103,
        0.13724,
        0.071228,
        0.029714,
        0.018089,
        0.092997,
    ),
    (
        0.015075,
        0.041939,
        0.13724,
        0.24304,
        0.10543,
        0.029637,
        0.070483,
        0.11717,
    ),
    (
        0.023241,
        0.024171,
        0.071228,
        0.10543,
        0.080683,
        0.034992,
        0.013732,
        0.062261,
    ),
    (
        0.036272,
        0.015165,
        0.029714,
        0.029637,
        0.034992,
        0.04539,
        -0.026767,
        0.022051,
    ),
    (
        -0.059373,
        -0.0061361,
        0.018089,
        0.070483,
        0.013732,
        -0.026767,
        0.11693,
        0.020694,
    ),
    (
        0.11287,
        0.03464,
        0.092997,
        0.11717,
        0.062261,
        0.022051,
        0.020694,
        0.23481,
    ),
)
# The one-sentence model: the same form, fitted on 2-5 s sentences (`bench_rate_accuracy.py
# --fit-short`, sentence_corpus "train" split: 60 voices, six languages). A long-clip model
# measures a sentence's cues as steadier than they are (a few vowels, one intonation
# phrase); fitted on sentences, its covariance says how much one sentence varies.
SHORT_MEAN_C0: tuple[float, ...] = (
    4.8531,
    5.9666,
    6.6815,
    7.6231,
    8.1302,
    8.261,
    2.3675,
    -2.3804,
)
SHORT_MEAN_C1: tuple[float, ...] = (
    1.0303,
    0.79092,
    0.61879,
    0.41404,
    0.52878,
    0.54711,
    0.12285,
    -0.42304,
)
SHORT_MEAN_C2: tuple[float, ...] = (
    -0.0014757,
    -0.070133,
    -0.21867,
    -0.44949,
    -0.59831,
    -0.46376,
    0.19981,
    0.49021,
)
SHORT_COVARIANCE: tuple[tuple[float, ...], ...] = (
    (
        0.20789,
        0.028224,
        0.050523,
        0.054664,
        0.037002,
        0.042411,
        -0.049236,
        0.20179,
    ),
    (
        0.028224,
        0.052586,
        0.047728,
        0.036685,
        0.015926,
        0.014582,
        -0.0057484,
        0.018205,
    ),
    (
        0.050523,
        0.047728,
        0.11841,
        0.083508,
        0.032736,
        0.027136,
        -0.0098137,
        0.039846,
    ),
    (
        0.054664,
        0.036685,
        0.083508,
        0.12407,
        0.04647,
        0.036108,
        -0.010185,
        0.047696,
    ),
    (
        0.037002,
        0.015926,
        0.032736,
        0.04647,
        0.03318,
        0.023432,
        -0.010492,
        0.036475,
    ),
    (
        0.042411,
        0.014582,
        0.027136,
        0.036108,
        0.023432,
        0.032518,
        -0.012844,
        0.043076,
    ),
    (
        -0.049236,
        -0.0057484,
        -0.0098137,
        -0.010185,
        -0.010492,
        -0.012844,
        0.06156,
        -0.049287,
    ),
    (
        0.20179,
        0.018205,
        0.039846,
        0.047696,
        0.036475,
        0.043076,
        -0.049287,
        0.32062,
    ),
)
# --- end of fitted constants ------------------------------------------------------------


@dataclass
class RateEstimate:
    rate_hz: int | None  # None: could not estimate (not speech, too short)
    confidence: float  # posterior of rate_hz
    posterior: dict[int, float] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    labelled_hz: int = 24000
    # cue groups the estimate hangs on (it would flip to the label without any one of them)
    fragile_on: list[str] = field(default_factory=list)
    # per cue group left out: how far the rest still prefers the estimate to the label
    margins: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0  # of the sample as labelled (validate-audio: pauses included)
    # the one-sentence model's view of the same cues (see SENTENCE)
    sentence_posterior: dict[int, float] = field(default_factory=dict)
    sentence_margins: dict[str, float] = field(default_factory=dict)
    by: str | None = None  # the rule that claimed, once `settle` has swapped models
    active_s: float = 0.0  # of the audio the cues were measured on (as labelled)
    # over PLAUSIBLE_MAX_S of speech: each half's own estimate (see HALF_MIN_MARGIN)
    halves: list[RateEstimate] = field(default_factory=list)

    @property
    def family(self) -> tuple[int, ...]:
        """The candidates within 10 % of the estimate: the voice cannot separate them."""
        if self.rate_hz is None:
            return ()
        return tuple(r for r in self.posterior if _near(r, self.rate_hz))

    @property
    def family_confidence(self) -> float:
        return sum(self.posterior[r] for r in self.family)

    @property
    def labelled_confidence(self) -> float:
        """Posterior that the audio is at (or within 10 % of) its labelled rate."""
        return sum(p for r, p in self.posterior.items() if _near(r, self.labelled_hz))

    def mismatch(
        self, max_labelled: float = LONG_MAX_LABELLED, min_family: float = LONG_MIN_FAMILY
    ) -> bool:
        """Whether the content speaks against the labelled rate clearly enough to say so.

        On a clip under SHORT_CLIP_S the label's share may be at most SHORT_MAX_LABELLED
        (one sentence of a fast, high voice at 24 kHz was read as 16 kHz with 6.7 %)."""
        voiced_s = self.features.get("voiced_frames", 0) * HOP_S
        if 0 < self.duration_s <= SHORT_CLIP_S:
            max_labelled = min(max_labelled, SHORT_MAX_LABELLED)
        return (
            self.rate_hz is not None
            and voiced_s >= MIN_CLAIM_VOICED_S
            and not _near(self.rate_hz, self.labelled_hz)
            and self.labelled_confidence <= max_labelled
            and self.family_confidence >= min_family
            and not self.fragile_on
        )

    def short_mismatch(self) -> bool:
        """The one-sentence rule: only for clips under SHORT_CLIP_S, and only where the
        posterior is overwhelming and every cue group agrees in direction."""
        voiced_s = self.features.get("voiced_frames", 0) * HOP_S
        return (
            self.rate_hz is not None
            and 0 < self.duration_s <= SHORT_CLIP_S
            and voiced_s >= SHORT_MIN_VOICED_S
            and not _near(self.rate_hz, self.labelled_hz)
            and self.labelled_confidence <= SHORT_MAX_LABELLED
            and self.family_confidence >= SHORT_MIN_FAMILY
            and len(self.margins) == len(CUE_GROUPS)
            and min(self.margins.values()) >= SHORT_MIN_MARGIN
            and self._pitch_out_of_place()
        )

    def _pitch_out_of_place(self, rate_hz: int | None = None) -> bool:
        f0 = self.features.get("f0_hz")
        rate_hz = self.rate_hz if rate_hz is None else rate_hz
        if not f0 or rate_hz is None:
            return False
        if rate_hz > self.labelled_hz:  # claimed slower: the voice reads too low
            return bool(f0 < SHORT_SLOW_MAX_F0_HZ)
        return bool(f0 > SHORT_FAST_MIN_F0_HZ)

    def sentence_mismatch(self) -> bool:
        """The sentence model's rule: a clip under SHORT_CLIP_S whose sentence posterior
        all but rules out the label for a slower rate, every cue group pointing the same
        way and the pitch too low for an adult at the label."""
        post = self.sentence_posterior
        voiced_s = self.features.get("voiced_frames", 0) * HOP_S
        if not post or not 0 < self.duration_s <= SHORT_CLIP_S or voiced_s < SENTENCE_MIN_VOICED_S:
            return False
        best = max(post, key=lambda k: post[k])
        label = sum(p for r, p in post.items() if _near(r, self.labelled_hz))
        family = sum(p for r, p in post.items() if _near(r, best))
        return (
            best > self.labelled_hz
            and not _near(best, self.labelled_hz)
            and label <= SENTENCE_MAX_LABELLED
            and family >= SENTENCE_MIN_FAMILY
            and len(self.sentence_margins) == len(CUE_GROUPS)
            and min(self.sentence_margins.values()) >= SENTENCE_MIN_MARGIN
            and self._pitch_out_of_place(best)
        )

    def claimed(self) -> str | None:
        """Which rule claims a mismatch: "long" (the general gate), "short" (its pitch-gated
        one-sentence variant), "sentence" (the sentence model), or None. On a clip under
        PLAUSIBLE_MAX_S the claimed rate must also be physically out of place at the label."""
        if self.by is not None:
            return self.by
        if self._sentence_disagrees():
            return None
        rule, rate = None, self.rate_hz
        if self.mismatch():
            rule = "long"
        elif self.short_mismatch():
            rule = "short"
        elif self.sentence_mismatch():
            post = self.sentence_posterior
            rule, rate = "sentence", max(post, key=lambda k: post[k])
        if rule is None or rate is None or not self._plausible(rate):
            return None
        if rule == "long" and not self._holds(rate):
            return None
        return rule

    def _speech_length(self) -> float:
        """The speech's own length: pauses or a silent tail must not lift a sentence past
        the short-clip limits."""
        return min(self.duration_s, self.active_s) if self.active_s else self.duration_s

    def _holds(self, rate_hz: int) -> bool:
        """Over PLAUSIBLE_MAX_S: `rate_hz` is out of place at the label as on a short clip,
        or it is faster audio (8 kHz) that each half claims on its own (see
        HALF_MIN_MARGIN)."""
        if self._speech_length() <= PLAUSIBLE_MAX_S or self._plausible(rate_hz, short=True):
            return True
        if not _halves_may_claim(rate_hz, self.labelled_hz):
            return False
        return len(self.halves) == 2 and all(h._half_claims(rate_hz) for h in self.halves)

    def _half_claims(self, rate_hz: int) -> bool:
        return (
            self.rate_hz is not None
            and _near(self.rate_hz, rate_hz)
            and self.labelled_confidence <= LONG_MAX_LABELLED
            and self.family_confidence >= LONG_MIN_FAMILY
            and len(self.margins) == len(CUE_GROUPS)
            and min(self.margins.values()) >= HALF_MIN_MARGIN
        )

    def _plausible(self, rate_hz: int, short: bool = False) -> bool:
        """On a short clip (or `short`): slower audio has a pitch below any adult's at the
        label (on a pitch track that holds), faster audio a fast envelope rhythm or a pitch
        above any child's (see PLAUSIBLE_MAX_S)."""
        length = self._speech_length()
        if not short and not 0 < length <= PLAUSIBLE_MAX_S:
            return True
        f0 = self.features.get("f0_hz")
        if rate_hz > self.labelled_hz:
            held = self.features.get("voiced_share", 0.0) >= PLAUSIBLE_SLOW_MIN_VOICED_SHARE
            return bool(f0 and f0 < PLAUSIBLE_SLOW_MAX_F0_HZ and held)
        low, high = NEVER_ON_SHORT_FACTOR
        if low < self.labelled_hz / rate_hz < high:
            return False
        modulation = self.features.get("modulation_hz")
        voiced = self.features.get("voiced_share", 0.0)
        spacing = self.features.get("wide_spacing_hz")
        return bool(
            (f0 and f0 >= FAST_MIN_F0_HZ and voiced >= FAST_MIN_VOICED_SHARE)
            or (
                spacing
                and _near(rate_hz, SPACING_RATE_HZ)
                and 0 < length <= PLAUSIBLE_MAX_S
                and spacing >= FAST_SPACING_MIN_HZ
            )
            or (modulation and modulation >= FAST_MODULATION_SURE_HZ)
            or (
                modulation
                and modulation >= FAST_MIN_MODULATION_HZ
                and f0
                and f0 >= FAST_MODULATION_MIN_F0_HZ
                and voiced >= FAST_MODULATION_MIN_VOICED_SHARE
            )
        )

    def _sentence_disagrees(self) -> bool:
        """On one sentence, the sentence model still gives the label a fair chance."""
        post = self.sentence_posterior
        if not post or not 0 < self.duration_s <= SHORT_CLIP_S:
            return False
        label = sum(p for r, p in post.items() if _near(r, self.labelled_hz))
        return label > SENTENCE_VETO_LABELLED

    def settle(self, duration_s: float) -> RateEstimate:
        """This estimate for a sample of `duration_s` (as labelled, pauses included): when
        only the sentence model claims, its posterior is the one reported."""
        est = replace(self, duration_s=duration_s, active_s=self.active_s or self.duration_s)
        if est.claimed() != "sentence":
            return est
        post = est.sentence_posterior
        best = max(post, key=lambda k: post[k])
        return replace(
            est,
            rate_hz=best,
            confidence=post[best],
            posterior=post,
            margins=est.sentence_margins,
            fragile_on=[],
            by="sentence",
        )

    def describe_rate(self) -> str:
        fam = sorted(self.family)
        return " or ".join(str(r) for r in fam) if len(fam) > 1 else str(self.rate_hz)

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimated_rate_hz": self.rate_hz,
            "confidence": round(self.confidence, 3),
            "family_rates_hz": sorted(self.family),
            "family_confidence": round(self.family_confidence, 3) if self.rate_hz else 0.0,
            "labelled_rate_hz": self.labelled_hz,
            "labelled_confidence": round(self.labelled_confidence, 3) if self.posterior else None,
            "posterior": {str(k): round(v, 4) for k, v in sorted(self.posterior.items())},
            "fragile_on": self.fragile_on,
            "cue_margins": {k: round(v, 2) for k, v in self.margins.items()},
            "duration_s": round(self.duration_s, 3),
            "active_s": round(self.active_s, 3),
            "halves": [
                {
                    "estimated_rate_hz": h.rate_hz,
                    "labelled_confidence": round(h.labelled_confidence, 3),
                    "cue_margins": {k: round(v, 2) for k, v in h.margins.items()},
                }
                for h in self.halves
            ],
            "claimed_by": self.claimed(),
            "sentence_posterior": {
                str(k): round(v, 4) for k, v in sorted(self.sentence_posterior.items())
            },
            "features": self.features,
            "reason": self.reason,
        }


def _near(a: float, b: float) -> bool:
    return max(a, b) / min(a, b) < NEAR


def feature_vector(f: SpeechFeatures) -> list[float]:
    return [
        math.log(f.f0_hz),
        *(math.log(q) for q in f.spectrum_quantiles_hz),
        math.log(f.modulation_hz),
        math.log(f.voiced_run_s),
    ]


@dataclass(frozen=True)
class Model:
    """Feature means quadratic in log s, and one residual covariance."""

    c0: tuple[float, ...]
    c1: tuple[float, ...]
    c2: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]


GENERAL = Model(MEAN_C0, MEAN_C1, MEAN_C2, COVARIANCE)
SENTENCE = Model(SHORT_MEAN_C0, SHORT_MEAN_C1, SHORT_MEAN_C2, SHORT_COVARIANCE)


def model_mean(ls: float, model: Model = GENERAL) -> npt.NDArray[np.float64]:
    """Where speech lands in feature space when read `exp(ls)` times too fast."""
    import numpy as np

    c0, c1, c2 = (np.asarray(c, np.float64) for c in (model.c0, model.c1, model.c2))
    out: npt.NDArray[np.float64] = c0 + c1 * ls + c2 * ls * ls
    return out


def log_likelihoods(
    vector: list[float],
    labelled_hz: int,
    candidates: tuple[int, ...],
    features: tuple[int, ...] | None = None,
    model: Model = GENERAL,
) -> dict[int, float]:
    """Gaussian log-likelihood of each candidate, from all features or from a subset."""
    import numpy as np

    idx = list(features) if features is not None else list(range(len(FEATURE_NAMES)))
    x = np.asarray(vector, np.float64)[idx]
    inv = _inverse(model, tuple(idx))
    out = {}
    for cand in candidates:
        d = x - model_mean(math.log(labelled_hz / cand), model)[idx]
        out[cand] = float(-0.5 * d @ inv @ d) / TEMPERATURE
    return out


@functools.lru_cache(maxsize=32)
def _inverse(model: Model, idx: tuple[int, ...]) -> npt.NDArray[np.float64]:
    """The covariance's inverse over a subset of features (a few subsets per model)."""
    import numpy as np

    cov = np.asarray(model.covariance, np.float64)[np.ix_(idx, idx)]
    return np.asarray(np.linalg.inv(cov), np.float64)


def cue_margins(
    vector: list[float],
    labelled_hz: int,
    rate_hz: int,
    candidates: tuple[int, ...],
    model: Model = GENERAL,
) -> dict[str, float]:
    """Per cue group left out: log-likelihood of `rate_hz`'s family minus the label's."""
    out = {}
    for group, drop in CUE_GROUPS.items():
        keep = tuple(i for i in range(len(FEATURE_NAMES)) if i not in drop)
        ll = log_likelihoods(vector, labelled_hz, candidates, keep, model)
        best = max(v for c, v in ll.items() if _near(c, rate_hz))
        label = max(v for c, v in ll.items() if _near(c, labelled_hz))
        out[group] = best - label
    return out


def cues_needed(
    vector: list[float], labelled_hz: int, rate_hz: int, candidates: tuple[int, ...]
) -> list[str]:
    """The cue groups without which the data would no longer prefer `rate_hz` to the label.

    A bass-heavy channel shifts the spectrum, a fast talker the rhythm, a high voice the
    pitch; only a change of time scale moves them all. A mismatch is reported only when it
    survives the loss of any one group: when this list is empty.
    """
    margins = cue_margins(vector, labelled_hz, rate_hz, candidates)
    return [g for g, m in margins.items() if m < ROBUST_MARGIN]


def _edge_matches(edge_hz: float, labelled_hz: int, cand: int) -> bool:
    true_edge = edge_hz * cand / labelled_hz
    return any(abs(true_edge / n - 1) < 0.04 for n in COMMON_NYQUIST_HZ if n <= cand / 2)


def _halves_may_claim(rate_hz: int, labelled_hz: int) -> bool:
    """Only faster audio beyond x1.5 (8 kHz read at 24, x3) is claimed by the halves."""
    return labelled_hz / rate_hz >= NEVER_ON_SHORT_FACTOR[1]


def estimate_rate(x: npt.NDArray[Any], labelled_hz: int = 24000) -> RateEstimate:
    """Posterior over `CANDIDATES_HZ` for speech `x` that claims to be at `labelled_hz`;
    over PLAUSIBLE_MAX_S of speech, with each half's own estimate where they could decide
    a claim (not for audio read at its label: the usual case costs no more)."""
    est = _estimate(x, labelled_hz)
    if (
        est.rate_hz is None
        or est.active_s <= PLAUSIBLE_MAX_S
        or not _halves_may_claim(est.rate_hz, labelled_hz)
    ):
        return est
    n = len(x) // 2
    return replace(
        est,
        halves=[_estimate(x[:n], labelled_hz), _estimate(x[n:], labelled_hz)],
    )


def _estimate(x: npt.NDArray[Any], labelled_hz: int) -> RateEstimate:
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    if x.size < labelled_hz:
        return RateEstimate(
            None, 0.0, reason="less than a second of audio", labelled_hz=labelled_hz
        )
    if labelled_hz < MIN_LABELLED_HZ:
        return RateEstimate(
            None,
            0.0,
            reason=f"labelled {labelled_hz} Hz: too little band to judge the content",
            labelled_hz=labelled_hz,
        )
    f = measure(x, labelled_hz)
    if isinstance(f, str):
        return RateEstimate(None, 0.0, reason=f, labelled_hz=labelled_hz)
    feats: dict[str, Any] = {
        "f0_hz": round(f.f0_hz, 1),
        "f0_log_spread": round(f.f0_log_spread, 3),
        "voiced_share": round(f.voiced_share, 3),
        "voiced_frames": f.voiced_frames,
        "spectrum_quantiles_hz": [round(q) for q in f.spectrum_quantiles_hz],
        "modulation_hz": round(f.modulation_hz, 2),
        "voiced_run_ms": round(f.voiced_run_s * 1000, 1),
        "band_edge_hz": None if f.band_edge_hz is None else round(f.band_edge_hz),
    }
    if f.f0_log_spread < 0.015 or f.voiced_share > 0.97:
        return RateEstimate(
            None,
            0.0,
            features=feats,
            reason="steady pitch: a tone or music, not speech",
            labelled_hz=labelled_hz,
        )
    candidates = tuple(sorted(set(CANDIDATES_HZ) | {labelled_hz}))
    vector = feature_vector(f)
    logs = log_likelihoods(vector, labelled_hz, candidates)
    others = (1 - PRIOR_LABELLED) / (len(candidates) - 1)
    for cand in candidates:
        logs[cand] += math.log(PRIOR_LABELLED if cand == labelled_hz else others)
        if f.band_edge_hz is not None and _edge_matches(f.band_edge_hz, labelled_hz, cand):
            logs[cand] += EDGE_BONUS
    peak = max(logs.values())
    total = sum(math.exp(v - peak) for v in logs.values())
    post = {k: math.exp(v - peak) / total for k, v in logs.items()}
    best = max(post, key=lambda k: post[k])
    margins = {} if _near(best, labelled_hz) else cue_margins(vector, labelled_hz, best, candidates)
    sentence = posterior(vector, labelled_hz, candidates, SENTENCE)
    s_best = max(sentence, key=lambda k: sentence[k])
    s_margins = (
        {}
        if _near(s_best, labelled_hz)
        else cue_margins(vector, labelled_hz, s_best, candidates, SENTENCE)
    )
    active_s = _speech_s(x, labelled_hz)
    if _spacing_may_count(f.f0_hz, active_s, labelled_hz, best, s_best):
        spacing = wide_spacing(x, labelled_hz)
        if spacing is not None:
            feats["wide_spacing_hz"] = round(spacing)
    return RateEstimate(
        best,
        post[best],
        post,
        feats,
        f"pitch {f.f0_hz:.0f} Hz, voiced spectrum median {f.spectrum_quantiles_hz[2]:.0f} Hz, "
        f"envelope rhythm {f.modulation_hz:.1f} Hz, voiced stretches "
        f"{f.voiced_run_s * 1000:.0f} ms at the labelled rate",
        labelled_hz,
        [g for g, m in margins.items() if m < ROBUST_MARGIN],
        margins,
        x.size / labelled_hz,
        sentence,
        s_margins,
        active_s=active_s,
    )


def _spacing_may_count(f0_hz: float, length_s: float, labelled_hz: int, *best: int) -> bool:
    """Only where the spacing may decide (a high voice on a short clip that a model reads as
    8 kHz at a 24 kHz label): the usual case costs no more."""
    return (
        f0_hz >= FAST_SPACING_MIN_F0_HZ
        and 0 < length_s <= PLAUSIBLE_MAX_S
        and _near(labelled_hz, SPACING_LABEL_HZ)
        and any(_near(b, SPACING_RATE_HZ) for b in best)
    )


def _speech_s(x: npt.NDArray[Any], labelled_hz: int) -> float:
    """Seconds of `x` (its 1 s blocks) within SPEECH_BLOCK_DB of its loudest block."""
    import numpy as np

    n = x.size // labelled_hz
    if n < 1:
        return x.size / labelled_hz
    x = np.asarray(x, dtype=np.float64)
    power = np.mean(np.square(x[: n * labelled_hz].reshape(n, labelled_hz)), axis=1)
    # against the 90th percentile, not the loudest: one click must not make the rest quiet
    floor = float(np.percentile(power, 90)) * 10 ** (-SPEECH_BLOCK_DB / 10)
    speech = float(np.count_nonzero(power >= floor))
    tail = x[n * labelled_hz :]  # the last partial second counts for what it is
    if tail.size and float(np.mean(np.square(tail))) >= floor:
        speech += tail.size / labelled_hz
    return speech


def posterior(
    vector: list[float], labelled_hz: int, candidates: tuple[int, ...], model: Model
) -> dict[int, float]:
    """The model's posterior over `candidates`, with the labelled rate's prior."""
    logs = log_likelihoods(vector, labelled_hz, candidates, model=model)
    others = (1 - PRIOR_LABELLED) / (len(candidates) - 1)
    for cand in candidates:
        logs[cand] += math.log(PRIOR_LABELLED if cand == labelled_hz else others)
    peak = max(logs.values())
    total = sum(math.exp(v - peak) for v in logs.values())
    return {k: math.exp(v - peak) / total for k, v in logs.items()}
