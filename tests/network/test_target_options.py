"""`--ws-url`, `--token-url` and `--ca-bundle` as users type them: a bad value is one usage
line (exit 2), and `--ca-bundle` adds CAs to the system store (README: "extra CAs")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trustme
from clirun import assert_valid_report, cli_env, run_cli
from netparts import ThreadServer, make_certs, websocket_accept


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--ws-url", "garbage", "is not a ws or wss URL (it has no scheme)"),
        ("--ws-url", "http://127.0.0.1:1/v1/ws", "is not a ws or wss URL (its scheme is 'http')"),
        ("--ws-url", "wss://[::1/v1/ws", "is not a URL (Invalid IPv6 URL)"),
        ("--ws-url", "wss://127.0.0.1:99999/v1/ws", "has no valid port"),
        ("--ws-url", "wss:///v1/ws", "names no host"),
        ("--token-url", "wss://127.0.0.1/v1/token", "is not a http or https URL"),
    ],
)
def test_a_malformed_url_is_one_usage_line(option: str, value: str, said: str) -> None:
    proc = run_cli("check", "wss", option, value, env=cli_env())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert said in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("content", ["", "hello, not a certificate\n"])
def test_a_ca_bundle_without_a_certificate_is_one_usage_line(tmp_path: Path, content: str) -> None:
    pem = tmp_path / "ca.pem"
    pem.write_text(content)
    proc = run_cli("check", "wss", "--ca-bundle", str(pem), env=cli_env())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "holds no CA certificate in PEM form" in proc.stderr
    assert "bug" not in proc.stderr and "Traceback" not in proc.stderr


def test_a_ca_bundle_adds_to_the_system_store(tmp_path: Path) -> None:
    """The server's CA is in the system store (SSL_CERT_FILE); --ca-bundle names another
    (a corporate inspection CA this host is not inspected by): the check still passes."""
    certs = make_certs(tmp_path)
    corporate = tmp_path / "corporate.pem"
    trustme.CA().cert_pem.write_to_path(str(corporate))
    server = ThreadServer(websocket_accept, certs.server_context())
    try:
        proc = run_cli(
            "check", "wss", "--ws-url", f"wss://127.0.0.1:{server.port}/v1/ws",
            "--ca-bundle", str(corporate), "--timeout", "5", "--json",
            env=cli_env({"SSL_CERT_FILE": str(certs.ca_file)}),
        )  # fmt: skip
    finally:
        server.close()
    (wss,) = assert_valid_report(json.loads(proc.stdout))["checks"]
    assert wss["status"] == "pass", wss["summary"]
    assert wss["evidence"]["tls_trust_store"].endswith(f"+ --ca-bundle {corporate}")


def test_a_socks_proxy_nobody_listens_on_is_proxy_unreachable() -> None:
    """It read connection_refused (the service refusing: the firewall fix), where an HTTP
    proxy in the same state already gave proxy_unreachable."""
    from netparts import free_port

    proc = run_cli(
        "check", "wss", "--proxy", f"socks5://user:pw@127.0.0.1:{free_port()}", "--json",
        env=cli_env(),
    )  # fmt: skip
    (wss,) = assert_valid_report(json.loads(proc.stdout))["checks"]
    assert (proc.returncode, wss["cause"]) == (1, "proxy_unreachable"), wss["summary"]
    assert wss["fix"]["guide"] == "proxy" and "SOCKS proxy" in wss["summary"]
    assert ":pw@" not in proc.stdout


def test_the_reports_target_names_the_proxy_the_environment_picks() -> None:
    """README: the report's target includes the proxy; from HTTPS_PROXY it said null."""
    env = cli_env({"HTTPS_PROXY": "http://user:s3cret-pw@127.0.0.1:9"})
    proc = run_cli("check", "environment", "--json", env=env)
    assert json.loads(proc.stdout)["target"]["proxy"] == "http://127.0.0.1:9"
    assert "s3cret-pw" not in proc.stdout + proc.stderr
    bypassed = cli_env({"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "assemblyai.com"})
    proc = run_cli("check", "environment", "--json", env=bypassed)
    assert json.loads(proc.stdout)["target"]["proxy"] is None


def test_a_malformed_proxy_variable_does_not_break_the_report() -> None:
    """strip_userinfo raised on a port out of range: 'internal error', no report."""
    env = cli_env({"HTTPS_PROXY": "http://u:s3cret-pw@proxy.corp:99999"})
    proc = run_cli("check", "environment", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["target"]["proxy"] == "http://proxy.corp:99999"
    assert "s3cret-pw" not in proc.stdout + proc.stderr


def test_a_password_with_an_at_sign_is_never_echoed() -> None:
    from doctor.cli import url_problem

    for url in (
        "https://me:s3cr@tpw@agents.assemblyai.com:/v1/token",
        "wss://me:hunter 2@[::1/v1/ws",
    ):
        said = url_problem(url, ("ws", "wss") if url.startswith("wss") else ("http", "https"))
        assert said is not None and "tpw" not in said and "hunter" not in said, said
