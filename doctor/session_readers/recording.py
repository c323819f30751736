"""Decode a session recording with libsndfile (soundfile) in blocks; never whole.

Up to 15 minutes the whole file is decoded (activity for the plot, echo on the busiest
windows); a longer one is decoded only in the windows where the agent talked most (from
the timeline when there is one), so an hour costs seconds, not the minute that decoding
all of its Opus takes on a slow core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from doctor.session.recording import (
    DECODE_WINDOW_S,
    FULL_PASS_S,
    WINDOWS,
    RecordingMeter,
    RecordingSummary,
    combine_windows,
    plan_windows,
)
from doctor.session_readers.jsonstream import Note

BLOCK_FRAMES = 48000 * 4


def _decode(
    f: Any,
    meter: RecordingMeter,
    frames: int | None,
    progress: Callable[[float], None] | None,
    total: int | None,
    done: int,
) -> int:
    left = frames
    while left is None or left > 0:
        want = BLOCK_FRAMES if left is None else min(BLOCK_FRAMES, left)
        block = f.read(want, dtype="float32", always_2d=True)
        if len(block) == 0:
            break
        meter.feed(block)
        done += len(block)
        if left is not None:
            left -= len(block)
        if progress is not None and total:
            progress(min(1.0, done / total))
    return done


def read_recording(
    path: str,
    note: Note,
    progress: Callable[[float], None] | None = None,
    echo: bool = True,
    agent_spans: list[tuple[float, float]] | None = None,
) -> RecordingSummary | None:
    """Stream the file through the meter; a file that does not decode gets one note.

    `agent_spans`: where the agent spoke (seconds into the recording, roughly), to pick the
    windows of a long recording."""
    try:
        import soundfile as sf
    except (ImportError, OSError) as exc:  # OSError: libsndfile itself is missing
        note(f"{path}: cannot decode recordings here ({exc}); install libsndfile1")
        return None
    try:
        with sf.SoundFile(path) as f:
            rate, channels, frames = f.samplerate, f.channels, f.frames
            duration = frames / rate if frames > 0 else 0.0
            if duration <= FULL_PASS_S or channels < 2 or not f.seekable():
                meter = RecordingMeter(rate, channels)
                _decode(f, meter, None, progress, frames if frames > 0 else None, 0)
                summary = meter.finish(echo=echo)
            else:
                starts = plan_windows(duration, agent_spans)
                planned = int(len(starts) * DECODE_WINDOW_S * rate)
                done = 0
                decoded: list[tuple[float, RecordingMeter, RecordingSummary]] = []
                for start in starts:
                    f.seek(int(start * rate))
                    meter = RecordingMeter(rate, channels)
                    span = int(DECODE_WINDOW_S * rate)
                    done = _decode(f, meter, span, progress, planned, done)
                    decoded.append((start, meter, meter.finish(echo=False)))
                busiest = sorted(decoded, key=lambda d: -sum(e - s for s, e in d[2].agent_active))
                for _, meter, w in busiest[:WINDOWS]:
                    if echo:
                        w.echo = meter.measure()
                for _, meter, _ in decoded:
                    meter.release()
                summary = combine_windows([(s, w, 0.0) for s, _, w in decoded], duration)
    except (RuntimeError, sf.LibsndfileError, ValueError, OSError) as exc:
        note(f"{path}: the recording does not decode ({str(exc).splitlines()[0][:160]})")
        return None
    if summary.note:
        note(f"{path}: {summary.note}")
    return summary
