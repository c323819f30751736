"""`agent-doctor session`: sessions run through the sandbox by real clients, fetched over
real HTTP by the real CLI (a subprocess), each way of failing with its own cause."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clirun import cli_env, run_cli
from sandbox_wire import FakeClock
from session_clients import Script, ended, session_cli

from doctor.sandbox.threaded import ThreadedSandbox

Factory = Callable[..., ThreadedSandbox]


def fetch_results(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if c["id"] == "session-fetch"]


def no_key_anywhere(key: str, *texts: str, folder: Path | None = None) -> None:
    for text in texts:
        assert key not in text
    if folder is not None:
        for path in folder.rglob("*"):
            if path.is_file():
                assert key.encode() not in path.read_bytes(), path


def test_a_good_session_is_downloaded_and_analysed_without_a_warning(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(reply_s=1.0, artifacts_delay_s=0)
    sid = ended(sb, Script(speech=[(1.5, 0.8)], duration_s=4.5))
    save = tmp_path / "saved"
    written = tmp_path / "report.json"
    code, report, out, err = session_cli(sb, sid, "--save", str(save), "--report", str(written))
    assert code == 0, err
    (fetch,) = fetch_results(report)
    assert fetch["status"] == "pass" and fetch["evidence"]["public_close_reason"] == "client_end"
    assert sorted(a["kind"] for a in fetch["evidence"]["artifacts"]) == [
        "metadata", "recording", "timeline",
    ]  # fmt: skip
    assert sorted(p.name for p in (save / sid).iterdir()) == [
        "audio.ogg", "metadata.json", "timeline.json",
    ]  # fmt: skip
    assert report["saved_to"] == str(save)
    analysed = [c for c in report["checks"] if c["id"] != "session-fetch"]
    assert {c["id"] for c in analysed} >= {"session-echo", "session-billing", "session-latency"}
    assert [c for c in analysed if c["status"] != "pass"] == []
    assert report["sessions"][0]["session_id"] == sid
    # the key went to the REST API only, never to an artifact URL, nor into any output
    assert not sb.find("artifact.authorization_sent")
    assert len(sb.find("artifact.served", session_id=sid)) == 3
    no_key_anywhere(sb.api_key, out, err, written.read_text(), folder=save)


def test_verbose_request_lines_carry_no_link_signature(sandbox_factory: Factory) -> None:
    """`-v` lets httpx log each request line; the artifact links are pre-signed."""
    sb = sandbox_factory(reply_s=1.0, artifacts_delay_s=0)
    sid = ended(sb, Script(speech=[(1.5, 0.8)], duration_s=3.0))
    code, _, _, err = session_cli(sb, sid, "-v")
    assert code == 0, err
    assert "X-Amz-Signature=****" in err  # the request lines are there, masked
    assert len(sb.find("artifact.served", session_id=sid)) == 3  # fetched by those links
    assert not re.search(r"X-Amz-Signature=(?!\*)", err)


def test_the_default_folder_is_temporary_and_removed(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(reply_s=0.3, artifacts_delay_s=0)
    sid = ended(sb)
    code, report, _, err = session_cli(sb, sid, tmp=str(tmp_path))
    assert code == 0, err
    assert fetch_results(report)[0]["status"] == "pass"
    assert report["saved_to"] is None
    assert list(tmp_path.iterdir()) == []


def test_artifacts_not_ready_yet_is_a_warning_with_a_retry(sandbox_factory: Factory) -> None:
    """The field's delay is ~7 s, but a CLI subprocess on a loaded machine can take that long
    to start: the artifacts appear 600 s after the end, a time only the test's clock reaches."""
    clock = FakeClock()
    sb = sandbox_factory(reply_s=0.3, clock=clock, artifacts_delay_s=600.0)
    sid = ended(sb)
    code, report, _, _ = session_cli(sb, sid)
    (fetch,) = fetch_results(report)
    assert (fetch["status"], fetch["cause"]) == ("warn", "artifacts_not_ready")
    assert "run this again" in fetch["summary"]
    assert fetch["fix"]["commands"] == [f"agent-doctor session {sid}"]
    assert code == 0  # nothing is wrong yet
    clock.advance(600.5)
    code, report, _, err = session_cli(sb, sid)
    assert code == 0, err
    assert fetch_results(report)[0]["status"] == "pass"


