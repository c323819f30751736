"""--proxy with a path: the WebSocket ignored it and the token request failed on it
(proxy_unsupported with the firewall fix). Now one usage line before anything runs."""

from __future__ import annotations

import pytest
from clirun import cli_env, run_cli


@pytest.mark.parametrize("check", ["wss", "token"])
def test_a_proxy_url_with_a_path_is_one_usage_line(check: str) -> None:
    proc = run_cli(
        "check", check, "--proxy", "http://bob:s3cret-pw@127.0.0.1:9/some/path", env=cli_env()
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "without a path or query" in proc.stderr and "'/some/path'" in proc.stderr
    assert "s3cret-pw" not in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_a_trailing_slash_is_still_a_proxy() -> None:
    proc = run_cli("check", "wss", "--proxy", "http://127.0.0.1:9/", "--timeout", "1",
                   "--ws-url", "wss://127.0.0.1:9/v1/ws", env=cli_env())  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # ran, and failed to reach the dead proxy
    assert "proxy" in proc.stdout


def test_a_password_with_a_raw_slash_is_never_echoed() -> None:
    """`bob:hunter/2secret@...`: urlsplit reads `/2secret@127.0.0.1:3128` as the path, and the
    usage line printed it (the password's tail)."""
    proc = run_cli("check", "wss", "--proxy", "http://bob:hunter/2secret@127.0.0.1:3128",
                   env=cli_env())  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "2secret" not in proc.stderr and "hunter" not in proc.stderr, proc.stderr
    assert "%2F" in proc.stderr
