"""The `wss` probe's verifying TLS context: loaded once per trust store, started by
`all`/`check` before the checks are imported (issue 13: the 0.06-0.3 s OpenSSL load no
longer sits between start-up and the first handshake; the figures are in
benchmarks/bench_stalled_peer.py). Real contexts, real CA files from trustme."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from click.testing import CliRunner

from doctor import cli
from doctor.net import trust
from doctor.net.probe import probe
from doctor.net.proxy_choice import ProxyChoice


def ca_file(tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


def test_one_context_per_store_and_the_store_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = ca_file(tmp_path, "mine")
    trust.preload(mine)
    first = trust.verifying_context(mine)
    assert trust.verifying_context(mine) is first  # loaded once
    assert first.verify_mode is ssl.CERT_REQUIRED and first.check_hostname
    assert trust.verifying_context(None) is not first
    # another SSL_CERT_FILE is another default store: not the context loaded before it
    other = ca_file(tmp_path, "other")
    before = trust.verifying_context(None)
    monkeypatch.setenv("SSL_CERT_FILE", other)
    after = trust.verifying_context(None)
    assert after is not before and len(after.get_ca_certs()) == 1  # just that file's CA


def test_an_unreadable_ca_file_raises_each_time_and_is_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "broken.pem"
    path.write_text("not a certificate")
    for _ in range(2):
        with pytest.raises(ssl.SSLError):
            trust.verifying_context(str(path))
    trustme.CA().cert_pem.write_to_path(str(path))  # fixed: loads now
    assert trust.verifying_context(str(path)).get_ca_certs()


def test_the_probe_uses_the_preloaded_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe's first handshake wraps its socket with the very context `preload`
    started (nothing listens on the port: the probe stops at TCP, after taking it)."""
    mine = ca_file(tmp_path, "mine")
    trust.preload(mine)
    wanted = trust.verifying_context(mine)
    taken: list[ssl.SSLContext] = []
    real = trust.verifying_context

    def spy(cafile: str | None) -> ssl.SSLContext:
        taken.append(real(cafile))
        return taken[-1]

    monkeypatch.setattr("doctor.net.probe.verifying_context", spy)
    found = probe("wss://127.0.0.1:9/v1/ws", ProxyChoice(None, "none"), mine, 1.0)
    assert found.failure is not None and found.failure.stage == "tcp"
    assert taken == [wanted]


@pytest.mark.parametrize(
    ("args", "preloaded"),
    [
        (["all", "--skip", "echo"], True),
        (["check", "token"], True),
        (["check", "audio-format"], False),
        (["all", "--skip", "wss"], False),
    ],
)
def test_all_and_check_start_the_load_before_the_checks_are_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], preloaded: bool
) -> None:
    """The order is the point: the load must run while the check modules import. The
    checks themselves are not run here (the registry is stopped once it is asked for)."""
    order: list[Any] = []
    monkeypatch.setattr(trust, "preload", lambda cafile: order.append(("preload", cafile)))

    def registry() -> Any:
        order.append("registry")
        raise SystemExit(7)

    monkeypatch.setattr(cli, "_registry", registry)
    bundle = ca_file(tmp_path, "bundle")
    result = CliRunner().invoke(cli.cli, [*args, "--ca-bundle", bundle, "--json"])
    assert result.exit_code == 7, result.output
    expected: list[Any] = [("preload", bundle)] if preloaded else []
    assert order == [*expected, "registry"]
