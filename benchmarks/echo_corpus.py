"""Synthetic echo cases with known truth, for the echo tests and the accuracy benchmark.

Everything is seeded: the same seed gives the same samples on every machine. Speech comes
from espeak-ng when asked for (realistic, and the only source of same-voice negatives) or
from a numpy speech-like source (glottal pulses through moving formants, syllable
envelopes, pauses) that needs nothing installed. Rooms are exponential-decay impulse
responses made with numpy (pyroomacoustics is not needed).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from doctor.audio.echo.dsp import sinc_interpolate, to_analysis_rate

Array = NDArray[np.float64]
RATE_HZ = 24000

SENTENCES = (
    "Thanks for calling, how can I help you today?",
    "Your appointment is confirmed for Tuesday at three in the afternoon.",
    "I can check that order for you, could you read me the number on the receipt?",
    "The weather tomorrow looks sunny with a light breeze from the west.",
    "Please hold on while I transfer you to the billing department.",
    "I am sorry, I did not catch that, could you say it again a little slower?",
    "Your balance is forty two dollars and seventeen cents.",
    "We are open from nine in the morning until six in the evening every weekday.",
    "Let me read back the address: twelve Oak Street, apartment four.",
    "Is there anything else I can do for you before we finish?",
    "The package left our warehouse this morning and should arrive on Friday.",
    "To reset your password, open the settings page and choose security.",
)


def speech_like(
    seconds: float,
    seed: int,
    rate_hz: int = RATE_HZ,
    f0_hz: float = 120.0,
    level_dbfs: float = -20.0,
) -> Array:
    """A voiced, syllabic, pausing signal with speech's spectrum and rhythm."""
    from scipy import signal

    rng = np.random.default_rng(seed)
    n = int(seconds * rate_hz)
    t = np.arange(n) / rate_hz
    # pitch contour: slow random walk around f0, jitter
    knots = np.linspace(0, seconds, max(2, int(seconds * 3)))
    contour = f0_hz * np.exp(np.interp(t, knots, rng.normal(0, 0.12, len(knots))))
    phase = np.cumsum(contour / rate_hz)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    source = signal.lfilter([1.0], [1.0, -0.97], pulses)  # glottal roll-off
    source += 0.03 * rng.standard_normal(n)  # breath
    # syllables: 4-5 per second, each with its own vowel (formants), pauses between phrases
    out = np.zeros(n)
    pos = 0
    vowels = (
        (700, 1200, 2600),
        (300, 2300, 3000),
        (500, 900, 2400),
        (400, 1900, 2500),
        (600, 1700, 2700),
        (350, 800, 2300),
    )
    while pos < n:
        if rng.random() < 0.12:
            pos += int(rng.uniform(0.15, 0.5) * rate_hz)  # pause
            continue
        length = int(rng.uniform(0.12, 0.3) * rate_hz)
        seg = source[pos : pos + length]
        if len(seg) < 16:
            break
        formants = vowels[rng.integers(len(vowels))]
        y = np.zeros(len(seg))
        for f, bw in zip(formants, (80, 100, 150), strict=False):
            f = f * rng.uniform(0.9, 1.1)
            r = np.exp(-np.pi * bw / rate_hz)
            a = [1.0, -2 * r * np.cos(2 * np.pi * f / rate_hz), r * r]
            y += signal.lfilter([1 - r], a, seg)
        if rng.random() < 0.3:  # a fricative
            y += (
                0.3
                * signal.lfilter(
                    *signal.butter(2, 3000, "high", fs=rate_hz), rng.standard_normal(len(seg))
                )
                * np.std(y)
            )
        env = np.sin(np.pi * np.linspace(0, 1, len(seg))) ** 0.7
        out[pos : pos + len(seg)] += y * env
        pos += len(seg)
    return scale_to(out, level_dbfs)


