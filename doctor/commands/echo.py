"""`agent-doctor echo --played PLAYED --recorded RECORDED`: the echo check on files.

For the agent's audio as the app played it and the microphone recording of the same
moment (raw PCM16 24 kHz or WAV). Light at import: numpy and scipy load when it runs.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from doctor.cli import build_context, check_report_path, emit_report, report_options

if TYPE_CHECKING:
    from doctor.audio.echo.analysis import EchoAnalysis

PLOT_INSTALL = "pip install 'agent-doctor[plot]'  # or: pip install matplotlib"


def _check_plot_path(path: str | None) -> None:
    if path is None:
        return
    try:
        import matplotlib  # noqa: F401  (only when --plot is given)
    except ImportError:
        raise click.UsageError(
            f"--plot needs matplotlib, which is not installed: {PLOT_INSTALL}"
        ) from None
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise click.UsageError(
            f"cannot write the plot to {path}: {directory} is not a writable folder"
        )


def _read(path: str, option: str) -> tuple[Any, int]:
    from doctor.files.pcm_file import AudioReadError, read_pcm16_mono

    try:
        return read_pcm16_mono(path)
    except AudioReadError as exc:
        raise click.UsageError(f"{option}: {exc}") from None


@click.command("echo")
@click.option(
    "--played",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="What the app played (the agent's audio): raw PCM16 24 kHz or WAV.",
)
@click.option(
    "--recorded",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The microphone recording made while it played: raw PCM16 24 kHz or WAV.",
)
@click.option(
    "--search-window",
    type=click.FloatRange(min=0.05, max=600.0),
    metavar="SECONDS",
    help="The files do not start together: look for the echo within ±SECONDS "
    "(default: same timeline, delays 0-2.5 s).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    metavar="FILE.png",
    help="Draw the correlation and the per-block delay track (needs matplotlib).",
)
@report_options
def echo_command(
    played: str, recorded: str, search_window: float | None, plot_path: str | None, **params: Any
) -> None:
    """Does the recording contain the played audio? Delay, echo return loss (ERL), floor."""
    from doctor.audio.echo.analysis import SHARED_TIMELINE, analyse_echo
    from doctor.audio.echo.analysis import search_window as make_window
    from doctor.audio.echo.report import echo_result, with_meta
    from doctor.report.build import build_report, exit_code

    check_report_path(params.get("report_path"))
    _check_plot_path(plot_path)
    ctx = build_context(params)
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    x, x_rate = _read(played, "--played")
    y, y_rate = _read(recorded, "--recorded")
    window = SHARED_TIMELINE if search_window is None else make_window(search_window)
    analysis = analyse_echo(x, x_rate, y, y_rate, window=window)
    evidence = {
        "mode": "files",
        "played_file": os.path.basename(played),
        "recorded_file": os.path.basename(recorded),
        "played_rate_hz": x_rate,
        "recorded_rate_hz": y_rate,
        "played_duration_s": round(len(x) / x_rate, 2) if x_rate else 0.0,
        **analysis.evidence(),
    }
    duration_ms = round((time.monotonic() - t0) * 1000)
    result = with_meta(echo_result(analysis, evidence), duration_ms)
    if plot_path:
        write_plot(analysis, plot_path)
    report = build_report("echo", ctx, [result], started, duration_ms, params.get("report_path"))
    emit_report(report, params)
    sys.exit(exit_code([result]))


def write_plot(analysis: EchoAnalysis, path: str) -> None:
    """Correlation against lag (with the surrogates' envelope) and the delay track."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from doctor.audio.echo.analysis import ECHO_S

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5))
    corr = analysis.correlation
    if corr is not None:
        top.plot(corr.lags_ms, corr.z, lw=0.8, label="played vs recorded")
        top.plot(
            corr.lags_ms, corr.null_z, lw=0.6, color="0.6", label="time-reversed surrogates (max)"
        )
        z_null = max(1.0, analysis.z_null or 1.0)
        top.axhline(
            ECHO_S * z_null,
            color="tab:red",
            ls="--",
            lw=0.8,
            label=f"echo threshold (S = {ECHO_S})",
        )
        if analysis.delay_ms is not None:
            top.axvline(
                analysis.delay_ms,
                color="tab:green",
                lw=0.8,
                label=f"delay {analysis.delay_ms:.1f} ms",
            )
        top.legend(loc="upper right", fontsize=8)
    top.set_xlabel("lag (ms)")
    top.set_ylabel("correlation z-score")
    top.set_title(analysis.describe(), fontsize=9)
    if analysis.track:
        t = [b.t_s for b in analysis.track]
        d = [b.delay_ms for b in analysis.track]
        z = [b.z for b in analysis.track]
        points = bottom.scatter(t, d, c=z, cmap="viridis", s=14)
        fig.colorbar(points, ax=bottom, label="block z-score")
    else:
        bottom.text(
            0.5,
            0.5,
            "no per-block delay track",
            ha="center",
            va="center",
            transform=bottom.transAxes,
        )
    bottom.set_xlabel("time in the recording (s)")
    bottom.set_ylabel("block delay (ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
