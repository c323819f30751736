"""Command line: parse options, build the run context, run checks, render the report.

Sub-commands that live in other modules are loaded lazily (see `LAZY_COMMANDS`), so
`agent-doctor --help` and `list` import neither PortAudio nor the network stack.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import re
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timezone
from typing import IO, Any, TypeVar

import click

from doctor import __version__, quick_exit
from doctor.browser.options import all_browser_options
from doctor.context import API_KEY_ENV, REGIONS, Context, Credential
from doctor.registry import CheckSpec, Registry, load_checks
from doctor.report.redact import Redactor, ScrubbingFilter
from doctor.result import Result

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("doctor")

# name -> "module:attribute"; each module must be light to import.
LAZY_COMMANDS: dict[str, str] = {
    "analyze": "doctor.commands.analyze:analyze_command",
    "devices": "doctor.commands.devices:devices_command",
    "browser": "doctor.browser.command:browser_command",
    "echo": "doctor.commands.echo:echo_command",
    "sandbox": "doctor.sandbox.cli:sandbox",
    "session": "doctor.commands.session:session_command",
    "validate-audio": "doctor.commands.validate_audio:validate_audio",
    "watch": "doctor.commands.watch:watch_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            module, attr = LAZY_COMMANDS[name].split(":")
            cmd: click.Command = getattr(importlib.import_module(module), attr)
            return cmd
        return super().get_command(ctx, name)


# --- option groups ------------------------------------------------------------------------


def _check_proxy(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https", "socks5", "socks5h", "socks4", "socks4a"):
        raise click.BadParameter("expected a URL such as http://proxy.example:3128")
    if not parts.hostname:
        raise click.BadParameter("the proxy URL has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        # the WebSocket client ignored it and the token client failed on it: neither uses it.
        # An '@' after it means a password with a raw '/', '?' or '#': never echoed.
        if "@" in parts.path + parts.query + parts.fragment:
            raise click.BadParameter(
                "the proxy URL has a path or query: if the password holds '/', '?' or '#', "
                "write them as %2F, %3F and %23"
            )
        raise click.BadParameter(
            f"a proxy URL is scheme://host:port, without a path or query "
            f"(drop {parts.path + ('?' if parts.query else '')!r})"
        )
    return value


def url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """Why `url` cannot be a --ws-url / --token-url (one line naming an example), or None.
    Checked at start: `--ws-url garbage` crashed the check, and `watch` answered every app
    with a 502. Credentials in the URL are never echoed."""
    example = f"{schemes[-1]}://agents.assemblyai.com/v1/{'ws' if 'ws' in schemes else 'token'}"
    shown = repr(re.sub(r"(?<=://)[^/?#]*@", "***@", url, count=1))  # up to the last @
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535"
        if "port" not in str(exc).lower():
            return f"{shown} is not a URL ({exc}): use e.g. {example}"
        parts, port = urllib.parse.urlsplit(url), -1
    if parts.scheme.lower() not in schemes:
        what = f"its scheme is {parts.scheme!r}" if parts.scheme else "it has no scheme"
        return f"{shown} is not a {' or '.join(schemes)} URL ({what}): use e.g. {example}"
    if not parts.hostname:
        return f"{shown} names no host: use e.g. {example}"
    if port == -1 or port == 0 or parts.netloc.endswith(":"):
        return f"{shown} has no valid port after ':': drop the ':' or use e.g. {example}"
    return None


def _url_of(*schemes: str) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    """A click callback refusing what `url_problem` refuses."""

    def check(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
        problem = None if value is None else url_problem(value, schemes)
        if problem is not None:
            raise click.BadParameter(problem)
        return value

    return check


def _check_ca_bundle(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    """An empty or non-PEM file is a usage error here, not a crashed check later."""
    if value is None:
        return None
    import ssl

    try:
        ssl.create_default_context().load_verify_locations(cafile=value)
    except (ssl.SSLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise click.BadParameter(f"{value} holds no CA certificate in PEM form ({why})") from None
    return value


def report_options(fn: F) -> F:
    """--json, --report, -v, --no-color: for every command that produces a report."""
    for opt in reversed(
        [
            click.option(
                "--json",
                "as_json",
                is_flag=True,
                help="Print the JSON report on stdout and nothing else there.",
            ),
            click.option(
                "--report",
                "report_path",
                type=click.Path(dir_okay=False),
                help="Also write the JSON report to FILE (for your support email).",
            ),
            click.option("-v", "--verbose", is_flag=True, help="Show evidence and debug logs."),
            click.option("--no-color", is_flag=True, help="No colour (NO_COLOR is honoured too)."),
        ]
    ):
        fn = opt(fn)
    return fn


def service_options(fn: F) -> F:
    """Where and how to reach the service: shared by every command that talks to it."""
    return service_options_with(fn)


def service_options_with(
    fn: F,
    timeout_default: float = 10.0,
    timeout_help: str = "Seconds to wait for each network step.",
) -> F:
    """`service_options` with another --timeout (`browser`: the wait for the page)."""
    for opt in reversed(
        [
            click.option(
                "--region",
                type=click.Choice(sorted(REGIONS)),
                default="us",
                show_default=True,
                help="Service region.",
            ),
            click.option(
                "--ws-url",
                callback=_url_of("ws", "wss"),
                help="Override the WebSocket URL (proxies, relays, sandbox).",
            ),
            click.option(
                "--token-url", callback=_url_of("http", "https"), help="Override the token URL."
            ),
            click.option(
                "--api-key",
                envvar=API_KEY_ENV,
                show_envvar=True,
                help="API key (prefer the environment variable).",
            ),
            click.option(
                "--token",
                help="A temporary token. The docs call tokens single use (the live service "
                "accepted reuse within the token's window), so the token check may use it up.",
            ),
            click.option(
                "--proxy",
                callback=_check_proxy,
                help="HTTP(S) or SOCKS proxy URL, credentials allowed (they are hidden).",
            ),
            click.option(
                "--ca-bundle",
                type=click.Path(exists=True, dir_okay=False),
                callback=_check_ca_bundle,
                help="PEM file of CAs to trust (e.g. a corporate inspection CA).",
            ),
            click.option(
                "--timeout",
                type=click.FloatRange(min=0.1),
                default=timeout_default,
                show_default=True,
                help=timeout_help,
            ),
        ]
    ):
        fn = opt(fn)
    return fn


def audio_options(fn: F) -> F:
    for opt in reversed(
        [
            click.option("--input-device", help="Input device: index or part of its name."),
            click.option("--output-device", help="Output device: index or part of its name."),
        ]
    ):
        fn = opt(fn)
    return fn


def run_options(fn: F) -> F:
    """Options of the commands that run registry checks."""
    for opt in reversed(
        [
            click.option(
                "--skip", multiple=True, metavar="ID", help="Leave a check out (repeatable)."
            ),
            click.option(
                "--audio",
                "audio_file",
                type=click.Path(exists=True, dir_okay=False, allow_dash=True),
                help="A sample of what your app sends in input.audio (audio-format check).",
            ),
            click.option(
                "--resume-delay",
                type=click.FloatRange(min=0.0),
                default=1.0,
                show_default=True,
                help="Seconds between the drop and the resume.",
            ),
        ]
    ):
        fn = opt(fn)
    return service_options(audio_options(report_options(fn)))


# --- plumbing shared by commands ----------------------------------------------------------


def _credential(
    click_ctx: click.Context, name: str, kind: str, value: str | None, env: str | None
) -> Credential | None:
    if value is None:
        return None
    source = click_ctx.get_parameter_source(name)
    where = (
        f"environment {env}"
        if source is click.core.ParameterSource.ENVIRONMENT and env
        else f"option --{name.replace('_', '-')}"
    )
    return Credential(kind, value, where)


def build_context(params: dict[str, Any]) -> Context:
    """The run context from a command's parameters; secrets are registered first of all."""
    click_ctx = click.get_current_context()
    api_key = _credential(click_ctx, "api_key", "api_key", params.get("api_key"), API_KEY_ENV)
    token = _credential(click_ctx, "token", "token", params.get("token"), None)
    ctx = Context.build(
        region=params.get("region") or "us",
        ws_url=params.get("ws_url"),
        token_url=params.get("token_url"),
        api_key=api_key,
        token=token,
        proxy=params.get("proxy"),
        ca_bundle=params.get("ca_bundle"),
        timeout=params.get("timeout") or 10.0,
        verbose=bool(params.get("verbose")),
        audio_file=params.get("audio_file"),
        input_device=params.get("input_device"),
        output_device=params.get("output_device"),
        resume_delay=params.get("resume_delay", 1.0),
    )
    _setup_logging(ctx.redactor, ctx.verbose)
    return ctx


