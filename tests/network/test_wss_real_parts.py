"""The `wss` check against real parts: TLS servers, proxies, firewall rules, a resolver.

Every case runs the real CLI as a subprocess and reads its JSON report.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from clirun import assert_valid_report, cli_env, run_cli
from netparts import (
    Certs,
    ThreadServer,
    free_port,
    http_answer,
    intercepting_proxy,
    make_certs,
    silent,
    tinyproxy,
    websocket_accept,
)
from realparts import is_root, need_tool, need_unshare

PASSWORD = "s3cret-proxy-pass"


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path)


def wss_check(
    url: str, *extra: str, env: dict[str, str] | None = None, timeout: str = "3"
) -> dict[str, Any]:
    proc = run_cli(
        "check",
        "wss",
        "--ws-url",
        url,
        "--timeout",
        timeout,
        "--json",
        *extra,
        env=env or cli_env(),
    )
    assert proc.returncode in (0, 1), proc.stderr
    report = assert_valid_report(json.loads(proc.stdout))
    result: dict[str, Any] = report["checks"][0]
    assert result["id"] == "wss"
    return result


def assert_fail(result: dict[str, Any], cause: str, stage: str) -> None:
    assert (result["status"], result["cause"]) == ("fail", cause), result["summary"]
    assert result["evidence"]["failed_stage"] == stage, result["evidence"]
    assert result["fix"]["steps"]


def test_tls_websocket_server_trusted_with_ca_bundle_passes(certs: Certs) -> None:
    server = ThreadServer(websocket_accept, certs.server_context())
    try:
        r = wss_check(f"wss://127.0.0.1:{server.port}/v1/ws", "--ca-bundle", str(certs.ca_file))
    finally:
        server.close()
    assert r["status"] == "pass", r
    ev = r["evidence"]
    assert ev["http_status"] == 101 and ev["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert "Voice Agent Test CA" in ev["tls_issuer"] and "127.0.0.1" in ev["tls_sans"]
    assert ev["tls_certifi_verified"] is False  # a test CA: certifi cannot know it
    for key in ("dns_ms", "tcp_connect_ms", "tls_handshake_ms", "ws_upgrade_ms", "total_ms"):
        assert isinstance(ev[key], float)
    assert ev["other_region"]["reachable"] is None  # URL overridden: not probed
    assert ev["proxy"] is None and ev["proxy_source"] == "none"


def test_auth_rejection_of_an_unauthenticated_upgrade_counts_as_reachable(certs: Certs) -> None:
    server = ThreadServer(
        http_answer("401 Unauthorized", b'{"detail": "Unauthorized"}', "application/json"),
        certs.server_context(),
    )
    env = cli_env({"SSL_CERT_FILE": str(certs.ca_file)})  # the system store, not --ca-bundle
    try:
        r = wss_check(f"wss://localhost:{server.port}/v1/ws", env=env)
    finally:
        server.close()
    assert r["status"] == "pass" and r["evidence"]["http_status"] == 401
    assert "asks for credentials" in r["summary"]
    assert r["evidence"]["tls_trust_store"].startswith("system (SSL_CERT_FILE=")


def test_closed_port_is_connection_refused() -> None:
    r = wss_check(f"wss://127.0.0.1:{free_port()}/v1/ws")
    assert_fail(r, "connection_refused", "tcp")
    assert r["fix"]["guide"] == "firewall"


def test_listener_that_never_answers_times_out_at_the_tls_stage(certs: Certs) -> None:
    server = ThreadServer(silent)
    try:
        r = wss_check(f"wss://127.0.0.1:{server.port}/v1/ws", timeout="1")
    finally:
        server.close()
    assert_fail(r, "timeout", "tls")
    assert "TLS handshake" in r["summary"] and "within 1 s" in r["summary"]
    assert "tcp_connect_ms" in r["evidence"]  # TCP itself worked


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("untrusted", "tls_untrusted"),
        ("expired", "tls_expired"),
        ("wrong_host", "tls_hostname_mismatch"),
    ],
)
def test_certificate_problems(certs: Certs, case: str, cause: str) -> None:
    import trustme

    if case == "untrusted":
        ctx = certs.server_context(ca=trustme.CA(organization_name="Some Other Test CA"))
    elif case == "expired":
        ctx = certs.server_context(expired=True)
    else:
        ctx = certs.server_context("other.example")
    server = ThreadServer(websocket_accept, ctx)
    try:
        r = wss_check(f"wss://localhost:{server.port}/v1/ws", "--ca-bundle", str(certs.ca_file))
    finally:
        server.close()
    assert_fail(r, cause, "tls")
    ev = r["evidence"]
    assert ev["tls_leaf_subject"]  # read by the second, non-verifying handshake
    if case == "untrusted":
        assert "Some Other Test CA" in ev["tls_issuer"]
        # a private CA: trust it (it used to get "check the clock, update the CA store")
        assert r["fix"]["guide"] == "tls_private_ca"
        steps = " ".join(r["fix"]["steps"])
        assert "--ca-bundle CA.pem" in steps and "SSL_CERT_FILE=CA.pem" in steps
        assert "Some Other Test CA" in steps and "clock" not in steps
        assert r["cause"] == "tls_untrusted"  # not called interception without evidence
    else:
        assert r["fix"]["guide"] == "tls_certificate"
    if case == "expired":
        assert ev["tls_days_left"] < 0
    if case == "wrong_host":
        assert ev["tls_sans"] == ["other.example"]


def test_http_403_block_page_is_http_rejected_with_body(certs: Certs) -> None:
    page = b"<html><body><h1>Access denied</h1> by policy \x00\x01 rule 42</body></html>"
    server = ThreadServer(http_answer("403 Forbidden", page), certs.server_context())
    try:
        r = wss_check(f"wss://127.0.0.1:{server.port}/v1/ws", "--ca-bundle", str(certs.ca_file))
    finally:
        server.close()
    assert_fail(r, "http_rejected", "ws_upgrade")
    assert r["evidence"]["http_status"] == 403
    assert "Access denied by policy rule 42" in r["summary"]


def test_http_200_html_page_is_not_websocket(certs: Certs) -> None:
    page = b"<html><title>Guest Wi-Fi</title><body>Accept the terms to continue</body></html>"
    server = ThreadServer(http_answer("200 OK", page), certs.server_context())
    try:
        r = wss_check(f"wss://127.0.0.1:{server.port}/v1/ws", "--ca-bundle", str(certs.ca_file))
    finally:
        server.close()
    assert_fail(r, "not_websocket", "ws_upgrade")
    assert "Accept the terms" in r["summary"] and "captive portal" in r["summary"]


# --- proxies ------------------------------------------------------------------------------


@pytest.fixture
def tls_ws(certs: Certs) -> Any:
    server = ThreadServer(websocket_accept, certs.server_context())
    yield server
    server.close()


def test_tinyproxy_allowing_via_option_and_via_environment(
    tmp_path: Path, certs: Certs, tls_ws: ThreadServer
) -> None:
    url = f"wss://127.0.0.1:{tls_ws.port}/v1/ws"
    with tinyproxy(tmp_path, [tls_ws.port]) as (port, log):
        by_option = wss_check(
            url, "--ca-bundle", str(certs.ca_file), "--proxy", f"http://127.0.0.1:{port}"
        )
        env = cli_env({"HTTPS_PROXY": f"http://127.0.0.1:{port}"})
        by_env = wss_check(url, "--ca-bundle", str(certs.ca_file), env=env)
        bypass_env = cli_env({"HTTPS_PROXY": f"http://127.0.0.1:{port}", "NO_PROXY": "127.0.0.1"})
        connects_before = log.read_text().count("CONNECT")
        bypassed = wss_check(url, "--ca-bundle", str(certs.ca_file), env=bypass_env)
        connects_after = log.read_text().count("CONNECT")
    assert by_option["status"] == "pass" and by_option["evidence"]["proxy_status"] == 200
    assert by_option["evidence"]["proxy_source"] == "--proxy"
    assert by_option["evidence"]["tcp_target"] == "proxy"
    assert by_env["status"] == "pass"
    assert by_env["evidence"]["proxy_source"] == "environment HTTPS_PROXY"
    assert connects_before >= 2  # both went through the proxy, as its own log shows
    assert bypassed["status"] == "pass" and bypassed["evidence"]["proxy"] is None
    assert bypassed["evidence"]["no_proxy_match"] == "NO_PROXY=127.0.0.1"
    assert connects_after == connects_before  # the bypass did not touch the proxy


def test_tinyproxy_denying_the_port_is_proxy_denied(
    tmp_path: Path, certs: Certs, tls_ws: ThreadServer
) -> None:
    with tinyproxy(tmp_path, [443]) as (port, _):
        r = wss_check(f"wss://127.0.0.1:{tls_ws.port}/v1/ws", "--proxy", f"http://127.0.0.1:{port}")
    assert_fail(r, "proxy_denied", "proxy_connect")
    assert r["evidence"]["proxy_status"] == 403 and r["fix"]["guide"] == "proxy"


def test_tinyproxy_requiring_auth(tmp_path: Path, certs: Certs, tls_ws: ThreadServer) -> None:
    url = f"wss://127.0.0.1:{tls_ws.port}/v1/ws"
    with tinyproxy(tmp_path, [tls_ws.port], auth=("agent", PASSWORD)) as (port, _):
        without = wss_check(url, "--proxy", f"http://127.0.0.1:{port}")
        wrong_password = f"not-{PASSWORD}"
        wrong = run_cli(
            "check", "wss", "--ws-url", url, "--proxy",
            f"http://agent:{wrong_password}@127.0.0.1:{port}", "--json",
        )  # fmt: skip
        proc = run_cli(
            "check",
            "wss",
            "--ws-url",
            url,
            "--ca-bundle",
            str(certs.ca_file),
            "--proxy",
            f"http://agent:{PASSWORD}@127.0.0.1:{port}",
            "--json",
            "-v",
        )
    assert_fail(without, "proxy_auth_required", "proxy_connect")
    assert without["evidence"]["proxy_status"] == 407
    assert without["fix"]["guide"] == "proxy"  # none sent: "put them in the URL"
    # Sent and refused (tinyproxy answers 401): said so, with the user name only; it was
    # "proxy_denied" with a fix about 403/407.
    assert wrong_password not in wrong.stdout + wrong.stderr
    bad = json.loads(wrong.stdout)["checks"][0]
    assert (bad["status"], bad["cause"]) == ("fail", "proxy_auth_required"), bad["summary"]
    assert "refused the credentials sent for user 'agent'" in bad["summary"]
    assert bad["fix"]["guide"] == "proxy_credentials"
    assert "user agent" in " ".join(bad["fix"]["steps"])
    report = json.loads(proc.stdout)
    assert report["checks"][0]["status"] == "pass"
    assert PASSWORD not in proc.stdout + proc.stderr
    assert report["target"]["proxy"] == f"http://127.0.0.1:{port}"
    assert report["redactions"] == ["proxy_credentials"]


def test_dead_proxy_is_proxy_unreachable() -> None:
    r = wss_check("wss://127.0.0.1:9/v1/ws", "--proxy", f"http://127.0.0.1:{free_port()}")
    assert_fail(r, "proxy_unreachable", "tcp")


def test_tls_intercepting_proxy_is_detected_and_its_issuer_named(
    tmp_path: Path, certs: Certs
) -> None:
    server = ThreadServer(websocket_accept, certs.server_context("localhost"))
    try:
        with intercepting_proxy(tmp_path, certs.ca_file) as (port, mitm_ca):
            url = f"wss://localhost:{server.port}/v1/ws"
            r = wss_check(
                url,
                "--ca-bundle",
                str(certs.ca_file),
                "--proxy",
                f"http://127.0.0.1:{port}",
                timeout="5",
            )
            both = tmp_path / "both.pem"
            both.write_text(certs.ca_file.read_text() + mitm_ca.read_text())
            trusted = wss_check(
                url, "--ca-bundle", str(both), "--proxy", f"http://127.0.0.1:{port}", timeout="5"
            )
    finally:
        server.close()
    assert_fail(r, "tls_intercepted", "tls")
    assert "Contoso Corp Root CA" in r["evidence"]["tls_issuer"]
    assert "Contoso Corp" in r["summary"]
    # the TLS peer is the service (through the proxy), not the proxy's host:port
    assert f"TLS handshake to localhost:{server.port} (through the proxy at " in r["summary"]
    assert r["fix"]["guide"] == "tls_interception"
    assert "--ca-bundle" in " ".join(r["fix"]["steps"])
    # Once the inspection CA is trusted, the WebSocket works through the interception.
    assert trusted["status"] == "pass", trusted["summary"]
    assert "Contoso" in trusted["evidence"]["tls_issuer"]


# --- firewall rules and DNS inside private network namespaces ------------------------------

LISTENER = textwrap.dedent("""
    import socket, ssl, sys, pathlib
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 443)); s.listen(8)
    pathlib.Path(sys.argv[1]).touch()
    while True:
        c, _ = s.accept()
        try:
            c.recv(65536)
        except OSError:
            pass
