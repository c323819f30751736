"""The `audio-format` check: validate a sample of what the app sends (`--audio FILE`)."""

from __future__ import annotations

from doctor.context import Context
from doctor.registry import check
from doctor.result import Result, skipped
from doctor.runner import run_blocking


def _validate(path: str) -> Result:
    from doctor.audio.format.outcome import validation_result
    from doctor.files.sources import InputError, validate_path
    from doctor.result import errored

    try:
        v = validate_path(path, None)
    except InputError as exc:
        return errored("unreadable_input", str(exc), {"path": path})
    return validation_result(v)


@check("audio-format", "Audio format", timeout=120.0)
async def audio_format(ctx: Context) -> Result:
    """Whether a sample of what the app puts in input.audio is base64 PCM16 LE mono 24 kHz."""
    if not ctx.audio_file:
        return skipped(
            "no_input",
            "no audio sample given: pass `--audio FILE` with what your "
            "app sends in input.audio (raw, WAV, base64, JSON or JSON lines)",
        )
    return await run_blocking(_validate, ctx.audio_file)