def scale_to(x: Array, level_dbfs: float) -> Array:
    """RMS over the active part set to `level_dbfs` (full scale 1.0)."""
    frame = 480
    m = len(x) // frame
    if m == 0:
        return x
    p = np.mean(x[: m * frame].reshape(m, frame) ** 2, axis=1)
    loud = p[p > np.percentile(p, 95) * 10**-4.5] if np.any(p > 0) else p
    rms = float(np.sqrt(np.mean(loud))) if len(loud) and np.mean(loud) > 0 else 1.0
    return x * (10 ** (level_dbfs / 20) / rms)


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak(
    text: str,
    voice: str = "en-us",
    speed_wpm: int = 165,
    pitch: int = 50,
    level_dbfs: float = -20.0,
) -> Array:
    """espeak-ng speech at 24 kHz (22,050 Hz resampled by 160/147)."""
    from scipy import signal

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "s.wav"
        subprocess.run(
            [
                "espeak-ng",
                "-v",
                voice,
                "-s",
                str(speed_wpm),
                "-p",
                str(pitch),
                "-w",
                str(path),
                text,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        with wave.open(str(path)) as w:
            raw = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
            rate = w.getframerate()
    x = raw.astype(np.float64) / 32768
    if rate == 22050:
        x = signal.resample_poly(x, 160, 147)
    elif rate != RATE_HZ:
        x = signal.resample_poly(x, RATE_HZ, rate)
    return scale_to(np.asarray(x, dtype=np.float64), level_dbfs)


def espeak_talk(seconds: float, seed: int, voice: str = "en-us", pitch: int = 50) -> Array:
    """Sentences (chosen by seed) until `seconds` are filled, with short pauses."""
    rng = np.random.default_rng(seed)
    parts: list[Array] = []
    total = 0
    order = rng.permutation(len(SENTENCES))
    i = 0
    while total < seconds * RATE_HZ:
        s = espeak(SENTENCES[order[i % len(order)]], voice=voice, pitch=pitch)
        gap = np.zeros(int(rng.uniform(0.1, 0.4) * RATE_HZ))
        parts += [s, gap]
        total += len(s) + len(gap)
        i += 1
    return np.concatenate(parts)[: int(seconds * RATE_HZ)]


def room_ir(
    rt60_s: float, seed: int, rate_hz: int = RATE_HZ, direct: float = 1.0, early_ms: float = 3.0
) -> Array:
    """Direct path at sample 0, then exponentially decaying diffuse reflections."""
    rng = np.random.default_rng(seed)
    n = int(max(rt60_s, 0.05) * 1.2 * rate_hz)
    t = np.arange(n) / rate_hz
    decay = np.exp(-6.91 * t / max(rt60_s, 1e-3))
    tail = rng.standard_normal(n) * decay
    tail[: int(early_ms / 1000 * rate_hz)] = 0
    h = 0.25 * tail / max(np.sqrt(np.sum(tail**2)), 1e-12)
    h[0] += direct
    return h


def loudspeaker(x: Array, rate_hz: int = RATE_HZ, clip_fraction: float | None = None) -> Array:
    """A small speaker: no bass below 200 Hz, soft top end, optional hard clipping."""
    from scipy import signal

    y = signal.sosfilt(signal.butter(2, 200, "high", fs=rate_hz, output="sos"), x)
    y = signal.sosfilt(signal.butter(2, 7000, "low", fs=rate_hz, output="sos"), y)
    y = np.asarray(y, dtype=np.float64)
    if clip_fraction is not None:
        limit = clip_fraction * float(np.max(np.abs(y)))
        y = np.clip(y, -limit, limit)
    return y


def band_power(x: Array, rate_hz: int = RATE_HZ) -> float:
    y = to_analysis_rate(x, rate_hz)
    return float(np.mean(y**2)) if len(y) else 0.0


def band_energy(x: Array, rate_hz: int = RATE_HZ) -> float:
    """Total energy in the analysis band (the filter's ring-out included)."""
    tail = np.zeros(rate_hz // 10)
    y = to_analysis_rate(np.concatenate([x, tail]), rate_hz)
    return float(np.sum(y**2))


def late_chunk_player(x: Array, d0_ms: float, d1_ms: float, seed: int) -> tuple[Array, int]:
    """`x` as a late-chunk player outputs it, `d0_ms` after it was handed over: gaps of
    5-15 ms before random 10 ms chunks until the delay has grown to `d1_ms`."""
    rng = np.random.default_rng(seed)
    chunk = RATE_HZ // 100
    n_chunks = len(x) // chunk
    gaps: dict[int, int] = {}
    left = round((d1_ms - d0_ms) * RATE_HZ / 1000)
    gap_count = 0
    while left > 0:
        g = min(left, int(rng.integers(RATE_HZ // 200, 3 * RATE_HZ // 200 + 1)))
        c = int(rng.integers(n_chunks // 10, n_chunks - n_chunks // 10))
        gaps[c] = gaps.get(c, 0) + g
        left -= g
        gap_count += 1
    out = [np.zeros(round(d0_ms * RATE_HZ / 1000))]
    for c in range(n_chunks):
        out.append(np.zeros(gaps.get(c, 0)))
        out.append(x[c * chunk : (c + 1) * chunk])
    return np.concatenate(out)[: len(x)], gap_count


def noise(n: int, seed: int, kind: str = "pink") -> Array:
    """Unit-RMS noise (white or pink), so `noise(...) * 10 ** (dbfs / 20)` is at `dbfs`."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n)
    if kind == "white":
        return w
    spec = np.fft.rfft(w)
    f = np.arange(len(spec))
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    pink = np.fft.irfft(spec, n)
    rms = float(np.sqrt(np.mean(pink**2)))
    return pink / rms if rms > 0 else pink


@dataclass
class Case:
    """One played/recorded pair and its truth (delay of the direct path at the middle)."""

    name: str
    played: Array
    recorded: Array
    echo: bool
    delay_ms: float | None = None
    erl_db: float | None = None
    drift_ppm: float = 0.0
    nrl_db: float | None = None
    ref_active_s: float = 0.0
    linear: bool = True  # no clipping, no double talk: the "linear paths"
    tags: dict[str, object] = field(default_factory=dict)

    @property
    def enr_db(self) -> float | None:
        if self.erl_db is None or self.nrl_db is None:
            return None
        return self.erl_db - self.nrl_db


def _pcm16(x: Array) -> NDArray[np.int16]:
    return np.asarray(np.clip(np.round(x * 32768), -32768, 32767), dtype=np.int16)


def make_case(
    name: str,
    played: Array,
    *,
    seed: int,
    echo: bool = True,
    erl_db: float = -20.0,
    delay_ms: float = 120.0,
    drift_ppm: float = 0.0,
    nrl_db: float = -60.0,
    rt60_s: float = 0.0,
    speaker_clip: float | None = None,
    mic_clip_fraction: float | None = None,
    near_end: Array | None = None,
    capture_extra_s: float = 0.5,
    jumps_ms: tuple[float, ...] = (),
    other: Array | None = None,
) -> Case:
    """Build the capture: echo path (speaker, room, delay, drift, gain) + noise + near end.

    `other` replaces the echo source (a no-echo case whose capture holds unrelated audio at
    the echo's level). All levels are relative to the played signal's power in the band.

    ERL truth is the path's gain: the echo's total band energy (reverberation tail
    included) over the played signal's, before the capture cuts anything off. Scaling
    the *captured* echo power instead (as this did until the accuracy work of issue 8)
    makes the truth depend on how much of the echo fell past the capture's end and on the
    capture being longer than the reference: up to ±0.7 dB that no estimator can know.
    """
    rng_seed = seed * 7919
    n_cap = len(played) + int(capture_extra_s * RATE_HZ)
    ref_p = band_power(played)
    recorded = np.zeros(n_cap)
    truth_erl = None
    linear = speaker_clip is None and mic_clip_fraction is None and near_end is None
    captured_erl = None
    source = played if other is None else other
    if echo or other is not None:
        path = loudspeaker(source, clip_fraction=speaker_clip)
        if rt60_s > 0:
            from scipy import signal

            path = np.asarray(signal.fftconvolve(path, room_ir(rt60_s, seed)), dtype=np.float64)
        n = np.arange(n_cap, dtype=np.float64)
        t_mid = n_cap / 2 / RATE_HZ
        d = delay_ms / 1000 + drift_ppm * 1e-6 * (n / RATE_HZ - t_mid)
        for j, at in enumerate(jumps_ms):  # playback under-runs: the delay steps up
            d = d + np.where(n >= (j + 1) * n_cap / (len(jumps_ms) + 1), at / 1000, 0.0)
        pos = n - d * RATE_HZ
        e = sinc_interpolate(path, pos, phases=None)  # exact: this is the truth
        if echo:
            ratio = band_energy(path) / max(band_energy(played), 1e-30)
            gain = np.sqrt(10 ** (erl_db / 10) / max(ratio, 1e-30))
        else:  # unrelated audio at the stated level in the capture
            gain = np.sqrt(ref_p * 10 ** (erl_db / 10) / max(band_power(e), 1e-30))
        e *= gain
        truth_erl = erl_db if echo else None
        if echo:
            captured_erl = 10 * float(np.log10(max(band_power(e), 1e-30) / ref_p))
        recorded += e
    noise_sig = noise(n_cap, rng_seed + 1)
    noise_sig *= np.sqrt(ref_p * 10 ** (nrl_db / 10) / max(band_power(noise_sig), 1e-30))
    recorded += noise_sig
    if near_end is not None:
        ne = np.zeros(n_cap)
        ne[: min(n_cap, len(near_end))] = near_end[:n_cap]
        recorded += ne
    if mic_clip_fraction is not None:
        level = float(np.quantile(np.abs(recorded), 1 - mic_clip_fraction))
        recorded = np.clip(recorded / level, -1.0, 1.0)  # the mic gain is part of the ERL
        if truth_erl is not None and captured_erl is not None:
            truth_erl -= 20 * float(np.log10(level))
            captured_erl -= 20 * float(np.log10(level))
    from doctor.audio.echo.dsp import active_frames, frame_power

    act = active_frames(frame_power(to_analysis_rate(played, RATE_HZ), 160))
    return Case(
        name,
        played,
        recorded,
        echo,
        delay_ms if echo else None,
        truth_erl,
        drift_ppm,
        nrl_db,
        float(act.sum()) * 0.02,
        linear,
        {
            "duration_s": round(len(played) / RATE_HZ, 2),
            "erl_set_db": erl_db if echo else None,
            "erl_captured_db": captured_erl,
            "nrl_set_db": nrl_db,
            "rt60_s": rt60_s,
            "speaker_clip": speaker_clip,
            "mic_clip_fraction": mic_clip_fraction,
            "double_talk": near_end is not None,
            "jumps": len(jumps_ms),
        },
    )


def pcm16(case: Case) -> tuple[NDArray[np.int16], NDArray[np.int16]]:
    """The pair as the 16-bit files an app would log."""
    return _pcm16(case.played), _pcm16(case.recorded)
