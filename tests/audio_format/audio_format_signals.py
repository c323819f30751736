"""Test signals for the audio-format area: speech-like numpy audio and encoders.

Speech-like: a glottal pulse train with a wandering pitch, through three formant
resonators whose frequencies move, gated at a syllable rate. Not speech, but it has the
properties the estimators rely on (pitch, formants, syllabic envelope, band limits).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import signal

F = npt.NDArray[np.float64]


def speech_like(
    seconds: float = 3.0,
    rate: int = 24000,
    f0: float = 120.0,
    formant_scale: float = 1.0,
    syllable_hz: float = 4.0,
    seed: int = 0,
    level: float = 0.3,
) -> F:
    """Float speech-like signal in [-1, 1] (peak = level)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    pitch = f0 * (
        1
        + 0.12 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
        + 0.05 * np.sin(2 * np.pi * 2.3 * t)
    )
    phase = np.cumsum(pitch / rate)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    # glottal pulse shape: low-pass the impulses
    b, a = signal.butter(2, min(0.99, 3000 / (rate / 2)))
    src = signal.lfilter(b, a, pulses) + 0.02 * rng.standard_normal(n)
    out = np.zeros(n)
    seg = int(0.05 * rate)
    formant_sets = [
        (700, 1200, 2600),
        (300, 2300, 3000),
        (500, 900, 2400),
        (400, 1900, 2600),
        (600, 1700, 2500),
    ]
    for start in range(0, n, seg):
        stop = min(n, start + seg)
        fs = formant_sets[(start // seg + seed) % len(formant_sets)]
        y = src[start:stop]
        acc = np.zeros(stop - start)
        for k, (fc, bw) in enumerate(zip(fs, (90, 120, 180), strict=False)):
            fc = fc * formant_scale
            if fc >= rate / 2 * 0.95:
                continue
            r = np.exp(-np.pi * bw / rate)
            th = 2 * np.pi * fc / rate
            acc += signal.lfilter([1 - r], [1, -2 * r * np.cos(th), r * r], y) / (k + 1)
        out[start:stop] = acc
    # fricative noise bursts between syllables
    noise = signal.lfilter(
        *signal.butter(2, [min(0.9, 3500 / (rate / 2)), min(0.95, 7000 / (rate / 2))], "band"),
        rng.standard_normal(n),
    )
    env = 0.5 - 0.5 * np.cos(2 * np.pi * syllable_hz * t + rng.uniform(0, 6))
    env = env**1.5
    out = out * env + 0.05 * noise * (1 - env) * (np.std(out) / max(np.std(noise), 1e-9))
    out = out / max(np.abs(out).max(), 1e-12) * level
    return out


def to_i16(x: F) -> npt.NDArray[np.int16]:
    return np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")


def mulaw_encode(x: F) -> bytes:
    v = np.clip(np.round(x * 32767), -32767, 32767).astype(np.int32)
    sign = (v < 0).astype(np.int32) * 0x80
    mag = np.minimum(np.abs(v) + 0x84, 0x7FFF)
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def alaw_encode(x: F) -> bytes:
    v = np.clip(np.round(x * 32767), -32767, 32767).astype(np.int32) >> 3  # 13-bit
    sign = np.where(v >= 0, 0x80, 0)
    mag = np.abs(v)
    out = np.zeros(v.shape, np.int32)
    small = mag < 32
    out[small] = mag[small] >> 1
    big = ~small
    exponent = np.floor(np.log2(np.maximum(mag[big], 1))).astype(np.int32) - 4
    exponent = np.clip(exponent, 1, 7)
    mantissa = (mag[big] >> exponent) & 0x0F
    out[big] = (exponent << 4) | mantissa
    return ((out | sign) ^ 0x55).astype(np.uint8).tobytes()


def s24_bytes(x: F) -> bytes:
    v = np.clip(np.round(x * 8388607), -8388608, 8388607).astype(np.int32)
    return np.stack([v & 255, (v >> 8) & 255, (v >> 16) & 255], 1).astype(np.uint8).tobytes()


def wav_bytes(samples: bytes, rate: int, channels: int = 1, width: int = 2) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.wav"
        with wave.open(str(p), "wb") as w:
            w.setnchannels(channels)
            w.setsampwidth(width)
            w.setframerate(rate)
            w.writeframes(samples)
        return p.read_bytes()


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak(text: str, voice: str = "en", pitch: int = 50, speed: int = 160) -> tuple[F, int]:
    """espeak-ng speech as float mono and its rate (22050 Hz)."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "s.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(p), text],
            check=True,
            capture_output=True,
        )
        with wave.open(str(p), "rb") as w:
            rate = w.getframerate()
            data = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768
    return data, rate


def resample(x: F, src: int, dst: int) -> F:
    from math import gcd

    g = gcd(src, dst)
    return np.asarray(signal.resample_poly(x, dst // g, src // g), dtype=np.float64)