def _setup_logging(redactor: Redactor, verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScrubbingFilter(redactor))
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)


def use_color(params: dict[str, Any], stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return (
        not params.get("no_color")
        and not os.environ.get("NO_COLOR")
        and hasattr(stream, "isatty")
        and stream.isatty()
    )


def write_whole(path: str, write: Callable[[IO[bytes]], None], what: str = "the report") -> None:
    """`write(fh)` into `path` whole or not at all (a temporary file renamed over it); a
    device or FIFO is written into, never replaced (`--report /dev/stdout` as root once
    turned that into a regular file), and a symlink's target is the file replaced (the
    link stays; never truncated first: `--fix link` to the input read an empty input).
    A write that fails is one line."""
    from doctor.files.beside import create_beside

    try:
        if os.path.exists(path) and not os.path.isfile(path):
            with open(path, "wb") as fh:
                write(fh)
            return
        path = os.path.realpath(path)  # a link (dangling too): its target
        fd, tmp = create_beside(path)  # the mode open() would give, not mkstemp's 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise click.ClickException(
            f"cannot write {what} to {path}: {exc.strerror or exc}"
        ) from None


def write_atomic(path: str, text: str) -> None:
    """The JSON report into `path` (see `write_whole`)."""
    data = text.encode("utf-8")

    def body(fh: IO[bytes]) -> None:
        fh.write(data)

    write_whole(path, body)


