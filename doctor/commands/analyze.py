"""`agent-doctor analyze PATH...`: diagnose sessions from what the user has on disk.

Light at import; the analysis loads when a path is read. `analyze_and_report` is shared
with `agent-doctor session`, which downloads the artifacts into a folder first.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from doctor.cli import build_context, check_report_path, emit_report, report_options

if TYPE_CHECKING:
    from doctor.context import Context
    from doctor.result import Result
    from doctor.session.analyzer import SessionFindings


class NoSession(click.ClickException):
    """Nothing analysable in the inputs: one line, exit 2 (the contract's bad-input code)."""

    exit_code = 2


class Bar:
    """A one-line progress bar on stderr, only on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.label = ""
        self.last = -1

    def start(self, label: str) -> None:
        self.label, self.last = label[-40:], -1

    def __call__(self, fraction: float) -> None:
        pct = int(fraction * 100)
        if not self.enabled or pct == self.last:
            return
        self.last = pct
        filled = pct * 30 // 100
        sys.stderr.write(f"\r\x1b[2K{self.label} [{'#' * filled}{'.' * (30 - filled)}] {pct}%")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.last >= 0:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
        self.last = -1


def analyze_paths(
    paths: list[str], notes: list[str], bar: Bar | None = None
) -> list[SessionFindings]:
    """Every session in every path; problems are appended to `notes` (one line each)."""
    from doctor.session_readers.detect import analyze_path

    bar = bar or Bar(False)
    found: list[SessionFindings] = []

    def note(line: str) -> None:
        bar.close()
        notes.append(line)
        click.echo(f"agent-doctor: {line}", err=True)

    for path in paths:
        bar.start(path)
        try:
            found += analyze_path(path, note, bar)
        finally:
            bar.close()
    from doctor.session.analyzer import share_recordings

    share_recordings(found)
    return found


def session_results(found: list[SessionFindings]) -> list[Result]:
    """All sessions' results; with several sessions each summary names its session."""
    from dataclasses import replace

    many = len(found) > 1
    out: list[Result] = []
    for f in found:
        tag = f"[{f.session_id or 'no session id'}] " if many else ""
        out += [replace(r, summary=tag + r.summary) if tag else r for r in f.results]
    return out


def _header(found: list[SessionFindings]) -> str:
    lines = []
    for f in found:
        s = f.summary()
        dur = f", {s['duration_s']:.1f} s" if s["duration_s"] is not None else ""
        lines.append(
            f"session {s['session_id'] or '(no session id in the log)'}: {s['input']} "
            f"[{s['shape']}]{dur}, {s['replies']} replies, {s['user_turns']} user turns"
        )
    return "\n".join(lines) + "\n\n" if lines else ""


PLOT_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def check_plot_path(path: str | None) -> None:
    """Refuse a --plot file that cannot be written before the analysis runs (exit 2)."""
    if not path:
        return
    import os

    ext = os.path.splitext(path)[1].lower()
    if ext not in PLOT_FORMATS:
        raise click.UsageError(
            f"cannot draw the timeline to {path}: name the file .png (or .pdf, .svg, .jpg)"
        )
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise click.UsageError(
            f"cannot draw the timeline to {path}: {directory} is not a writable folder"
        )


def analyze_and_report(
    paths: list[str],
    params: dict[str, Any],
    command: str = "analyze",
    ctx: Context | None = None,
    extra: dict[str, Any] | None = None,
    results_before: list[Result] | None = None,
) -> None:
    """Analyse, print the report (text or --json), write --report/--plot, exit (0/1/2).

    `params` as click gives them: `as_json`, `report_path`, `plot_path`, `verbose`,
    `no_color` (and the service options, for the report's target). `agent-doctor session`
    calls this on the folder it downloaded; `extra` adds top-level report fields.
    `results_before`: results of getting the inputs (`session`'s downloads) that lead the
    report; with them, an empty analysis is reported instead of refused.
    """
    from doctor.commands.analyze_support import add_untimed_ids, apply_log_facts
    from doctor.report.build import build_report, exit_code

    check_report_path(params.get("report_path"))
    check_plot_path(params.get("plot_path"))
    ctx = ctx or build_context(params)
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    notes: list[str] = []
    found = analyze_paths(paths, notes, Bar(sys.stderr.isatty()))
    if not found and not results_before:
        raise NoSession("no session found in " + ", ".join(paths) + " (see the lines above)")
    results = [*(results_before or []), *session_results(found)]
    sessions = [f.summary() for f in found]
    # `analyze` contacts no service (it has no --region): the log's region is the report's;
    # `session` fetched from the region it was given, which stays
    untimed_ids = apply_log_facts(ctx, found, region_chosen=command != "analyze")
    report = build_report(
        command,
        ctx,
        results,
        started,
        round((time.monotonic() - t0) * 1000),
        params.get("report_path"),
        extra={"sessions": sessions, "input_notes": notes, **(extra or {})},
    )
    add_untimed_ids(report, untimed_ids)
    plot_path = params.get("plot_path")
    if plot_path:
        from doctor.commands.session_plot import PlotUnavailable, plot_sessions

        try:
            plot_sessions(found, plot_path)
            click.echo(f"agent-doctor: timeline drawn to {plot_path}", err=True)
        except PlotUnavailable as exc:
            click.echo(f"agent-doctor: {exc}", err=True)
        except (OSError, ValueError) as exc:  # the report still follows
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            click.echo(f"agent-doctor: cannot draw the timeline to {plot_path}: {why}", err=True)
    if not params.get("as_json"):
        sys.stdout.write(_header(found))
    emit_report(report, params)
    sys.exit(exit_code(results))


# `analyze` and `session` draw the same timeline
session_plot_option = click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    metavar="FILE.png",
    help="Draw each session's timeline to FILE.png (needs the `plot` extra: matplotlib).",
)


@click.command("analyze")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@session_plot_option
@report_options
def analyze_command(paths: tuple[str, ...], plot_path: str | None, **params: Any) -> None:
    """Diagnose sessions from files: a folder of the vendor's artifacts (timeline,
    metadata, recording), your app's event log (JSON array or JSON lines) or a capture
    from `agent-doctor watch`."""
    analyze_and_report(list(paths), {**params, "plot_path": plot_path})
