"""validate-audio's core: chunks of input in, a Validation out (pure, bounded memory).

Layers (base64, JSON, containers) are peeled by `doctor.audio.format.inputs`; this module infers
the sample format from the first bytes, then streams every sample once through the level
statistics, and keeps at most `RATE_SECONDS` of active audio for the rate estimator (which
runs in a background thread once that window is full, while a long input streams on).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from doctor.audio.format.encoding import DETECT_BYTES, EncodingGuess, detect_encoding
from doctor.audio.format.findings import ERROR, INFO, WARNING, Validation
from doctor.audio.format.inputs import Declared, Layered, layers
from doctor.audio.format.pcm import (
    API_RATE_HZ,
    BYTES_PER_SAMPLE,
    G711_ENCODINGS,
    G711_RATE_HZ,
    MAX_SOURCE_RATE_HZ,
    MIN_SOURCE_RATE_HZ,
    decode,
)
from doctor.audio.levels.stream import LevelStats, db

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from doctor.audio.rate.estimate import RateEstimate

RATE_SECONDS = 30.0
BLOCK_SECONDS = 1.0
ACTIVE_BLOCK_DB = -50.0
# A sample shorter than this (one 50 ms message, say) may be a pause between words: its
# silence or low level is worth saying (info), not a warning about the microphone.
SHORT_SAMPLE_S = 1.0
# Byte noise (compressed, encrypted or random bytes) read as PCM16 is uniform over the full
# scale: each quarter of |x| holds ~25 % of the samples, with almost none clipped. No
# recording is: measured minimum quarter share on 204 real voices (plain, normalised, +30 dB
# clipped, with 0 dB noise) <= 0.065, music <= 0.035, Gaussian white noise from -30 to
# +6 dBFS <= 0.138 (clipped 29 % at 0 dBFS); FLAC, Ogg, MP4, WebM, PNG, ZIP, PDF bodies and
# /dev/urandom 0.199-0.249. Only then is noise an error; acoustic noise stays a warning.
BYTE_NOISE_MIN_QUARTER = 0.18
BYTE_NOISE_MAX_CLIPPED = 0.01
DC_MIN_S = 0.02

ENCODING_FINDINGS: dict[str, tuple[str, str]] = {
    "s16be": (
        "big_endian",
        "16-bit samples in big-endian byte order (the API reads little-endian)",
    ),
    "f32le": ("float32_samples", "32-bit float samples (the API reads 16-bit integers)"),
    "f64le": ("float32_samples", "64-bit float samples (the API reads 16-bit integers)"),
    "s32le": ("int32_samples", "32-bit integer samples (the API reads 16-bit)"),
    "s24le": ("int24_samples", "24-bit integer samples (the API reads 16-bit)"),
    "u8": ("uint8_samples", "8-bit unsigned samples (the API reads 16-bit signed)"),
    "mulaw": (
        "mulaw_samples",
        "G.711 μ-law bytes: valid only when the session's input format is `audio/pcmu` at 8000 Hz",
    ),
    "alaw": (
        "alaw_samples",
        "G.711 A-law bytes: valid only when the session's input format is `audio/pcma` at 8000 Hz",
    ),
}


def quarter_shares(head: bytes) -> tuple[float, float]:
    """(smallest share of PCM16 LE samples in a quarter of |x| below full scale, clipped share)."""
    import numpy as np

    a = np.abs(np.frombuffer(head[: len(head) // 2 * 2], "<i2").astype(np.int32))
    if not a.size:
        return 0.0, 0.0
    full = a >= 32767
    counts = np.bincount(np.minimum(a[~full] >> 13, 3), minlength=4)
    return float(counts.min() / a.size), float(full.mean())


def played_speed(true_hz: int) -> str:
    """How audio recorded at `true_hz` sounds when read at the API's rate: a user knows
    "too fast" or "too slow"; a factor under 1 called "too fast" reads as nonsense."""
    factor = API_RATE_HZ / true_hz
    if factor >= 1:
        return f"{factor:.2f}× too fast (pitched up)"
    return f"{1 / factor:.2f}× too slow (pitched down)"


class PcmStage:
    """Consumes the audio bytes beneath the layers; decides their format from the first bytes."""

    def __init__(
        self,
        v: Validation,
        lay: Layered,
        detect_bytes: int = DETECT_BYTES,
        source_rate: int | None = None,
    ) -> None:
        self.v = v
        self.source_rate = source_rate
        self.lay = lay
        self.detect_bytes = detect_bytes
        self.head = bytearray()
        self.decided = False
        self.encoding = "s16le"
        self.channels = 1
        self.rate = API_RATE_HZ
        self.guess: EncodingGuess | None = None
        self.quarters = (0.0, 0.0)
        self.levels = LevelStats()
        self.total = 0
        self.carry = b""
        self.rate_blocks: list[npt.NDArray[np.float32]] = []
        self.rate_samples = 0
        self.rate_pending: Any = None
        self.rate_future: Future[RateEstimate] | None = None

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.total += len(chunk)
        if not self.decided:
            self.head += chunk
            if len(self.head) < self.detect_bytes:
                return
            self._decide()
            chunk, self.head = bytes(self.head), bytearray()
        self._process(chunk)

    def _decide(self) -> None:
        self.decided = True
        d: Declared | None = self.lay.declared
        if d is not None:
            self.encoding, self.channels, self.rate = d.encoding, d.channels, d.sample_rate_hz
            return
        self.guess = detect_encoding(bytes(self.head))
        self.encoding, self.channels = self.guess.encoding, self.guess.channels
        self.quarters = quarter_shares(bytes(self.head))
        if self.encoding in G711_ENCODINGS:
            # G.711 is only ever 8 kHz to the API (pcmu/pcma); timing it at 24 kHz made
            # one second read as 0.33 s and --fix write it 3x too fast
            self.rate = self.source_rate or G711_RATE_HZ

    def _process(self, chunk: bytes) -> None:
        import numpy as np

        frame = BYTES_PER_SAMPLE[self.encoding] * self.channels
        if self.carry:
            chunk = self.carry + chunk
        cut = len(chunk) - len(chunk) % frame
        self.carry = chunk[cut:]
        if not cut:
            return
        view = memoryview(chunk)[:cut]
        if self.encoding == "s16le" and self.channels == 1:
            a = np.frombuffer(view, "<i2")
            self.levels.update_int16(a)
            if self._want_rate():
                self._collect(a.astype(np.float32) * np.float32(1 / 32768))
        else:
            x = decode(view, self.encoding, self.channels)
            self.levels.update_float(x)
            if self._want_rate():
                self._collect(x)

    def _want_rate(self) -> bool:
        return self.rate_samples < RATE_SECONDS * self.rate

    def _collect(self, x: npt.NDArray[np.float32]) -> None:
        """Keep active one-second blocks (pauses carry no rate evidence) up to RATE_SECONDS."""
        import numpy as np

        if self.rate_pending is not None:
            x = np.concatenate([self.rate_pending, x])
        block = int(self.rate * BLOCK_SECONDS)
        n = x.size // block
        for i in range(n):
            b = x[i * block : (i + 1) * block]
            level = db(math.sqrt(float(np.dot(b, b)) / b.size))
            if level > ACTIVE_BLOCK_DB and self._want_rate():
                self.rate_blocks.append(b.copy())
                self.rate_samples += b.size
        rest = x[n * block :]
        self.rate_pending = rest.copy() if rest.size and self._want_rate() else None
        if not self._want_rate() and self.rate_future is None:
            self._estimate_in_background()

    def _estimate_in_background(self) -> None:
        """The window is full: estimate while the rest of a long input streams through.

        The same samples are estimated as at the end, so the result does not depend on it.
        """
        import numpy as np

        from doctor.audio.rate.estimate import estimate_rate

        audio = np.concatenate(self.rate_blocks)
        pool = ThreadPoolExecutor(1, thread_name_prefix="rate-estimate")
        self.rate_future = pool.submit(estimate_rate, audio, self.rate)
        pool.shutdown(wait=False)

    # -- conclusions -------------------------------------------------------------------------
    def finish(self) -> None:
        import numpy as np

        if not self.decided:
            if not self.head:
                if not self.lay.undecodable:
                    if "empty" not in self.v.codes():  # an empty `audio` already said so
                        self.v.add(
                            "empty",
                            ERROR,
                            "no audio bytes at all",
                            detail="the input holds no audio bytes",
                        )
                    self.v.refuse_reason = "the input is empty: there is no audio to convert"
                return
            self._decide()
            chunk, self.head = bytes(self.head), bytearray()
            self._process(chunk)
        if (
            self.rate_pending is not None
            and self.rate_pending.size >= self.rate // 2
            and self._want_rate()
        ):
            self.rate_blocks.append(self.rate_pending)
        self.levels.finish()
        v = self.v
        frame = BYTES_PER_SAMPLE[self.encoding] * self.channels
        if self.carry and self.encoding in ("s16le", "s16be") and self.channels == 1:
            v.add(
                "odd_byte_length",
                ERROR,
                f"{self.total} bytes: not a whole number of 16-bit "
                "samples (the service answers `invalid_audio`)",
                detail=f"{self.total} bytes, an odd count",
                bytes=self.total,
            )
        elif self.carry:
            v.add(
                "odd_byte_length",
                WARNING,
                f"{len(self.carry)} trailing bytes do not fill a {frame}-byte frame",
                bytes=self.total,
                trailing_bytes=len(self.carry),
            )
        self._format_findings()
        audio = np.concatenate(self.rate_blocks) if self.rate_blocks else np.zeros(0, np.float32)
        self._rate_findings(audio)
        self._level_findings()
        self._one_quiet_finding()
        frames = self.levels.samples
        v.stats.update(
            {
                "audio_bytes": self.total,
                "duration_s": round(frames / self.rate, 3) if self.rate else None,
                "levels": self.levels.summary(),
            }
        )
        if self.guess is not None:
            v.stats["encoding_scores"] = self.guess.scores
        d = v.detected
        d.encoding = self.encoding
        d.channels = self.channels
        d.byte_order = {"s16be": "big"}.get(
            self.encoding, None if self.encoding in ("u8", "mulaw", "alaw") else "little"
        )
        d.confidence = 1.0 if self.lay.declared else (self.guess.confidence if self.guess else 0)
        if d.sample_rate_hz is None:
            d.sample_rate_hz = self.rate
        v.stats["source_format"] = {
            "encoding": self.encoding,
            "channels": self.channels,
            "rate_hz": v.stats.get("source_rate_hz", self.rate),
        }

    def _format_findings(self) -> None:
        v = self.v
        declared = self.lay.declared is not None
        how = "the WAV header declares" if declared else "the bytes read as"
        conf = 1.0 if declared else (self.guess.confidence if self.guess else 0.0)
        sev = ERROR if conf >= 0.6 or declared else WARNING
        if self.encoding in ENCODING_FINDINGS and not (declared and self.encoding == "s16le"):
            code, text = ENCODING_FINDINGS[self.encoding]
            reason = self.guess.reason if self.guess else ""
            v.add(
                code,
                sev,
                f"{how} {text}" + (f" ({reason})" if reason else ""),
                detail=text,
                confidence=round(conf, 3),
                encoding=self.encoding,
            )
        if self.channels > 1:
            reason = self.guess.reason if self.guess and not declared else ""
            v.add(
                "stereo_interleaved",
                sev,
                f"{how} {self.channels} interleaved channels; "
                "the API reads mono" + (f" ({reason})" if reason else ""),
                detail=f"{self.channels} channels",
                channels=self.channels,
                confidence=round(conf, 3),
            )
        if self.guess is not None and self.guess.too_little_signal:
            v.add(
                "too_little_signal",
                INFO,
                f"too little signal to judge the encoding ({self.guess.reason}); read as "
                "PCM16 little-endian mono, the API's format. Validate a few seconds of "
                "speech to be sure",
                detail="validate a few seconds of speech, not one quiet chunk",
                quiet_fraction=self.guess.quiet_fraction,
            )
        elif self.guess is not None and self.guess.encoding == "s16le" and self.channels == 1:
            smooth = self.guess.scores.get("s16le/1", 0.0)
            silent = self.levels.frame_fraction_below(-80.0) > 0.98
            measured = "s16le/1" in self.guess.scores  # not when the head was all zeros
            quarter, clipped = self.quarters
            random = quarter >= BYTE_NOISE_MIN_QUARTER and clipped < BYTE_NOISE_MAX_CLIPPED
            # random bytes are told from 1000 samples (a 2.5 KB slice of an Ogg file)
            enough = self.levels.samples > (1000 if random else 2000)
            if smooth < 0.2 and measured and not silent and enough:
                v.add(
                    "noise",
                    ERROR if random else WARNING,
                    (
                        "the bytes are random as samples (uniform over the full scale, "
                        "as no microphone records): compressed, encrypted or corrupted "
                        "data, not audio"
                        if random
                        else "the bytes decode to noise in every sample format tried: "
                        "compressed, encrypted or corrupted data, or pure noise"
                    ),
                    detail="the bytes are not audio" if random else "the audio is noise-like",
                    lag1_correlation=smooth,
                    min_quarter_share=round(quarter, 3),
                    clipped_fraction=round(clipped, 5),
                )
                if random:
                    conf = 0.0  # nothing to convert
                    self.v.refuse_reason = "the bytes are random, not audio"
        self.v.convertible = self.lay.declared is not None or conf >= 0.6

    def _rate_findings(self, audio: npt.NDArray[np.float32]) -> None:
        from doctor.audio.rate.estimate import estimate_rate

        v = self.v
        declared = self.lay.declared
        if declared and declared.sample_rate_hz != API_RATE_HZ:
            v.add(
                "sample_rate_mismatch",
                ERROR,
                f"the WAV header says {declared.sample_rate_hz} Hz; the API reads 24000 Hz, so "
                f"this audio would play {played_speed(declared.sample_rate_hz)}",
                detail=f"declared {declared.sample_rate_hz} Hz",
                declared_rate_hz=declared.sample_rate_hz,
                estimated_rate_hz=None,
                confidence=1.0,
            )
        if declared and not MIN_SOURCE_RATE_HZ <= declared.sample_rate_hz <= MAX_SOURCE_RATE_HZ:
            # a broken rate field: converting from it would resample by up to 24000x
            v.convertible = False
            v.refuse_reason = (
                f"the WAV header's rate, {declared.sample_rate_hz} Hz, is outside "
                f"{MIN_SOURCE_RATE_HZ}-{MAX_SOURCE_RATE_HZ} Hz (a broken header); "
                "pass --source-rate with the rate the audio was recorded at"
            )
        v.stats["source_rate_hz"] = self.rate
        if audio.size < self.rate:
            v.stats["rate"] = {
                "estimated_rate_hz": None,
                "reason": "less than a second of active audio",
            }
            return
        est = self.rate_future.result() if self.rate_future else estimate_rate(audio, self.rate)
        # the one-sentence rule goes by the sample's length, pauses included
        est = est.settle(self.levels.samples / self.rate)
        v.stats["rate"] = est.to_dict()
        if est.claimed() is None:
            return
        assert est.rate_hz is not None  # mismatch() implies an estimate
        label = (
            "the WAV header's"
            if declared
            else ("G.711's" if self.encoding in G711_ENCODINGS else "the API's")
        )
        sure = est.family_confidence >= 0.8 and est.labelled_confidence <= 0.1
        if declared:
            sev = WARNING if sure else INFO
        else:
            sev = ERROR if sure else WARNING
            v.stats["source_rate_hz"] = est.rate_hz
            # converting needs one rate: refuse when the estimate is a 9 % pair (44.1/48 kHz)
            exact = est.confidence >= 0.6
            v.convertible = v.convertible and sev == ERROR and exact
            if sev != ERROR or not exact:
                v.refuse_reason = (
                    f"the content suggests {est.describe_rate()} Hz "
                    f"({est.family_confidence:.0%} confidence); pass --source-rate"
                )
        v.add(
            "sample_rate_mismatch",
            sev,
            f"the speech sounds recorded at about {est.describe_rate()} Hz, not {label} "
            f"{self.rate} Hz (confidence {est.family_confidence:.0%}; {est.reason})",
            detail=f"estimated {est.describe_rate()} Hz from the content",
            estimated_rate_hz=est.rate_hz,
            estimated_rates_hz=sorted(est.family),
            labelled_rate_hz=self.rate,
            confidence=round(est.family_confidence, 3),
            labelled_confidence=round(est.labelled_confidence, 3),
        )

    def _level_findings(self) -> None:
        v, lv = self.v, self.levels
        if not lv.samples:
            return
        if self.guess is not None and self.guess.levels_unjudged:
            v.stats["levels_not_judged"] = self.guess.reason
            return
        if not self.v.convertible and self.guess is not None and self.encoding != "s16le":
            # Levels of a decoding the verdict did not settle on (an uncertain guess) would
            # describe bytes read the wrong way: a μ-law "DC offset" of PCM16 near-silence.
            v.stats["levels_not_judged"] = f"the {self.encoding} reading is uncertain"
            return
        zero = lv.zeros / lv.samples
        silent = lv.frame_fraction_below(-80.0)
        short = self.rate > 0 and lv.samples < SHORT_SAMPLE_S * self.rate
        quiet_sev = INFO if short else WARNING
        if zero >= 0.99 or silent >= 0.99:
            v.add(
                "silence",
                quiet_sev,
                f"digital silence: {zero:.1%} of samples are zero and "
                f"{silent:.1%} of 20 ms frames are below -80 dBFS ("
                + ("a pause, in a sample this short; over seconds it would mean " if short else "")
                + "a muted mic, a denied microphone permission, or the wrong device)",
                detail="the audio is digital silence",
                zero_fraction=round(zero, 4),
                silent_frame_fraction=round(silent, 4),
            )
            return
        clipped = lv.clipped / lv.samples
        if clipped >= 0.001 and lv.clipped >= 10:
            v.add(
                "clipping",
                WARNING,
                f"{clipped:.2%} of samples are at full scale: the input is clipped (gain too high)",
                detail=f"{clipped:.2%} clipped samples",
                clipped_fraction=round(clipped, 5),
                peak_dbfs=round(db(lv.peak), 2),
            )
        mean = lv.mean()
        # One 20 ms frame at least: a mean over less is a waveform's slope, not an offset.
        if abs(mean) >= 0.02 and lv.samples >= DC_MIN_S * self.rate:
            v.add(
                "dc_offset",
                WARNING,
                f"a constant offset of {mean:+.3f} of full scale ({db(abs(mean)):.0f} dBFS)",
                detail=f"DC offset {mean:+.3f}",
                dc_offset_fs=round(mean, 5),
                dc_offset_dbfs=round(db(abs(mean)), 1),
            )
        active = lv.active_level_db()
        if math.isfinite(active) and active < -45.0:
            # with too little signal to judge the encoding, there may be no speech at all
            what = (
                f"the loudest 20 ms frames reach {active:.0f} dBFS (95th percentile)"
                if self.guess is not None and self.guess.too_little_signal
                else f"speech peaks at {active:.0f} dBFS (20 ms frames, 95th percentile)"
            )
            v.add(
                "low_level",
                quiet_sev,
                f"{what}: far below a usable level (-30 to -10 dBFS)",
                detail=f"active level {active:.0f} dBFS",
                active_level_dbfs=active,
            )

    def _one_quiet_finding(self) -> None:
        """Quiet audio is one story, told once: `too_little_signal` (the encoding cannot be
        judged) and `silence`/`low_level` (the level) both say the sample holds no usable
        speech. Under a second that is a pause: validating more audio is the fix. Longer,
        the microphone is: the level finding stays and carries the other's evidence."""
        v = self.v
        unjudged = next((f for f in v.findings if f.code == "too_little_signal"), None)
        level = next((f for f in v.findings if f.code in ("silence", "low_level")), None)
        if unjudged is None or level is None:
            return
        short = self.rate > 0 and self.levels.samples < SHORT_SAMPLE_S * self.rate
        keep, drop = (unjudged, level) if short else (level, unjudged)
        keep.evidence[drop.code] = {"message": drop.message, **drop.evidence}
        v.findings.remove(drop)
        if not short:  # the detected format's low confidence, explained where it shows
            i = v.findings.index(keep)
            v.findings[i] = replace(
                keep,
                message=keep.message + "; too quiet to judge the sample format: read as "
                "PCM16, the API's format",
            )


