"""`agent-doctor validate-audio FILE`: say exactly what is wrong with the bytes an app sends.

Light at import (click and the CLI helpers only); numpy/scipy load when a file is analysed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

import click

from doctor.audio.format.pcm import MAX_SOURCE_RATE_HZ, MIN_SOURCE_RATE_HZ
from doctor.cli import (
    build_context,
    check_report_path,
    emit_report,
    report_options,
    write_atomic,
    write_whole,
)

if TYPE_CHECKING:
    from doctor.audio.format.findings import Validation

KIND_CHOICES = ("auto", "raw", "container", "base64", "json", "jsonl")
SEVERITY_MARK = {"error": "ERROR  ", "warning": "WARNING", "info": "info   "}


class BadInput(click.ClickException):
    """Unreadable input: one line, exit 2 (the contract's code for bad input)."""

    exit_code = 2


def _spool_stdin() -> str:
    """--fix reads the input twice; stdin is copied to a temporary file first (bounded memory)."""
    from doctor.files.sources import iter_chunks

    fd, path = tempfile.mkstemp(prefix="agent-doctor-stdin-")
    with os.fdopen(fd, "wb") as out:
        for c in iter_chunks(sys.stdin.buffer):
            out.write(c)
    return path


def render_text(v: Validation, path: str, changes: list[str] | None, color: bool) -> str:
    def paint(s: str, code: str) -> str:
        return f"\x1b[{code}m{s}\x1b[0m" if color else s

    d = v.detected
    lines = [f"validate-audio {path}"]
    what = ", ".join(
        str(x)
        for x in (
            d.input_kind,
            d.container or "no container",
            d.encoding or "?",
            f"{d.sample_rate_hz} Hz" if d.sample_rate_hz else None,
            f"{d.channels} ch" if d.channels else None,
        )
        if x
    )
    lines.append(f"  detected: {what} (confidence {d.confidence:.0%})")
    dur = v.stats.get("duration_s")
    if dur is not None:
        lines.append(f"  audio: {dur:.2f} s, {v.stats.get('audio_bytes', 0)} bytes")
    if v.messages:
        m = v.messages
        lines.append(
            f"  messages: {m['lines']} lines, {m['audio_messages']} input.audio, "
            f"{m['rejected_messages']} the service would reject"
        )
    lines.append("")
    found = v.sorted_findings()
    if not found:
        lines.append("  no problems found")
    for f in found:
        mark = SEVERITY_MARK.get(f.severity, f.severity)
        col = {"error": "31", "warning": "33"}.get(f.severity, "2")
        lines.append(f"  {paint(mark, col)} {f.code}: {f.message}")
    fixes: list[str] = []
    from doctor import guide

    for f in found:
        if f.severity == "info" or f.guide in fixes:
            continue
        fixes.append(f.guide)
    for gid in fixes:
        first = next(f for f in found if f.guide == gid)
        fx = guide.fix(gid, detail=first.detail or None)
        lines.append("")
        lines.append(f"  Fix: {fx.title}")
        lines.extend(f"    - {s}" for s in fx.steps)
        lines.extend(f"    $ {c}" for c in fx.commands)
        lines.append(f"    {fx.url}")
    if changes is not None:
        lines.append("")
        lines.append("  --fix wrote the converted audio; changes:")
        lines.extend(f"    - {c}" for c in changes)
    lines.append("")
    verdict = v.verdict
    lines.append(
        "Verdict: "
        + paint(verdict, "32" if verdict == "valid" else "31")
        + ("" if verdict == "valid" else " (not what the API expects)")
    )
    return "\n".join(lines) + "\n"


def write_fix(
    path: str, kind: str | None, v: Validation, out: str, source_rate: int | None
) -> list[str]:
    """Convert the input to raw PCM16 LE mono 24 kHz; refuse when the source is uncertain."""
    from doctor.audio.format.convert import convert, describe_changes
    from doctor.audio.format.findings import Validation as V
    from doctor.audio.format.inputs import Layered, layers
    from doctor.files.sources import open_chunks

    rate_ok = v.convertible or (
        source_rate is not None
        and v.refuse_reason is not None
        and "--source-rate" in v.refuse_reason
    )
    if not rate_ok:
        why = v.refuse_reason or (
            f"the sample format is uncertain (confidence {v.detected.confidence:.0%})"
        )
        raise click.ClickException(f"--fix refused: {why}")
    if not v.stats.get("audio_bytes"):
        raise click.ClickException("--fix refused: there is no audio to convert")
    fmt = v.stats["source_format"]
    src_rate = source_rate or int(fmt["rate_hz"])
    if not MIN_SOURCE_RATE_HZ <= src_rate <= MAX_SOURCE_RATE_HZ:
        raise click.ClickException(
            f"--fix refused: the source rate, {src_rate} Hz, is outside "
            f"{MIN_SOURCE_RATE_HZ}-{MAX_SOURCE_RATE_HZ} Hz; pass --source-rate"
        )
    layered: list[str] = []
    if v.detected.input_kind in ("base64", "json", "jsonl"):
        layered.append(f"decoded the {v.detected.input_kind} layer")
    if v.detected.container == "wav":
        layered.append("removed the WAV header")
    scratch = V()
    lay = Layered()
    payload = layers(open_chunks(path), kind, scratch, lay)

    def body(fh: IO[bytes]) -> None:
        for chunk in convert(payload, fmt["encoding"], int(fmt["channels"]), src_rate):
            fh.write(chunk)

    write_whole(out, body, "the --fix output")  # `--fix /dev/stdout` is written through
    return describe_changes(fmt["encoding"], int(fmt["channels"]), src_rate, layered)


@click.command("validate-audio")
@click.argument("file", metavar="FILE")
@click.option(
    "--input-kind",
    type=click.Choice(KIND_CHOICES),
    default="auto",
    show_default=True,
    help="What FILE holds; auto-detected by default.",
)
@click.option(
    "--fix",
    "fix_path",
    type=click.Path(dir_okay=False),
    metavar="OUT",
    help="Write the audio converted to raw PCM16 LE mono 24 kHz to OUT.",
)
@click.option(
    "--source-rate",
    type=click.IntRange(MIN_SOURCE_RATE_HZ, MAX_SOURCE_RATE_HZ),
    metavar="HZ",
    help="The rate the audio was captured at, when --fix cannot infer it.",
)
@report_options
def validate_audio(
    file: str, input_kind: str, fix_path: str | None, source_rate: int | None, **params: Any
) -> None:
    """Check what your app puts in `input.audio` (raw PCM, WAV, base64, a JSON message or
    a JSON-lines capture; `-` reads standard input) and say exactly what is wrong."""
    from doctor.audio.format.outcome import validation_result
    from doctor.files.sources import InputError, validate_path
    from doctor.report.build import build_report, exit_code

    check_report_path(params.get("report_path"))
    if fix_path is not None:
        d = os.path.dirname(os.path.abspath(fix_path))
        if not os.path.isdir(d) or not os.access(d, os.W_OK):
            raise click.UsageError(
                f"cannot write --fix output to {fix_path}: {d} is not a writable folder"
            )
    kind = None if input_kind == "auto" else input_kind
    ctx = build_context(params)
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    spooled = None
    try:
        path = file
        if file == "-" and fix_path is not None:
            spooled = path = _spool_stdin()
        try:
            v = validate_path(path, kind, source_rate)
        except InputError as exc:
            raise BadInput(str(exc).replace(spooled or "\0", "standard input")) from None
        changes = None
        refusal = None
        if fix_path:
            try:
                changes = write_fix(path, kind, v, fix_path, source_rate)
            except click.ClickException as exc:
                refusal = exc.format_message()
    finally:
        if spooled:
            os.unlink(spooled)
    result = validation_result(v).with_meta(
        "audio-format", "Audio format", round((time.monotonic() - t0) * 1000)
    )
    extra: dict[str, Any] = {
        "validation": {
            **v.to_dict(),
            "input": file,
            "fix": {"path": fix_path, "changes": changes, "refused": refusal} if fix_path else None,
        }
    }
    report = build_report(
        "validate-audio",
        ctx,
        [result],
        started,
        round((time.monotonic() - t0) * 1000),
        params.get("report_path"),
        extra=extra,
    )
    if params.get("as_json"):
        emit_report(report, {**params, "report_path": None})  # --report comes last, below
    else:
        from doctor.cli import use_color

        sys.stdout.write(render_text(v, file, changes, use_color(params)))
        sys.stdout.flush()
    if refusal:  # said before --report is written (both modes): a failed write must not hide it
        click.echo(f"agent-doctor: {refusal}", err=True)
    code = 0 if v.verdict == "valid" and not refusal else max(1, exit_code([result]))
    if params.get("report_path"):  # after the report is shown; a failed write is its own
        import json  # line and exit 1, never better than `code` (0 or 1)

        write_atomic(params["report_path"], json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    sys.exit(code)
