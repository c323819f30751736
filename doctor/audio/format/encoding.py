"""Infer the sample encoding of headerless audio bytes (pure).

The idea: sound is smooth. Decoded with the right width, byte order and channel count,
neighbouring samples are strongly correlated; decoded wrongly, the bytes look like noise.
Each candidate's lag-1 correlation is compared with PCM16 LE mono (what the API expects),
which wins unless another candidate is clearly better; a few structural tests (plausible
float words, zero-padded int32, duplicated stereo channels) settle the close cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from doctor.audio.format.pcm import BYTES_PER_SAMPLE, decode

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

DETECT_BYTES = 1 << 18  # 256 KiB of head: ~5 s of PCM16 at 24 kHz
MARGIN = 0.12  # how much smoother a rival decoding must be to beat PCM16 LE mono
MIN_SMOOTH = 0.5
# Below this a PCM16 LE sample's high byte is only the sign: near-silence read as PCM16.
QUIET_FS = 1 / 64  # -36 dBFS
QUIET_SHARE = 0.9
MIN_BYTES = 16  # 8 PCM16 samples: the least any smoothness is measured on
EIGHT_BIT_SHARE = 0.95  # of bytes about an 8-bit encoding's zero: its (near-)silence
COMPANDED_HUSH_FS = 1 / 256  # -48 dBFS: a few steps about a companded code's zero
RAIL_FS = 32766 / 32768  # a PCM16 sample at full scale
RAILED_SHARE = 0.01

CANDIDATES: tuple[tuple[str, int], ...] = (
    ("s16le", 1),
    ("s16be", 1),
    ("s16le", 2),
    ("s16be", 2),
    ("f32le", 1),
    ("s32le", 1),
    ("s24le", 1),
    ("u8", 1),
    ("mulaw", 1),
    ("alaw", 1),
)


@dataclass(frozen=True)
class EncodingGuess:
    encoding: str
    channels: int
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    too_little_signal: bool = False  # near-silence: every decoding reads the sign bytes
    quiet_fraction: float = 0.0  # share of PCM16 LE samples below -36 dBFS
    levels_unjudged: bool = False  # no reading of these bytes has a level worth a finding

    @property
    def key(self) -> str:
        return f"{self.encoding}/{self.channels}"


def _smoothness(x: npt.NDArray[np.float32], channels: int) -> float:
    """Lag-1 correlation per channel (mean removed), averaged over channels."""
    import numpy as np

    if channels > 1:
        n = x.size - x.size % channels
        chans = x[:n].reshape(-1, channels).T
        return float(np.mean([_smoothness(c, 1) for c in chans])) if n else 0.0
    if x.size < 8:
        return 0.0
    y = np.clip(np.nan_to_num(x.astype(np.float64)), -1e6, 1e6)
    y -= float(np.mean(y))
    e = float(np.dot(y, y))
    if not e > 1e-12 * y.size:
        return 0.0
    r = float(np.dot(y[:-1], y[1:]) / e)
    return r if np.isfinite(r) else 0.0


def _decode_head(head: bytes, encoding: str, channels: int) -> npt.NDArray[np.float32]:
    import numpy as np

    x = decode(head, encoding, 1)
    if channels > 1:
        n = x.size - x.size % channels
        return x[:n]
    return np.asarray(x, dtype=np.float32)


def plausible_float_fraction(head: bytes) -> float:
    """Share of non-zero 4-byte words that read as float32 audio samples (|x| <= 4, normal)."""
    import numpy as np

    n = len(head) - len(head) % 4
    if n < 16:
        return 0.0
    w = np.frombuffer(head[:n], "<u4")
    w = w[w != 0]
    if w.size < 4:
        return 0.0
    f = w.view("<f4")
    with np.errstate(invalid="ignore", over="ignore"):
        ok = np.isfinite(f) & (np.abs(f) <= 4.0) & (np.abs(f) >= 1e-8)
    return float(np.count_nonzero(ok)) / float(w.size)


def zero_padded_fraction(head: bytes, width: int, pad: int) -> float:
    """Share of non-zero `width`-byte words whose `pad` low bytes are zero (int16 in int32)."""
    import numpy as np

    n = len(head) - len(head) % width
    if n < width * 4:
        return 0.0
    b = np.frombuffer(head[:n], np.uint8).reshape(-1, width)
    nonzero = b.any(axis=1)
    if np.count_nonzero(nonzero) < 4:
        return 0.0
    low_zero = ~b[:, :pad].any(axis=1)
    return float(np.count_nonzero(low_zero & nonzero)) / float(np.count_nonzero(nonzero))


def duplicate_pair_fraction(head: bytes) -> float:
    """Share of non-silent 16-bit sample pairs that are identical: both stereo channels equal.
    Zero when neighbours across pairs are as often equal: a constant or stepped signal
    repeats every sample, which says nothing about channels."""
    import numpy as np

    n = len(head) - len(head) % 4
    if n < 16:
        return 0.0
    v = np.frombuffer(head[:n], "<u2").reshape(-1, 2)
    active = (v[:, 0] != 0) | (v[:, 1] != 0)
    if np.count_nonzero(active) < 16:
        return 0.0
    same = v[:, 0] == v[:, 1]
    across = v[1:, 0] == v[:-1, 1]  # a pair's first sample against the previous pair's last
    # Mono repeated 2-6x (a naive upsampling) repeats at most 5 in 6 across pairs too.
    if float(np.count_nonzero(across & active[1:])) >= 0.9 * float(np.count_nonzero(active)):
        return 0.0
    return float(np.count_nonzero(same & active)) / float(np.count_nonzero(active))


def u8_centred_fraction(head: bytes) -> float:
    """Share of bytes within 0x60-0xA0: about unsigned 8-bit audio's zero (0x80)."""
    import numpy as np

    b = np.frombuffer(head, np.uint8)
    return float(np.count_nonzero((b >= 0x60) & (b <= 0xA0))) / float(max(1, b.size))


