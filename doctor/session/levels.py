"""When a chunk of the agent's audio counts as sound (pure): one threshold and one measure
for the session analysis and the relay, so that both time a reply from the same chunk."""

from __future__ import annotations

AUDIBLE_DBFS = -50.0
"""A reply chunk louder than this is audible (field-facts §16); replies open with silence."""


def audible(pcm: bytes, encoding: str = "audio/pcm") -> bool:
    """Whether a chunk's mean power is above AUDIBLE_DBFS (G.711 decoded first)."""
    import numpy as np  # here, not at import: the relay loads this before any audio

    if encoding in ("audio/pcmu", "audio/pcma"):
        from doctor.audio.format.pcm import decode

        x = decode(pcm, "mulaw" if encoding == "audio/pcmu" else "alaw")
        power = float(np.mean(x.astype(np.float64) ** 2)) if len(x) else 0.0
    else:
        n = len(pcm) // 2
        if n == 0:
            return False
        x16 = np.frombuffer(pcm[: n * 2], dtype="<i2").astype(np.float64) / 32768.0
        power = float(np.mean(x16**2))
    return power > 0 and 10 * np.log10(power) > AUDIBLE_DBFS
