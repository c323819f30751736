"""The client (`doctor.net.agent_api`) against the sandbox over real sockets: its timeline,
drops, timeouts, proxies, CA bundles, and that no secret leaks anywhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from sandbox_wire import chunks, events_of, run, tinyproxy, unanswering_listener, utterance

from doctor.net.agent_api import (
    AgentApiError,
    AgentConnection,
    ConnectFailed,
    ProxyRejected,
    SessionError,
    StepTimeout,
    mint_token,
)
from doctor.sandbox.threaded import ThreadedSandbox

# These tests pin protocol.md's version; the field's default is in test_field_*.py.
pytestmark = pytest.mark.sandbox_behaviour("documented")

Factory = Callable[..., ThreadedSandbox]
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"


# --- timeline ------------------------------------------------------------------------------


def test_timeline_is_monotonic_and_holds_every_frame_both_ways(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=0.2)

    async def go() -> AgentConnection:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({"system_prompt": "hi"})
            await c.send_raw("{not json")
            for chunk in chunks(utterance()):
                await c.send_audio(chunk)
            await c.wait_for("reply.done", "reply", errors_fatal=False)
            await c.update({"output": {"volume": 70}})
            await c.end()
            return c

    c = run(go())
    sb.wait_for("ws.closed")
    timeline = c.timeline_dicts()
    times = [e["t_s"] for e in timeline]
    assert times == sorted(times) and times[0] >= 0
    assert timeline[0]["type"] == "connect" and timeline[-1]["type"] == "closed"
    assert [e["type"] for e in timeline if e["direction"] == "local"] == [
        "connect",
        "open",
        "closed",
    ]
    conn = sb.find("ws.open")[-1]["conn"]
    sent = [e["type"] for e in timeline if e["direction"] == "sent"]
    received = [e["type"] for e in timeline if e["direction"] == "received"]
    assert "(raw)" in sent and len(sent) > 20
    # the sandbox names the raw frame by what it was; everything else by its type
    assert [e["type"] for e in events_of(sb, conn, ("in",))] == [
        "(invalid json)" if t == "(raw)" else t for t in sent
    ]
    assert "session.error" in received and "reply.audio" in received
    assert [e["type"] for e in events_of(sb, conn, ("out",))] == received
    assert c.connect_s is not None and c.ready_s is not None and c.connect_s < c.ready_s


def test_timeline_summaries_carry_sizes_not_audio(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=0.1)

    async def go() -> AgentConnection:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({})
            for chunk in chunks(utterance()):
                await c.send_audio(chunk)
            await c.wait_for("reply.done", "reply")
            await c.end()
            return c

    c = run(go())
    audio_in = [e for e in c.timeline_dicts() if e["type"] == "input.audio"]
    audio_out = [e for e in c.timeline_dicts() if e["type"] == "reply.audio"]
    assert audio_in and all(e["audio_bytes"] == 2400 for e in audio_in[:-1])
    assert audio_out and all(e["data_bytes"] == 2400 for e in audio_out)
    assert max(len(json.dumps(e)) for e in c.timeline_dicts()) < 400


# --- drop and close ------------------------------------------------------------------------


def test_drop_sends_no_close_frame(sandbox: ThreadedSandbox) -> None:
    async def go() -> AgentConnection:
        c = await AgentConnection.open(sandbox.ws_url, api_key=sandbox.api_key)
        await c.start_session({})
        await c.drop()
        return c

    c = run(go())
    assert c.closed and c.close_frame is False
    assert [e["type"] for e in c.timeline_dicts()][-2:] == ["drop", "closed"]
    closed = sandbox.wait_for("ws.closed")
    assert closed["close_frame_received"] is False and closed["code"] == 1006
    assert sandbox.wait_for("session.detached")["session_id"] == c.session_id


def test_close_sends_a_close_frame(sandbox: ThreadedSandbox) -> None:
    async def go() -> AgentConnection:
        c = await AgentConnection.open(sandbox.ws_url, api_key=sandbox.api_key)
        await c.start_session({})
        await c.close(1000)
        return c

    c = run(go())
    assert (c.close_code, c.close_frame) == (1000, True)
    closed = sandbox.wait_for("ws.closed")
    assert closed["close_frame_received"] is True and closed["code"] == 1000


# --- every wait has a timeout --------------------------------------------------------------


def test_connect_times_out_on_a_listener_that_never_answers() -> None:
    with unanswering_listener() as port, pytest.raises(StepTimeout) as info:
        run(AgentConnection.open(f"wss://127.0.0.1:{port}/v1/ws", api_key="k" * 32, timeout=0.3))
    assert (info.value.step, info.value.timeout_s, info.value.reason) == ("connect", 0.3, "timeout")


def test_token_request_times_out_on_a_listener_that_never_answers() -> None:
    with unanswering_listener() as port, pytest.raises(StepTimeout) as info:
        run(mint_token(f"https://127.0.0.1:{port}/v1/token", "k" * 32, 60, timeout=0.3))
    assert (info.value.step, info.value.timeout_s) == ("token", 0.3)


def test_ready_wait_times_out_with_its_step(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(faults={"slow-ready": 3.0})

    async def go() -> StepTimeout:
        # A generous budget for the TLS connect; the step under test gets its own 0.3 s.
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key, timeout=10) as c:
            with pytest.raises(StepTimeout) as info:
                await c.start_session({}, timeout=0.3)
            assert c.timeline_dicts()[-1] == {
                "t_s": c.timeline_dicts()[-1]["t_s"],
                "direction": "local",
                "type": "timeout",
                "step": "ready",
                "timeout_s": 0.3,
            }
            return info.value

    err = run(go())
    assert (err.step, err.timeout_s, err.kind) == ("ready", 0.3, "timeout")


@pytest.mark.parametrize("step", ["recv", "update", "per-call-timeout"])
def test_other_waits_time_out(sandbox_factory: Factory, step: str) -> None:
    sb = sandbox_factory(faults={"slow-ready": 3.0} if step == "per-call-timeout" else {})

    async def go() -> StepTimeout:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key, timeout=10) as c:
            with pytest.raises(StepTimeout) as info:
                if step == "recv":
                    await c.start_session({})
                    c.timeout = 0.3  # the connection's default for later waits
                    await c.next_event()
                elif step == "update":
                    await c.start_session({})
                    await c.wait_for("session.updated", "update", timeout=0.2)
                else:
                    await c.start_session({}, timeout=0.1)
            await c.close()
            return info.value

    err = run(go())
    expected = {
        "recv": ("recv", 0.3),
        "update": ("update", 0.2),
        "per-call-timeout": ("ready", 0.1),
    }
    assert (err.step, err.timeout_s, err.kind) == (*expected[step], "timeout")


# --- proxy and CA bundle -------------------------------------------------------------------


def test_through_an_http_proxy(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    with tinyproxy(tmp_path, [sandbox.port]) as (proxy, log):

        async def go() -> object:
            minted = await mint_token(sandbox.token_url, sandbox.api_key, 60, proxy=proxy)
            async with AgentConnection.open(sandbox.ws_url, token=minted.token, proxy=proxy) as c:
                await c.start_session({})
                await c.end()
                return c.timeline_dicts()[0]["proxy"]

        assert run(go()) is True
        text = log.read_text()
    assert text.count(f"CONNECT 127.0.0.1:{sandbox.port}") >= 2  # token and WebSocket


def test_a_proxy_refusing_the_port(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    with tinyproxy(tmp_path, [443]) as (proxy, _):
        with pytest.raises(ProxyRejected) as ws_err:
            run(AgentConnection.open(sandbox.ws_url, api_key=sandbox.api_key, proxy=proxy))
        with pytest.raises(ProxyRejected) as token_err:
            run(mint_token(sandbox.token_url, sandbox.api_key, 60, proxy=proxy))
    assert ws_err.value.http_status == 403 and ws_err.value.step == "proxy"
    assert token_err.value.http_status == 403 and token_err.value.step == "token"


def test_ca_bundle_is_trusted(sandbox: ThreadedSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_CA)  # only the explicit bundle trusts the sandbox

    async def go() -> str:
        minted = await mint_token(sandbox.token_url, sandbox.api_key, 60, ca_bundle=sandbox.ca_file)
        async with AgentConnection.open(
            sandbox.ws_url, token=minted.token, ca_bundle=sandbox.ca_file
        ) as c:
            payload = await c.start_session({})
            await c.end()
            return str(payload["session_id"])

    assert run(go()).startswith("sess_")


@pytest.mark.parametrize("which", ["system store", "another CA"])
def test_untrusted_ca_fails_cleanly(
    sandbox: ThreadedSandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, which: str
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", SYSTEM_CA)
    bundle = None
    if which == "another CA":
        other = tmp_path / "other-ca.pem"
        trustme.CA(organization_name="Someone Else").cert_pem.write_to_path(str(other))
        bundle = str(other)
    with pytest.raises(ConnectFailed) as ws_err:
        run(AgentConnection.open(sandbox.ws_url, api_key=sandbox.api_key, ca_bundle=bundle))
    with pytest.raises(ConnectFailed) as token_err:
        run(mint_token(sandbox.token_url, sandbox.api_key, 60, ca_bundle=bundle))
    for err in (ws_err.value, token_err.value):
        assert err.reason == "tls_untrusted" and err.kind == "connect"
        assert "certificate verify failed" in str(err)
    assert not sandbox.find("ws.open")


def test_refused_port_is_a_clean_connect_failure() -> None:
    with unanswering_listener() as port:
        pass  # closed again: nothing listens there now
    with pytest.raises(ConnectFailed) as info:
        run(AgentConnection.open(f"ws://127.0.0.1:{port}/v1/ws", timeout=2))
    assert info.value.reason == "refused"


# --- secrets -------------------------------------------------------------------------------


def test_no_secret_in_timeline_facts_messages_log_or_stderr(
    capsys: pytest.CaptureFixture[str], sandbox_factory: Factory
) -> None:
    key = "sk-live-do-not-leak-0123456789abcdef"
    wrong = "sk-wrong-do-not-leak-0123456789abcd"
    sb = sandbox_factory(api_keys=[key], log_events=True, reply_s=0.1)
    texts: list[str] = []
    tokens: list[str] = []

    async def go() -> None:
        minted = await mint_token(sb.token_url, key, 60)
        assert minted.token
        tokens.append(minted.token)
        texts.append(repr(minted))
        texts.append(json.dumps(minted.body))
        for creds in ({"api_key": key}, {"token": minted.token}):
            async with AgentConnection.open(sb.ws_url, **creds) as c:  # type: ignore[arg-type]
                await c.start_session({})
                for chunk in chunks(utterance()):
                    await c.send_audio(chunk)
                await c.wait_for("reply.done", "reply")
                await c.end()
                texts.append(json.dumps(c.timeline_dicts()))
        failures: list[AgentApiError] = []
        for creds in ({"api_key": wrong}, {"token": minted.token}):  # wrong key; reused token
            try:
                async with AgentConnection.open(sb.ws_url, **creds) as c:  # type: ignore[arg-type]
                    await c.start_session({})
            except SessionError as refused:
                failures.append(refused)
            texts.append(json.dumps(c.timeline_dicts()))
        bad = await mint_token(sb.token_url, wrong, 60)
        texts.append(repr(bad) + json.dumps(bad.body))
        assert len(failures) == 2
        for err in failures:
            texts.extend([str(err), repr(err), json.dumps(err.facts(), default=str)])

    run(go())
    sb.wait_for("ws.closed", conn=4)
    texts.append(json.dumps(sb.events, default=str))
    texts.append(capsys.readouterr().err)
    blob = "\n".join(texts)
    assert "sess_" in blob and "****" in blob  # the texts are real, and masked
    for secret in (key, wrong, *tokens):
        assert secret not in blob


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/v1/ws", "wss://127.0.0.1:notaport/v1/ws", "wss://[::1/v1/ws"],
    ids=["scheme", "port", "ipv6"],
)
def test_invalid_ws_url_is_a_clean_failure_without_the_token(url: str) -> None:
    token = "tok-do-not-leak-0123456789abcdef"
    with pytest.raises(ConnectFailed) as info:
        run(AgentConnection.open(url, token=token, timeout=2))
    err = info.value
    assert (err.reason, err.step) == ("invalid_url", "connect")
    assert token not in str(err) + json.dumps(err.facts())


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/v1/token", "https://127.0.0.1:notaport/v1/token", "nonsense"]
)
def test_invalid_token_url_is_a_clean_failure(url: str) -> None:
    key = "sk-do-not-leak-0123456789abcdef"
    with pytest.raises(ConnectFailed) as info:
        run(mint_token(url, key, 60, timeout=2))
    assert (info.value.reason, info.value.step) == ("invalid_url", "token")
    assert key not in str(info.value) + json.dumps(info.value.facts())