def check_report_path(path: str | None) -> None:
    """Before the run (a usage error, exit 2), what `write_whole` will do after it: a
    device or FIFO must be writable, and elsewhere a temporary file must be creatable
    beside the target (`/proc/version`: the folder says writable, creating fails). The
    report file itself is neither created nor truncated here."""
    if path is None:
        return
    # the given path first: /dev/stdout on a pipe resolves to a `pipe:[N]` that is no path
    if os.path.exists(path) and not os.path.isfile(path):
        if os.path.isdir(path) or not os.access(path, os.W_OK):
            raise click.UsageError(f"cannot write the report to {path}: not a writable file")
        return
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise click.UsageError(
            f"cannot write the report to {path}: {directory} is not a writable folder"
        )
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".agent-doctor-", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise click.UsageError(
            f"cannot write the report to {path}: {exc.strerror or exc}"
        ) from None


def emit_report(report: dict[str, Any], params: dict[str, Any]) -> None:
    """Print the human or JSON report and write --report; the report is already scrubbed."""
    from doctor.report import text

    payload = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    if params.get("as_json"):
        sys.stdout.write(payload)
    else:
        sys.stdout.write(
            text.render(report, color=use_color(params), verbose=bool(params.get("verbose")))
        )
    sys.stdout.flush()
    if params.get("report_path"):  # after the report is shown: a full disk loses only this
        write_atomic(params["report_path"], payload)


class LiveProgress:
    """Which checks are still running, on one rewritten stderr line; TTY only."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.running: list[str] = []

    def __call__(self, event: str, spec: CheckSpec, result: Result | None) -> None:
        if not self.enabled:
            return
        if event == "start":
            self.running.append(spec.id)
        elif spec.id in self.running:
            self.running.remove(spec.id)
        line = f"running: {', '.join(self.running)}" if self.running else ""
        sys.stderr.write("\r\x1b[2K" + line[:200])
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


def run_and_report(
    command: str, specs: list[CheckSpec], params: dict[str, Any], ctx: Context | None = None
) -> None:
    """Run the selected checks and exit with the contract's code (0 ok, 1 problems)."""
    from doctor.report.build import build_report, exit_code
    from doctor.runner import run_checks

    check_report_path(params.get("report_path"))
    ctx = ctx or build_context(device_options(params))
    started = datetime.now(timezone.utc)
    t0 = time.monotonic()
    progress = LiveProgress(not params.get("as_json") and sys.stderr.isatty())
    try:
        results = asyncio.run(run_checks(specs, ctx, progress))
    finally:
        progress.close()
    browser_env = None
    if params.get("browser"):  # `all --browser`: the page's checks after the Python ones
        from doctor.browser.command import run_after_checks

        page_results, browser_env = run_after_checks(ctx, params)
        results = [*results, *page_results]
    report = build_report(
        command,
        ctx,
        results,
        started,
        round((time.monotonic() - t0) * 1000),
        params.get("report_path"),
    )
    if browser_env is not None:
        report["environment"]["browser"] = ctx.redactor.scrub_obj(browser_env)
    emit_report(report, params)
    quick_exit.report_is_out()
    sys.exit(exit_code(results))