def test_unknown_and_foreign_sessions_are_not_found(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(api_keys=["a" * 32, "b" * 32], reply_s=0.3, artifacts_delay_s=0)
    mine = ended(sb)  # opened with the first key
    unknown = "sess_" + "0" * 32
    code, report, _, _ = session_cli(sb, mine, unknown, key="b" * 32)
    assert code == 1
    causes = [(c["evidence"]["session_id"], c["cause"]) for c in fetch_results(report)]
    assert causes == [(mine, "session_not_found"), (unknown, "session_not_found")]
    assert "another account" in fetch_results(report)[0]["summary"]


@pytest.mark.parametrize(
    ("behaviour", "status"), [("field", 404), ("documented", 401)], ids=["field", "documented"]
)
def test_a_refused_key_is_unauthorized(
    sandbox_factory: Factory, behaviour: str, status: int
) -> None:
    """The field's token endpoint says 404 "Invalid API key" (field-facts §1); the docs 401.
    Either way the key is refused, never "session not found"."""
    sb = sandbox_factory(reply_s=0.3, artifacts_delay_s=0, token_errors=behaviour)
    sid = ended(sb)
    code, report, out, err = session_cli(sb, sid, key="f" * 32)
    (fetch,) = fetch_results(report)
    assert code == 1
    assert (fetch["cause"], fetch["evidence"]["http_status"]) == ("unauthorized", status)
    assert fetch["fix"]["guide"] == "sessions_key_refused"
    no_key_anywhere("f" * 32, out, err)


def test_a_malformed_id_is_refused_without_asking(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=0.3)
    code, report, _, _ = session_cli(sb, "resp_0123", "sess_XYZ")
    assert code == 1
    assert [c["cause"] for c in fetch_results(report)] == ["invalid_session_id"] * 2
    asked = [e for e in sb.events if e["type"] == "http.request" and "sessions" in e["path"]]
    assert asked == []


def test_expired_links_are_asked_again_then_reported(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=0.3, artifacts_delay_s=0, artifact_url_ttl_s=0)
    sid = ended(sb)
    code, report, _, _ = session_cli(sb, sid)
    (fetch,) = fetch_results(report)
    assert (code, fetch["cause"]) == (1, "artifact_url_expired")
    # the session was read twice: the first links, then fresh ones
    gets = [e for e in sb.events if e["type"] == "http.request" and e["path"].endswith(sid)]
    assert len(gets) == 2


def test_a_download_that_fails_is_reported_and_the_rest_analysed(
    sandbox_factory: Factory,
) -> None:
    sb = sandbox_factory(reply_s=0.3, artifacts_delay_s=0)
    sid = ended(sb)
    files = sb.sandbox.store.finished[sid].artifacts
    os.unlink(files.recording)  # the storage lost it: 404 NoSuchKey
    code, report, _, _ = session_cli(sb, sid)
    (fetch,) = fetch_results(report)
    assert (code, fetch["cause"]) == (1, "artifact_download_failed")
    assert "NoSuchKey" in json.dumps(fetch["evidence"])
    assert report["sessions"][0]["session_id"] == sid  # timeline and metadata still analysed


def test_recent_lists_this_keys_newest_sessions(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=0.3, artifacts_delay_s=0)
    ids = [ended(sb) for _ in range(3)]
    code, report, _, err = session_cli(sb, "--recent", "2")
    assert code == 0, err
    assert [c["evidence"]["session_id"] for c in fetch_results(report)] == ids[::-1][:2]


def test_the_client_follows_the_cursor(sandbox_factory: Factory) -> None:
    import asyncio

    from doctor.net.sessions_api import SessionsApi

    sb = sandbox_factory(reply_s=0.3, artifacts_delay_s=0)
    ids = [ended(sb) for _ in range(3)]

    async def go() -> list[str]:
        async with SessionsApi(sb.token_url, sb.api_key, proxy=False, timeout=5) as api:
            listed, _ = await api.recent(3, page=1)
            return listed

    assert asyncio.run(go()) == ids[::-1]
    pages = [e for e in sb.events if e["type"] == "http.request" and "cursor=" in e["path"]]
    assert len(pages) == 2


def test_a_session_of_the_other_region_is_named(
    sandbox_factory: Factory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the region URLs (no --token-url), a miss in one region is looked up in the
    other; two sandboxes stand in for the two regions (plain HTTP, one key)."""
    from doctor import cli, context

    key = "k" * 32
    us = sandbox_factory(tls=False, api_keys=[key], reply_s=0.3, artifacts_delay_s=0)
    eu = sandbox_factory(tls=False, api_keys=[key], reply_s=0.3, artifacts_delay_s=0)
    sid = ended(eu)
    monkeypatch.setitem(context.REGIONS, "us", (us.ws_url, us.token_url))
    monkeypatch.setitem(context.REGIONS, "eu", (eu.ws_url, eu.token_url))
    monkeypatch.setenv("ASSEMBLYAI_API_KEY", key)
    with pytest.raises(SystemExit) as exited:
        cli.main(["session", sid, "--json"])
    report = json.loads(capsys.readouterr().out)
    (fetch,) = fetch_results(report)
    assert (exited.value.code, fetch["cause"]) == (1, "session_in_other_region")
    assert fetch["fix"]["commands"] == [f"agent-doctor session {sid} --region eu"]


def test_a_missing_session_behind_token_url_is_worded_for_that_host(
    sandbox_factory: Factory,
) -> None:
    """With --token-url the run asked one host, not a region: no `--region` advice."""
    sb = sandbox_factory(reply_s=0.3, artifacts_delay_s=0)
    code, report, _, err = session_cli(sb, "sess_" + "0" * 32)
    (fetch,) = fetch_results(report)
    assert (code, fetch["cause"]) == (1, "session_not_found"), err
    text = json.dumps(fetch["fix"]) + fetch["summary"]
    assert "region" not in fetch["summary"] and "--region eu" not in text
    assert "127.0.0.1" in fetch["fix"]["title"]
    assert fetch["fix"]["commands"] == [
        f"agent-doctor session --recent 5 --token-url {sb.token_url}"
    ]


def test_a_session_in_neither_region_is_worded_with_regions(
    sandbox_factory: Factory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from doctor import cli, context

    key = "k" * 32
    us = sandbox_factory(tls=False, api_keys=[key], reply_s=0.3, artifacts_delay_s=0)
    eu = sandbox_factory(tls=False, api_keys=[key], reply_s=0.3, artifacts_delay_s=0)
    monkeypatch.setitem(context.REGIONS, "us", (us.ws_url, us.token_url))
    monkeypatch.setitem(context.REGIONS, "eu", (eu.ws_url, eu.token_url))
    monkeypatch.setenv("ASSEMBLYAI_API_KEY", key)
    with pytest.raises(SystemExit):
        cli.main(["session", "sess_" + "0" * 32, "--json"])
    (fetch,) = fetch_results(json.loads(capsys.readouterr().out))
    assert (
        fetch["cause"] == "session_not_found" and "region us nor in region eu" in fetch["summary"]
    )
    assert "--region eu" not in json.dumps(fetch["fix"])  # eu was asked already
    assert fetch["fix"]["commands"] == ["agent-doctor session --recent 5 --region us"]


def test_no_api_key_is_one_line(sandbox_factory: Factory) -> None:
    proc = run_cli("session", "sess_" + "0" * 32, env=cli_env())
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "API key" in proc.stderr


def test_through_a_proxy_with_a_plot(sandbox_factory: Factory, tmp_path: Path) -> None:
    """The REST calls and the downloads go through --proxy (a real tinyproxy); --plot
    draws the session."""
    from sandbox_wire import tinyproxy

    sb = sandbox_factory(reply_s=0.3, artifacts_delay_s=0)
    sid = ended(sb, Script(speech=[(1.2, 0.5)], duration_s=2.5))
    png = tmp_path / "session.png"
    with tinyproxy(tmp_path, [sb.port]) as (proxy, log):
        code, report, _, err = session_cli(sb, sid, "--proxy", proxy, "--plot", str(png))
        text = log.read_text()
    assert code == 0, err
    assert fetch_results(report)[0]["status"] == "pass"
    assert text.count(f"CONNECT 127.0.0.1:{sb.port}") >= 4  # the session, three artifacts
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_an_unreachable_api_is_one_cause(tmp_path: Path) -> None:
    from sandbox_wire import unanswering_listener

    with unanswering_listener() as port:
        url = f"http://127.0.0.1:{port}/v1/token"
        env = cli_env({"ASSEMBLYAI_API_KEY": "k" * 32})
        proc = run_cli(
            "session", "sess_" + "0" * 32, "--token-url", url, "--timeout", "0.5", "--json",
            env=env,
        )  # fmt: skip
    report = json.loads(proc.stdout)
    (fetch,) = fetch_results(report)
    assert (proc.returncode, fetch["cause"]) == (1, "sessions_api_unreachable")
    assert "0.5 s" in fetch["summary"]
    assert "k" * 32 not in proc.stdout + proc.stderr


def test_a_server_trickling_its_answer_is_cut_at_the_timeout() -> None:
    """httpx's timeouts are per read: a byte every 0.2 s held `--timeout 3` for 154 s."""
    import asyncio

    from sandbox_wire import trickling_server

    from doctor.net.agent_api import StepTimeout, mint_token

    with trickling_server() as port:
        url = f"http://127.0.0.1:{port}/v1/token"
        env = cli_env({"ASSEMBLYAI_API_KEY": "k" * 32})
        session = run_cli(
            "session", "sess_" + "0" * 32, "--token-url", url, "--timeout", "1", "--json",
            env=env, timeout=60,
        )  # fmt: skip
        with pytest.raises(StepTimeout, match="within 1 s"):
            asyncio.run(asyncio.wait_for(mint_token(url, "k" * 32, timeout=1), 60))
    (fetch,) = fetch_results(json.loads(session.stdout))
    assert (session.returncode, fetch["cause"]) == (1, "sessions_api_unreachable")
    assert "within 1 s" in fetch["summary"]


def test_an_artifact_download_that_never_completes_is_cut_at_its_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A download has a deadline of its own (minutes: recordings are big); 1 s here."""
    import asyncio

    from sandbox_wire import trickling_server

    from doctor.net import sessions_api
    from doctor.net.sessions_api import ArtifactLink, SessionsApi

    monkeypatch.setattr(sessions_api, "download_deadline_s", lambda timeout_s: 1.0)

    async def fetch(port: int) -> sessions_api.Download:
        api = SessionsApi(f"http://127.0.0.1:{port}/v1/token", "k" * 32, timeout=5)
        async with api:
            link = ArtifactLink(f"http://127.0.0.1:{port}/a/audio.ogg?X-Amz-Signature=s", None)
            return await api.download(link, str(tmp_path))

    with trickling_server() as port:
        got = asyncio.run(asyncio.wait_for(fetch(port), 60))
    assert got.error is not None and "no complete download" in got.error
    assert "within 1 s" in got.error and "X-Amz-Signature" not in got.error
    assert list(tmp_path.iterdir()) == []  # the partial file is gone
