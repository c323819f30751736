"""`agent-doctor sandbox`: run the local Voice Agent API until SIGINT or SIGTERM.

Light at import: the server (websockets, numpy, trustme) is imported when the command runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import click

from doctor.sandbox.config import (
    BEHAVIOURS,
    FAULTS,
    REPLY_DONE_STATUS,
    RETRY_AFTER_FORMS,
    SWITCHES,
    TIMELINE_REASONS,
    TOKEN_ERROR_BODIES,
    FaultError,
    SandboxConfig,
    parse_fault,
)

F = Callable[..., Any]


class StartError(click.ClickException):
    exit_code = 2


def _faults(
    _: click.Context, __: click.Parameter, values: tuple[str, ...]
) -> dict[str, float | None]:
    faults: dict[str, float | None] = {}
    for value in values:
        try:
            name, param = parse_fault(value)
        except FaultError as exc:
            raise click.BadParameter(str(exc)) from None
        faults[name] = param
    return faults


def _fault_help() -> str:
    return "\n".join(
        f"  {name}{'=N' if default is not None else ''}: {text}"
        + (f" (default {default:g})" if default is not None else "")
        for name, (default, text) in FAULTS.items()
    )


def _switch_options(fn: F) -> F:
    """One `--NAME field|documented|...` option per SWITCHES entry, unset by default."""
    for name, switch in reversed(SWITCHES.items()):
        fn = click.option(
            "--" + name.replace("_", "-"),
            name,
            type=click.Choice(switch.choices),
            default=None,
            help=f"{switch.help}. Default: as --behaviour.",
        )(fn)
    return fn


@click.command("sandbox", epilog="Faults:\n\n" + _fault_help().replace("\n", "\n\n"))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port (0: any free port; the ready line says which).",
)
@click.option(
    "--tls/--no-tls",
    default=True,
    show_default=True,
    help="wss:// and https:// with a fresh CA (its file is in the ready line).",
)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    metavar="KEY",
    help="An API key to accept (repeatable); one is made when none is given.",
)
@click.option(
    "--forbidden-key",
    "forbidden_keys",
    multiple=True,
    metavar="KEY",
    help="A key that is valid but has no Voice Agent access (FORBIDDEN).",
)
@click.option(
    "--grace",
    "grace_s",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds a dropped session stays resumable (with --resume documented).",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="NAME[=N]",
    callback=_faults,
    help="Inject a failure (repeatable); see the list below.",
)
@click.option(
    "--events",
    "events_path",
    type=click.Path(dir_okay=False),
    help="Append every event, both ways, to FILE as JSON lines.",
)
@click.option(
    "--max-session",
    "max_session_s",
    type=click.FloatRange(min=0.1),
    default=10800.0,
    show_default=True,
    help="Cap on session length for API-key sessions (seconds).",
)
@click.option(
    "--behaviour",
    type=click.Choice(BEHAVIOURS),
    default="field",
    show_default=True,
    help="Imitate the live service as third parties measured it (field), or follow the "
    "vendor's docs (documented); the switches below change one behaviour each.",
)
@_switch_options
@click.option(
    "--agent",
    "agent_ids",
    multiple=True,
    metavar="ID",
    help="A stored agent id that session.update may name (repeatable); others get agent_not_found.",
)
@click.option(
    "--reply-done-status",
    type=click.Choice(REPLY_DONE_STATUS),
    default="completed",
    show_default=True,
    help="reply.done on normal completion: status field or none.",
)
@click.option(
    "--token-error-body",
    type=click.Choice(TOKEN_ERROR_BODIES),
    default="error",
    show_default=True,
    help="Body of the token endpoint's errors with --token-errors documented: {error: ...} "
    "(AssemblyAI's generic shape) or {detail: ...}. The field behaviour always answers "
    "{detail: ...}, as the live service does.",
)
@click.option(
    "--retry-after-form",
    type=click.Choice(RETRY_AFTER_FORMS),
    default="seconds",
    show_default=True,
    help="Retry-After of a 429 (fault token-rate-limited): delta-seconds or an HTTP-date.",
)
@click.option(
    "--updated-after-first",
    is_flag=True,
    help="Documented event shapes: also send session.updated after session.ready.",
)
@click.option("--no-ended-on-expiry", is_flag=True, help="No session.ended after session_expired.")
@click.option(
    "--reply-seconds",
    "reply_s",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    help="Length of each spoken reply.",
)
@click.option(
    "--tool-call",
    metavar="NAME",
    help="After each user turn, call this tool if the session defines it.",
)
@click.option(
    "--barge-in-delay",
    "barge_in_delay_s",
    type=click.FloatRange(0, 10),
    default=0.0,
    show_default=True,
    help="Seconds of user speech over a reply before the barge-in (the field: 1.1-2.2).",
)
@click.option(
    "--artifacts-dir",
    type=click.Path(file_okay=False),
    help="Keep each session's recording, timeline and metadata here (default: a "
    "temporary folder removed at stop).",
)
@click.option("--no-record", is_flag=True, help="No recordings, no artifacts.")
@click.option(
    "--artifacts-delay",
    "artifacts_delay_s",
    type=click.FloatRange(min=0),
    default=7.0,
    show_default=True,
    help="Seconds after a session's end before the Sessions API lists its artifacts.",
)
@click.option(
    "--artifact-url-ttl",
    "artifact_url_ttl_s",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    help="Lifetime of the pre-signed artifact URLs, seconds.",
)
@click.option(
    "--timeline-reason",
    type=click.Choice(TIMELINE_REASONS),
    default="user_initiated",
    show_default=True,
    help="The timeline's ended.reason after a proper session.end (both occur live).",
)
@click.option(
    "--timeline-quirks",
    is_flag=True,
    help="Timelines with the live irregular shape: the first answered user turn as a "
    "`user_speech_1` entry and a reply labelled `greeting`.",
)
@click.option("--quiet", is_flag=True, help="No event lines on stderr.")
def sandbox(**params: Any) -> None:
    """Run a local imitation of the Voice Agent API (token and WebSocket endpoints, the
    Sessions REST API with each session's recording, timeline and metadata).

    Prints one JSON line on stdout when ready: {"ws_url", "token_url", "ca_file",
    "api_keys"}; logs one line per event on stderr; stops on Ctrl+C or SIGTERM.
    """
    events_path = params["events_path"]
    if events_path:
        _check_writable(events_path)
    if params["artifacts_dir"] and not params["no_record"]:
        _check_artifacts_dir(params["artifacts_dir"])
    try:
        config = SandboxConfig(
            host=params["host"],
            port=params["port"],
            tls=params["tls"],
            api_keys=list(params["api_keys"]),
            forbidden_keys=list(params["forbidden_keys"]),
            grace_s=params["grace_s"],
            faults=params["faults"],
            events_path=events_path,
            log_events=not params["quiet"],
            max_session_s=params["max_session_s"],
            behaviour=params["behaviour"],
            **{name: params[name] for name in SWITCHES},
            agent_ids=list(params["agent_ids"]),
            reply_done_status=params["reply_done_status"],
            token_error_body=params["token_error_body"],
            retry_after_form=params["retry_after_form"],
            updated_after_first_update=params["updated_after_first"],
            ended_on_expiry=not params["no_ended_on_expiry"],
            reply_s=params["reply_s"],
            tool_call=params["tool_call"],
            barge_in_delay_s=params["barge_in_delay_s"],
            record=not params["no_record"],
            artifacts_dir=params["artifacts_dir"],
            artifacts_delay_s=params["artifacts_delay_s"],
            artifact_url_ttl_s=params["artifact_url_ttl_s"],
            timeline_reason=params["timeline_reason"],
            timeline_quirks=params["timeline_quirks"],
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    asyncio.run(_serve(config))


def _check_writable(path: str) -> None:
    """Open the events file now (appending, as the log will): permissions, a read-only
    file system or /proc refuse here as one usage line, not as a crash after startup."""
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise click.UsageError(
            f"cannot write events to {path}: {exc.strerror or type(exc).__name__}; "
            "choose a file in a writable folder"
        ) from None


def _check_artifacts_dir(path: str) -> None:
    """Create --artifacts-dir and write a file in it now: /proc, a read-only file system or
    a missing permission refuse here as one usage line, not once per session later."""
    import tempfile

    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise click.UsageError(
            f"cannot keep artifacts in {path}: {exc.strerror or type(exc).__name__}; "
            "choose a writable folder for --artifacts-dir (or pass --no-record)"
        ) from None


async def _serve(config: SandboxConfig) -> None:
    from doctor.sandbox.server import Sandbox

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        sb = Sandbox(config)
    except OSError as exc:  # the events file went away or lost its permission since the check
        raise StartError(
            f"cannot write events to {config.events_path}: {exc.strerror or exc}"
        ) from None
    try:
        await sb.start()
    except OSError as exc:
        await sb.stop()
        raise StartError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}; "
            "choose another --port (0 picks a free one)"
        ) from None
    try:
        sys.stdout.write(json.dumps(sb.ready_info()) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await sb.stop()