def device_options(params: dict[str, Any]) -> dict[str, Any]:
    """A mistyped or ambiguous --input-device/--output-device is a usage error (exit 2)."""
    if not (params.get("input_device") or params.get("output_device")):
        return params
    from doctor.devices.choose import DeviceUsageError, apply_device_options

    try:
        return apply_device_options(params)
    except DeviceUsageError as exc:
        raise click.UsageError(str(exc)) from None


def _preload_trust(params: dict[str, Any], ids: tuple[str, ...] | None) -> None:
    """The `wss` probe's CA store loads (0.06-0.3 s of OpenSSL) while the checks are
    imported, not between start-up and the first handshake (doctor/net/trust.py)."""
    network = {"wss", "token", "resume"}  # wss, and the checks that pull it in
    if "wss" not in params["skip"] and (ids is None or network & set(ids)):
        from doctor.net.trust import preload

        preload(params.get("ca_bundle"))


def _registry() -> Registry:
    return load_checks()


def select_or_exit(
    registry: Registry, ids: list[str] | None, skip: tuple[str, ...]
) -> list[CheckSpec]:
    try:
        return registry.select(ids, skip)
    except KeyError as exc:
        raise click.UsageError(
            f"unknown check id: {exc.args[0]}; valid ids: {', '.join(registry.ids())}"
        ) from None


# --- commands -----------------------------------------------------------------------------


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="agent-doctor")
def cli() -> None:
    """Diagnose AssemblyAI Voice Agent API problems on this machine.

    Run `agent-doctor all` before filing a support ticket, and attach the report
    (`--report doctor-report.json`).
    """


@cli.command("all")
@run_options
@all_browser_options
def all_command(**params: Any) -> None:
    """Run every check and print a report."""
    _preload_trust(params, None)
    registry = _registry()
    run_and_report("all", select_or_exit(registry, None, params["skip"]), params)


@cli.command("check")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@run_options
def check_command(ids: tuple[str, ...], **params: Any) -> None:
    """Run some checks (and what they need), e.g. `agent-doctor check wss token`."""
    _preload_trust(params, ids)
    registry = _registry()
    run_and_report("check", select_or_exit(registry, list(ids), params["skip"]), params)


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
def list_command(as_json: bool) -> None:
    """List the checks: id, title, and what each needs."""
    registry = _registry()
    rows: list[dict[str, Any]] = [
        {
            "id": c.id,
            "title": c.title,
            "needs": list(c.needs),
            "in_all": c.in_all,
            "description": c.description,
        }
        for c in registry.checks.values()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        needs = ", ".join(r["needs"]) or "-"
        click.echo(f"{r['id']:<{width}}  {r['title']}  (needs: {needs})")


def main(argv: list[str] | None = None) -> None:
    """Entry point: usage errors are one line and exit 2; nothing ends in a traceback."""
    try:
        cli.main(args=argv, prog_name="agent-doctor", standalone_mode=False)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(f"agent-doctor: error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"agent-doctor: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("agent-doctor: interrupted", err=True)
        if argv is None:  # the program itself: a reader thread may still hold stdin
            quick_exit.exit_now(130)
        sys.exit(130)
    except SystemExit as exc:
        if argv is None:  # the program itself: once the report is out, no teardown
            quick_exit.exit_now_if_done(exc.code)
        raise
    except Exception as exc:  # a bug: say so in one line, without secrets
        redactor = _active_redactor()
        msg = redactor.scrub(f"{type(exc).__name__}: {exc}") if redactor else type(exc).__name__
        click.echo(f"agent-doctor: internal error: {msg} (please report this)", err=True)
        if os.environ.get("AGENT_DOCTOR_DEBUG"):
            raise
        sys.exit(1)
    sys.exit(0)


def _active_redactor() -> Redactor | None:
    for handler in logging.getLogger().handlers:
        for flt in handler.filters:
            if isinstance(flt, ScrubbingFilter):
                return flt.redactor
    return None
