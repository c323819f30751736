"""`agent-doctor watch`: a relay between the app and the service that diagnoses the app live.

Light at import: the relay, the worker and the analyses load when it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from typing import Any

import click

from doctor.cli import (
    build_context,
    check_report_path,
    emit_report,
    report_options,
    service_options,
)


def _check_capture_path(path: str | None) -> None:
    if path is None:
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise click.UsageError(
            f"cannot write the capture to {path}: {directory} is not a writable folder"
        )


@click.command("watch")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default="a free port",
    help="Port of the relay on 127.0.0.1.",
)
@click.option(
    "--sessions",
    "sessions",
    type=click.IntRange(min=1),
    metavar="N",
    help="Stop after N app connections have closed (a resume is a connection).",
)
@click.option(
    "--for",
    "seconds",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="Stop after SECONDS.",
)
@click.option(
    "--capture",
    "capture_path",
    type=click.Path(dir_okay=False),
    help="Keep the capture (JSON lines; `agent-doctor analyze` reads it).",
)
@click.option(
    "--audio",
    "audio_mode",
    type=click.Choice(["keep", "summary"]),
    default="keep",
    show_default=True,
    help="Keep the audio in the capture, or only its size and validity.",
)
@service_options
@report_options
def watch_command(
    port: int,
    sessions: int | None,
    seconds: float | None,
    capture_path: str | None,
    audio_mode: str,
    **params: Any,
) -> None:
    """Relay your app's sessions to the service and diagnose them as they run.

    Point your app at the printed URL instead of the service's; every frame is
    forwarded unchanged. Stops on Ctrl-C, after --sessions N or --for SECONDS, then
    prints the report.
    """
    from doctor.net.agent_api import proxy_shown
    from doctor.report.build import build_report, exit_code
    from doctor.watch.instructions import instructions
    from doctor.watch.relay import Upstream
    from doctor.watch.report import watch_report_results
    from doctor.watch.run import WatchStartError, watch

    check_report_path(params.get("report_path"))
    _check_capture_path(capture_path)
    ctx = build_context(params)
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    upstream = Upstream(ctx.ws_url, ctx.token_url, ctx.proxy, ctx.ca_bundle, ctx.timeout)

    def line(text: str) -> None:
        sys.stderr.write(ctx.redactor.scrub(text) + "\n")
        sys.stderr.flush()

    def ready(relay: Any) -> None:
        # only the user's URLs are scrubbed (a key in their query or user info): the
        # examples' `?token=${token}` must stay as it is
        shown_ws, shown_token = (ctx.redactor.scrub(u) for u in (ctx.ws_url, ctx.token_url))
        sys.stderr.write(instructions(relay.url, relay.token_url, shown_ws, shown_token))
        sys.stderr.flush()
        if ctx.proxy:
            line(f"  (upstream through {proxy_shown(ctx.proxy)})")

    keep = capture_path is not None
    if capture_path is None:
        fd, capture_path = tempfile.mkstemp(prefix="agent-doctor-watch-", suffix=".jsonl")
        os.close(fd)
    try:
        try:
            outcome = asyncio.run(
                watch(
                    upstream,
                    port=port,
                    capture_path=capture_path,
                    audio=audio_mode,  # type: ignore[arg-type]
                    sessions=sessions,
                    seconds=seconds,
                    on_secret=ctx.add_secret,
                    line=line,
                    on_ready=ready,
                )
            )
        except WatchStartError as exc:
            raise click.UsageError(str(exc)) from None
        line(
            f"agent-doctor watch: stopped ({outcome.stopped_by or 'done'}); analysing "
            f"{outcome.relay_stats.get('connections', 0)} connections"
        )
        results = watch_report_results(outcome, capture_path, ctx)
        shown = capture_path if keep else "(the relay's capture, not kept: --capture FILE)"
        for summary in outcome.sessions:
            summary["input"] = shown
        outcome.input_notes = [n.replace(capture_path, shown) for n in outcome.input_notes]
    finally:
        if not keep:
            with contextlib.suppress(OSError):
                os.unlink(capture_path)
    if keep and outcome.worker_stats.get("capture_failed"):
        line(f"the capture {capture_path} is incomplete: {outcome.worker_stats['capture_failed']}")
    elif keep:
        line(f"capture written to {capture_path}")
    report = build_report(
        "watch",
        ctx,
        results,
        started,
        round((time.monotonic() - t0) * 1000),
        params.get("report_path"),
        extra={"sessions": outcome.sessions, "input_notes": outcome.input_notes},
    )
    emit_report(report, params)
    sys.exit(exit_code(results))