""")


def _in_netns(tmp: Path, rules: str, with_listener: bool, timeout_s: int) -> dict[str, Any]:
    need_unshare()
    need_tool("nft", "ip")
    (tmp / "listener.py").write_text(LISTENER)
    ready = tmp / "ready"
    doctor = f"{sys.executable} -m doctor"
    script = "\n".join(
        [
            "set -e",
            "ip link set lo up",
            "nft add table inet fw",
            "nft add chain inet fw input '{ type filter hook input priority 0; policy accept; }'",
            *[
                f"nft add rule inet fw input {shlex.quote(r)}"
                for r in rules.split(";")
                if r.strip()
            ],
            f"{sys.executable} {tmp}/listener.py {ready} >/dev/null 2>&1 & LPID=$!"
            if with_listener
            else "LPID=",
            # bounded wait for our own listener to come up (60 s: a Python start on a loaded
            # machine), and a clear failure if it died or never did
            f"i=0; while [ {int(with_listener)} = 1 ] && [ ! -e {ready} ] && [ $i -lt 6000 ]; "
            "do kill -0 $LPID || exit 3; i=$((i+1)); sleep 0.01; done",
            f"[ {int(with_listener)} = 0 ] || [ -e {ready} ] || exit 4",
            f"{doctor} check wss --ws-url wss://127.0.0.1:443/v1/ws --timeout {timeout_s} "
            "--json || true",
            '[ -z "$LPID" ] || kill $LPID',
        ]
    )
    proc = subprocess.run(
        ["unshare", "-n" if is_root() else "-rn", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout, (proc.returncode, proc.stderr)
    result: dict[str, Any] = assert_valid_report(json.loads(proc.stdout))["checks"][0]
    return result


@pytest.mark.parametrize(
    ("rule", "listener", "cause", "stage"),
    [
        ("tcp dport 443 drop", False, "timeout", "tcp"),
        ("tcp dport 443 reject with tcp reset", False, "connection_refused", "tcp"),
        ("tcp dport 443 reject with icmpx type admin-prohibited", False, "no_route", "tcp"),
        (
            "tcp dport 443 ct state established meta length > 60 reject with tcp reset",
            True,
            "connection_reset",
            "tls",
        ),
    ],
)
def test_packet_filter_rules(
    tmp_path: Path, rule: str, listener: bool, cause: str, stage: str
) -> None:
    # a dropped SYN is waited out: 1 s; an answer comes at once, but gets 10 s on a loaded
    # machine so that a slow process is never read as a timeout
    r = _in_netns(tmp_path, rule, listener, 1 if cause == "timeout" else 10)
    assert_fail(r, cause, stage)


def test_name_that_does_not_resolve_in_a_private_resolver(tmp_path: Path) -> None:
    need_unshare()
    need_tool("dnsmasq")
    (tmp_path / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n")
    script = "\n".join(
        [
            "set -e",
            "ip link set lo up",
            f"mount --bind {tmp_path}/resolv.conf /etc/resolv.conf",
            f"mount --bind {tmp_path}/hosts /etc/hosts",
            "dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=127.0.0.1 "
            "--bind-interfaces --port=53 --address=/agent.test/127.0.0.1 --address=/blocked.test/ "
            "--pid-file= --user=root >/dev/null 2>&1 & DPID=$!",
            # bounded wait for our own resolver to answer
            "i=0; until getent hosts agent.test >/dev/null || [ $i -ge 6000 ]; "
            "do kill -0 $DPID || exit 3; i=$((i+1)); sleep 0.01; done",
            f"{sys.executable} -m doctor check wss --ws-url wss://ws.blocked.test/v1/ws "
            "--timeout 10 --json || true",
            "kill $DPID",
        ]
    )
    flags = "-mn" if is_root() else "-rmn"
    proc = subprocess.run(
        ["unshare", flags, "sh", "-c", script],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert proc.stdout, proc.stderr
    r = assert_valid_report(json.loads(proc.stdout))["checks"][0]
    assert_fail(r, "dns_failed", "dns")
    assert "NXDOMAIN" in r["summary"] and "ws.blocked.test" in r["summary"]


def test_secret_in_environment_proxy_is_not_shown(tmp_path: Path) -> None:
    env = cli_env({"HTTPS_PROXY": f"http://agent:{PASSWORD}@127.0.0.1:{free_port()}"})
    proc = run_cli(
        "check",
        "wss",
        "--ws-url",
        "wss://127.0.0.1:9/v1/ws",
        "--json",
        "-v",
        "--timeout",
        "1",
        env=env,
    )
    assert PASSWORD not in proc.stdout + proc.stderr
    r = json.loads(proc.stdout)["checks"][0]
    assert r["evidence"]["proxy"].startswith("http://127.0.0.1:")
