"""Decode a session recording with libsndfile (soundfile) in blocks; never whole."""

from __future__ import annotations

from collections.abc import Callable

from doctor.session.recording import RecordingMeter, RecordingSummary
from doctor.session_readers.jsonstream import Note

BLOCK_FRAMES = 48000 * 4


def read_recording(
    path: str, note: Note, progress: Callable[[float], None] | None = None, echo: bool = True
) -> RecordingSummary | None:
    """Stream the file through the meter; a file that does not decode gets one note."""
    try:
        import soundfile as sf
    except (ImportError, OSError) as exc:  # OSError: libsndfile itself is missing
        note(f"{path}: cannot decode recordings here ({exc}); install libsndfile1")
        return None
    try:
        with sf.SoundFile(path) as f:
            meter = RecordingMeter(f.samplerate, f.channels)
            total = f.frames if f.frames > 0 else None
            done = 0
            while True:
                block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                meter.feed(block)
                done += len(block)
                if progress is not None and total:
                    progress(min(1.0, done / total))
    except (RuntimeError, sf.LibsndfileError, ValueError, OSError) as exc:
        note(f"{path}: the recording does not decode ({str(exc).splitlines()[0][:160]})")
        return None
    summary = meter.finish(echo=echo)
    if summary.note:
        note(f"{path}: {summary.note}")
    return summary