def validate(
    chunks: Iterable[bytes],
    *,
    kind: str | None = None,
    detect_bytes: int = DETECT_BYTES,
    source_rate: int | None = None,
) -> Validation:
    """Validate a stream of input chunks (any kind, auto-detected unless `kind` is given).

    `source_rate` (the user's --source-rate) times headerless G.711, which is 8000 Hz
    otherwise; PCM is timed at the API's rate, the rate the service will read it at."""
    v = Validation()
    lay = Layered()
    stage = PcmStage(v, lay, detect_bytes, source_rate)
    for c in layers(chunks, kind, v, lay):
        stage.feed(c)
    if lay.undecodable:
        v.convertible = False
        if not v.findings:  # pragma: no cover - undecodable always comes with a finding
            v.add("container_other", ERROR, "the input could not be decoded")
        return v
    stage.finish()
    if lay.declared is not None:
        v.detected.sample_rate_hz = lay.declared.sample_rate_hz
    if lay.extra:
        v.stats["container"] = dict(lay.extra)
    v.stats["layers"] = {"payload_bytes": lay.payload_bytes}
    if not v.findings:
        v.stats["summary"] = "raw PCM16 little-endian mono 24 kHz, as the API expects"
    return v


def validate_bytes(data: bytes, kind: str | None = None) -> Validation:
    return validate([data], kind=kind)
