"""Command-line options of the browser checks (light: imported by doctor.cli)."""

from __future__ import annotations

from typing import Any

import click

PAGE_WAIT_S = 300.0


def _browser_cmd(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """CMD is split like a shell would; an unclosed quote is a usage error, not a crash."""
    if value is None:
        return None
    import shlex

    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise click.BadParameter(f"cannot split {value!r} into a command: {exc}") from None
    if not words:
        raise click.BadParameter("empty command")
    return value


def browser_options(fn: Any) -> Any:
    """`--browser CMD` and `--no-open` for `agent-doctor browser`."""
    fn = click.option(
        "--no-open",
        is_flag=True,
        help="Do not open a browser; print the page's URL on stderr only.",
    )(fn)
    return click.option(
        "--browser",
        "browser_cmd",
        metavar="CMD",
        callback=_browser_cmd,
        help="Browser command to open the page with (default: your default browser).",
    )(fn)


def all_browser_options(fn: Any) -> Any:
    """`--browser` and friends for `agent-doctor all`."""
    for opt in reversed(
        [
            click.option(
                "--browser",
                "browser",
                is_flag=True,
                help="After the checks, run the browser checks too (see `browser`).",
            ),
            click.option(
                "--browser-cmd",
                metavar="CMD",
                callback=_browser_cmd,
                help="Browser command for --browser.",
            ),
            click.option("--no-open", is_flag=True, help="With --browser: only print the URL."),
            click.option(
                "--browser-timeout",
                type=click.FloatRange(min=1.0),
                default=PAGE_WAIT_S,
                show_default=True,
                help="With --browser: seconds to wait for the page's results.",
            ),
        ]
    ):
        fn = opt(fn)
    return fn
