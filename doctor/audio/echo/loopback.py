"""A loopback input, recognised by what it records (pure).

A monitor or virtual cable is digital silence at rest and, while the probe plays, a nearly
lossless copy of it: an echo at ERL near 0 dB over a digitally silent floor. An acoustic
path loses 10 dB or more, and a room is never digitally silent; an attenuated software loop
(ERL well below 0 dB) or a copy mixed with noise is an ordinary echo.
"""

from __future__ import annotations

from doctor.audio.echo.analysis import EchoAnalysis, Verdict

LOSSLESS_ERL_DB = 3.0  # |ERL| within this: a copy, not a path through air
SILENT_FLOOR_DBFS = -100.0  # below this (or exact zeros) the input was digitally silent


def looks_like_loopback(analysis: EchoAnalysis) -> bool:
    if analysis.verdict is not Verdict.ECHO or analysis.erl_db is None:
        return False
    floor = analysis.noise_level_dbfs
    silent = floor is None or floor < SILENT_FLOOR_DBFS
    return silent and abs(analysis.erl_db) <= LOSSLESS_ERL_DB