def quiet_pcm16_fraction(head: bytes) -> float:
    """Share of the bytes' PCM16 LE samples below -36 dBFS (their high byte only a sign)."""
    import numpy as np

    n = len(head) - len(head) % 2
    if n < 2:
        return 0.0
    v = np.frombuffer(head[:n], "<i2").astype(np.int32)
    return float(np.count_nonzero(np.abs(v) < int(32768 * QUIET_FS))) / float(v.size)


def detect_encoding(head: bytes) -> EncodingGuess:
    """Best guess for headerless bytes; PCM16 LE mono unless another reading is clearly better."""
    import numpy as np

    head = head[:DETECT_BYTES]
    if not any(head):
        return EncodingGuess("s16le", 1, 0.0, {}, "all bytes are zero: any encoding fits")
    if len(head) < MIN_BYTES:
        return EncodingGuess("s16le", 1, 0.0, {}, f"only {len(head)} bytes", True)
    if head.count(head[0]) == len(head):
        # One byte over and over: the silence of u8 (0x80), mu-law (0xFF/0x7F) or A-law
        # (0xD5/0x55), or a PCM16 constant. Which, the bytes cannot say: nor their level.
        return EncodingGuess(
            "s16le",
            1,
            0.0,
            {},
            f"every byte is 0x{head[0]:02X}: silence in an 8-bit encoding, or a constant",
            True,
            levels_unjudged=head[0] != 0xFF,  # PCM16 -1: silence in every reading
        )
    words = np.frombuffer(head[: len(head) - len(head) % 2], "<u2")
    if not np.any(words != words[0]):
        # A constant reads as silence in every encoding: smoothness cannot be measured.
        return EncodingGuess("s16le", 1, 0.0, {}, "every 16-bit word is the same", True)
    for law in ("mulaw", "alaw"):
        x = _decode_head(head, law, 1)
        hushed = float(np.mean(np.abs(x) < COMPANDED_HUSH_FS))
        if (
            hushed >= EIGHT_BIT_SHARE
            and quiet_pcm16_fraction(head) < QUIET_SHARE
            and _smoothness(x, 1) <= MIN_SMOOTH
        ):
            # A companded app's near-silence (mu-law 0xFF/0x7F/0xFE..., A-law 0xD5/0x55...):
            # too little to tell, and PCM16's reading of those bytes is a bogus loud noise.
            # Quiet companded speech is smooth in its own reading and goes on to be named.
            reason = f"{hushed:.0%} of bytes are {law} near-silence"
            return EncodingGuess("s16le", 1, 0.0, {}, reason, True, levels_unjudged=True)
    centred = u8_centred_fraction(head)
    if centred >= EIGHT_BIT_SHARE:
        # Quiet unsigned 8-bit audio: bytes about its 0x80 zero. PCM16's low bytes spread
        # over every value, and companded silence sits at 0xFF/0x7F or 0xD5/0x55.
        u8 = round(_smoothness(_decode_head(head, "u8", 1), 1), 4)
        reason = f"{centred:.0%} of bytes sit near 0x80, unsigned 8-bit's zero"
        if u8 > MIN_SMOOTH:
            return EncodingGuess("u8", 1, centred, {"u8/1": u8}, reason)
        # Near-silent u8 (a few steps about 0x80): no PCM16 reading has such bytes, but too
        # little varies to be sure, and PCM16's reading of them is a bogus -1 FS offset.
        return EncodingGuess("s16le", 1, 0.0, {"u8/1": u8}, reason, True, levels_unjudged=True)
    scores: dict[str, float] = {}
    for enc, ch in CANDIDATES:
        if len(head) < BYTES_PER_SAMPLE[enc] * ch * 8:
            continue
        scores[f"{enc}/{ch}"] = round(_smoothness(_decode_head(head, enc, ch), ch), 4)
    base = scores.get("s16le/1", 0.0)

    # Structural evidence first: these leave little room for doubt.
    floats = plausible_float_fraction(head)
    if floats >= 0.97 and scores.get("f32le/1", 0.0) > MIN_SMOOTH:
        return EncodingGuess(
            "f32le",
            1,
            min(1.0, floats),
            scores,
            f"{floats:.0%} of 32-bit words are float samples in [-4, 4]",
        )
    padded16 = zero_padded_fraction(head, 4, 2)
    if padded16 >= 0.95 and scores.get("s32le/1", 0.0) > MIN_SMOOTH:
        return EncodingGuess(
            "s32le", 1, padded16, scores, f"{padded16:.0%} of 32-bit words have a zero low half"
        )

    quiet = quiet_pcm16_fraction(head)
    if quiet >= QUIET_SHARE:
        # Quiet as PCM16: the high bytes are 0x00/0xFF sign bytes, a pattern that reads
        # smoothly as μ-law, u8 and others. No other encoding reads this quiet (its bytes
        # land in PCM16's high byte), so PCM16 it is; sure when the quiet audio is smooth,
        # and too little signal to judge when it is noise (the first chunk of a session).
        if base >= MIN_SMOOTH:
            return EncodingGuess("s16le", 1, 0.8, scores, "quiet, smooth 16-bit little-endian")
        return EncodingGuess(
            "s16le",
            1,
            0.5,
            scores,
            f"{quiet:.0%} of samples read as PCM16 are below -36 dBFS: too little signal to "
            "tell encodings apart",
            too_little_signal=True,
            quiet_fraction=round(quiet, 4),
        )

    le = max(scores.get("s16le/1", 0.0), scores.get("s16le/2", 0.0))
    be = max(scores.get("s16be/1", 0.0), scores.get("s16be/2", 0.0))
    order = "s16le"
    if be > le + MARGIN and be > MIN_SMOOTH:
        order = "s16be"
    elif abs(be - le) <= MARGIN and be > MIN_SMOOTH:
        # Tiny samples read well in both orders; the right one is the quieter one. Unless
        # the little-endian reading sits on the rails: clipped PCM16 (7F FF / 00 80) reads
        # byte-swapped as a quiet +-128, and clipping is the likelier story.
        x_le = _decode_head(head, "s16le", 1)
        rms_le = float(np.sqrt(np.mean(np.square(x_le))))
        rms_be = float(np.sqrt(np.mean(np.square(_decode_head(head, "s16be", 1)))))
        railed = float(np.mean(np.abs(x_le) >= RAIL_FS))
        if rms_be * 16 < rms_le and railed < RAILED_SHARE:
            order = "s16be"
    mono, stereo = scores.get(f"{order}/1", 0.0), scores.get(f"{order}/2", 0.0)
    dup = duplicate_pair_fraction(head) if order == "s16le" else 0.0
    channels = 1
    reason = ""
    if dup >= 0.9:
        channels, reason = 2, f"{dup:.0%} of sample pairs are identical (two equal channels)"
    elif stereo > mono + 0.05 and stereo > MIN_SMOOTH:
        channels, reason = 2, "every other sample belongs together (interleaved channels)"
    best16 = scores.get(f"{order}/{channels}", 0.0)

    # Other widths and companding must beat the best 16-bit reading clearly.
    rival, rival_score = None, best16 + MARGIN
    for key in ("s24le/1", "s32le/1", "u8/1", "mulaw/1", "alaw/1", "f32le/1"):
        s = scores.get(key, 0.0)
        if s > MIN_SMOOTH and s > rival_score:
            rival, rival_score = key, s
    if rival is not None:
        enc = rival.split("/")[0]
        if enc == "f32le" and floats < 0.9:
            rival = None
        else:
            conf = min(1.0, 0.5 + (rival_score - best16))
            return EncodingGuess(
                enc,
                1,
                conf,
                scores,
                f"decoding as {enc} is much smoother ({rival_score:.2f} vs "
                f"{best16:.2f} for 16-bit)",
            )
    if order == "s16le" and channels == 1:
        # s16le/2 and s32le/1 of mono PCM16 read as its lag-2 correlation: no contrast there.
        contrast = ("s16be/1", "s24le/1", "u8/1", "mulaw/1", "alaw/1", "f32le/1")
        runner_up = max((scores.get(k, 0.0) for k in contrast), default=0.0)
        conf = 0.5 + 0.5 * max(0.0, min(1.0, (base - runner_up) / 0.5))
        if base < 0.2:
            conf = 0.3
        return EncodingGuess("s16le", 1, conf, scores, reason or "16-bit little-endian reads best")
    if order == "s16be":
        reason = (reason + "; " if reason else "") + "byte-swapped 16-bit reads much smoother"
    conf = min(1.0, 0.5 + abs(best16 - scores.get("s16le/1", 0.0)))
    return EncodingGuess(order, channels, max(conf, 0.9 if dup >= 0.9 else conf), scores, reason)
