"""The sandbox's Sessions REST API and artifacts (session-formats.md §2-§5, §8), produced
by real clients over real sockets and read back over real HTTP with plain httpx."""

from __future__ import annotations

import io
import json
import re
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile
from sandbox_wire import FakeClock
from session_clients import LOOKUP_TOOL, Script, converse, session_config

from doctor.sandbox.threaded import ThreadedSandbox

Factory = Callable[..., ThreadedSandbox]
TIMELINE_KEYS = ["session_id", "started_at_unix_ms", "turns", "config_changes", "ended"]
TURN_KEYS = [
    "turn_id", "item_id", "status", "trigger", "requested_instructions", "user_transcript",
    "user_speech_started_at_ms", "user_speech_ended_at_ms", "user_confidence", "agent_text",
    "agent_reply_started_at_ms", "agent_reply_ended_at_ms", "interrupted_at_ms",
    "time_to_first_audio_ms",
]  # fmt: skip
TOOL_KEYS = [
    "call_id", "name", "arguments", "result", "dispatched_at_ms", "result_received_at_ms",
    "duration_ms", "is_error", "timed_out", "parallel_call_id",
]  # fmt: skip
METADATA_KEYS = [
    "session_id", "started_at", "ended_at", "format", "channels", "channel_layout",
    "sample_rate", "file", "uploaded_chunks", "dropped_chunks",
]  # fmt: skip


def http(sb: ThreadedSandbox) -> httpx.Client:
    assert sb.ca_file is not None
    return httpx.Client(verify=ssl.create_default_context(cafile=sb.ca_file), timeout=10)


def base(sb: ThreadedSandbox) -> str:
    return sb.sandbox.http_base


def finished(sb: ThreadedSandbox, session_id: str | None) -> None:
    """Artifacts are written (the REST API shows them once the delay has passed)."""
    sb.wait_for("artifacts.written", session_id=session_id, timeout=20)


def ready_artifacts(sb: ThreadedSandbox, clock: FakeClock, sid: str) -> dict[str, Any]:
    finished(sb, sid)
    clock.advance(sb.config.artifacts_delay_s + 0.01)
    with http(sb) as client:
        body = client.get(f"{base(sb)}/v1/sessions/{sid}", headers={"Authorization": sb.api_key})
    assert body.status_code == 200
    data: dict[str, Any] = body.json()
    return data


def download(sb: ThreadedSandbox, url: str) -> httpx.Response:
    with http(sb) as client:
        return client.get(url)


@pytest.fixture
def clocked(sandbox_factory: Factory) -> tuple[ThreadedSandbox, FakeClock]:
    clock = FakeClock()
    return sandbox_factory(clock=clock, reply_s=1.0), clock


def test_a_normal_session_gets_artifacts_in_the_vendors_formats(
    clocked: tuple[ThreadedSandbox, FakeClock],
) -> None:
    sb, clock = clocked
    run = converse(sb, Script(speech=[(1.6, 0.8)], duration_s=5.0))
    sid = run.session_id
    assert sid is not None and re.fullmatch(r"sess_[0-9a-f]{32}", sid)
    finished(sb, sid)

    with http(sb) as client:  # before the delay: the session, no artifacts yet
        early = client.get(f"{base(sb)}/v1/sessions/{sid}", headers={"Authorization": sb.api_key})
    assert early.status_code == 200
    assert list(early.json()) == [
        "id", "agent_id", "status", "public_close_reason", "duration_seconds", "config",
        "created_at", "ended_at", "artifacts",
    ]  # fmt: skip
    assert early.json()["artifacts"] == []
    assert early.json()["public_close_reason"] == "client_end"

    got = ready_artifacts(sb, clock, sid)
    kinds = {a["type"]: a for a in got["artifacts"]}
    assert [(a["type"], a["content_type"]) for a in got["artifacts"]] == [
        ("audio", "audio/ogg"), ("timeline", "application/json"), ("metadata", "application/json"),
    ]  # fmt: skip

    # §3.1: one compact line, raw UTF-8, no trailing newline, fixed key order
    raw = download(sb, kinds["timeline"]["url"]).content
    assert not raw.endswith(b"\n") and b"\n" not in raw and raw.startswith(b'{"session_id":"')
    timeline = json.loads(raw)
    assert list(timeline) == TIMELINE_KEYS
    assert raw == json.dumps(timeline, separators=(",", ":"), ensure_ascii=False).encode()
    assert timeline["session_id"] == sid
    assert list(timeline["ended"]) == ["reason", "public_reason", "duration_seconds"]
    assert timeline["ended"]["reason"] == "user_initiated"
    assert timeline["ended"]["public_reason"] == "client_end"
    turns = timeline["turns"]
    assert [t["trigger"] for t in turns] == ["greeting", "user_speech"]
    for turn in turns:
        assert list(turn) == TURN_KEYS
        assert re.fullmatch(r"resp_[0-9a-f]{32}", turn["turn_id"])
        assert re.fullmatch(r"msg_[0-9a-f]{32}", turn["item_id"])
    greeting, answer = turns
    start = timeline["started_at_unix_ms"]
    assert greeting["user_transcript"] is None and greeting["status"] == "completed"
    # the audible start follows the silent lead-in (0.25 s), TTFA counts from creation
    assert 200 <= greeting["agent_reply_started_at_ms"] - start <= 600
    assert 200 <= greeting["time_to_first_audio_ms"] <= 600
    assert answer["user_transcript"] and answer["user_confidence"] == 1.0
    assert answer["user_speech_started_at_ms"] < answer["user_speech_ended_at_ms"]
    assert answer["user_speech_ended_at_ms"] <= answer["agent_reply_started_at_ms"]
    # §5: the timeline runs ~2.5 s past session.ended
    ended = next(e["event"] for e in run.events if e["event"]["type"] == "session.ended")
    end_ms = start + timeline["ended"]["duration_seconds"] * 1000
    assert 2300 <= end_ms - ended["timestamp"] * 1000 <= 2700
    assert timeline["config_changes"][0]["update"]["input"]["turn_detection"]["min_silence"] == 300

    meta_raw = download(sb, kinds["metadata"]["url"]).content
    assert not meta_raw.endswith(b"\n") and meta_raw.startswith(b'{\n  "session_id"')
    meta = json.loads(meta_raw)
    assert list(meta) == METADATA_KEYS
    assert meta["channel_layout"] == "stereo (left=user, right=agent)"
    assert meta["file"] == f"{sid}/recording/audio.ogg" and meta["sample_rate"] == 24000
    assert meta["started_at"].endswith("+00:00") and "." in meta["started_at"]

    # §4: Ogg/Opus, stereo, decodes at 48 kHz, ~ session_duration_seconds + 0.3 s
    ogg = download(sb, kinds["audio"]["url"])
    assert ogg.headers["content-type"] == "audio/ogg" and ogg.content[:4] == b"OggS"
    samples, rate = soundfile.read(io.BytesIO(ogg.content), dtype="float32")
    assert rate == 48000 and samples.shape[1] == 2
    length_s = len(samples) / rate
    assert abs(length_s - (ended["session_duration_seconds"] + 0.3)) < 0.25
    # left = what the client said (at 1.6 s after ready), right = the agent
    t_ready = next(e["received_at"] for e in run.events if e["event"]["type"] == "session.ready")
    rec_zero = start / 1000 - 0.2
    spoke = t_ready - rec_zero + 1.6

    def rms(ch: int, a: float, b: float) -> float:
        part = samples[round(a * rate) : round(b * rate), ch]
        return float(np.sqrt(np.mean(part**2)))

    assert rms(0, spoke + 0.1, spoke + 0.7) > 20 * max(rms(0, 0.1, 1.0), 1e-5)
    g0 = (greeting["agent_reply_started_at_ms"] - start) / 1000 + 0.2
    assert rms(1, g0 + 0.05, g0 + 0.6) > 20 * max(rms(1, spoke + 0.1, spoke + 0.5), 1e-5)


def test_list_has_a_cursor_and_sees_only_this_keys_sessions(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(api_keys=["a" * 32, "b" * 32], reply_s=0.3, artifacts_delay_s=0)
    ids = [converse(sb, Script(duration_s=0.4)).session_id for _ in range(3)]
    for sid in ids:
        finished(sb, sid)
    with http(sb) as client:
        auth = {"Authorization": f"Bearer {'a' * 32}"}
        first = client.get(f"{base(sb)}/v1/sessions", params={"limit": 2}, headers=auth).json()
        assert [s["id"] for s in first["sessions"]] == ids[::-1][:2]  # newest first
        assert first["has_more"] is True
        cursor = first["response_metadata"]["next_cursor"]
        second = client.get(
            f"{base(sb)}/v1/sessions", params={"limit": 2, "cursor": cursor}, headers=auth
        ).json()
        assert [s["id"] for s in second["sessions"]] == [ids[0]]
        assert second["has_more"] is False and second["response_metadata"]["next_cursor"] is None
        assert list(second["sessions"][0]) == [
            "id", "agent_id", "status", "public_close_reason", "duration_seconds",
            "created_at", "ended_at",
        ]  # fmt: skip
        other = {"Authorization": "b" * 32}
        assert client.get(f"{base(sb)}/v1/sessions", headers=other).json()["sessions"] == []
        foreign = client.get(f"{base(sb)}/v1/sessions/{ids[0]}", headers=other)
        assert foreign.status_code == 404 and foreign.json()["code"] == "session_not_found"
        bad = client.get(f"{base(sb)}/v1/sessions", headers={"Authorization": "c" * 32})
        assert (bad.status_code, bad.json()) == (404, {"detail": "Invalid API key"})
        missing = client.get(f"{base(sb)}/v1/sessions")
        assert missing.status_code == 422
        gone = client.delete(f"{base(sb)}/v1/sessions/{ids[1]}", headers=auth)
        assert gone.status_code == 204 and gone.content == b""
        assert client.get(f"{base(sb)}/v1/sessions/{ids[1]}", headers=auth).status_code == 404


def test_artifact_urls_expire_and_refuse_an_authorization_header(
    sandbox_factory: Factory,
) -> None:
    clock = FakeClock()
    sb = sandbox_factory(clock=clock, reply_s=0.3, artifacts_delay_s=0, artifact_url_ttl_s=60)
    sid = converse(sb, Script(duration_s=0.4)).session_id
    assert sid is not None
    got = ready_artifacts(sb, clock, sid)
    url = got["artifacts"][1]["url"]
    with http(sb) as client:
        assert client.get(url).status_code == 200
        refused = client.get(url, headers={"Authorization": sb.api_key})
        assert refused.status_code == 400 and b"Only one auth mechanism" in refused.content
        assert sb.find("artifact.authorization_sent")
        forged = client.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"))
        assert forged.status_code == 403
        clock.advance(61)
        expired = client.get(url)
        assert expired.status_code == 403 and b"Request has expired" in expired.content


def test_switches_give_the_irregular_shapes(sandbox_factory: Factory) -> None:
    """§3.6 and §3.2: `user_speech_1` + a reply labelled `greeting`; the field's
    `participant_disconnected` after a proper session.end (public reason still client_end)."""
    sb = sandbox_factory(
        reply_s=0.6,
        artifacts_delay_s=0,
        timeline_quirks=True,
        timeline_reason="participant_disconnected",
    )
    run = converse(sb, Script(speech=[(1.2, 0.6)], duration_s=3.5))
    finished(sb, run.session_id)
    session = sb.sandbox.store.finished[str(run.session_id)]
    timeline = read_timeline(session.artifacts.timeline)
    assert timeline["ended"]["reason"] == "participant_disconnected"
    assert timeline["ended"]["public_reason"] == "client_end"
    first, head, labelled = timeline["turns"][:3]
    assert first["trigger"] == "greeting"
    assert (head["turn_id"], head["item_id"], head["user_speech_ended_at_ms"]) == (
        "user_speech_1", "", None,
    )  # fmt: skip
    assert head["user_transcript"] and head["agent_text"] is None
    assert labelled["trigger"] == "greeting" and labelled["agent_reply_started_at_ms"] is None
    assert labelled["time_to_first_audio_ms"] is None
    assert labelled["agent_reply_ended_at_ms"] is not None


def test_a_close_without_session_end_shows_after_the_grace_window(
    sandbox_factory: Factory,
) -> None:
    sb = sandbox_factory(reply_s=0.3, artifacts_delay_s=0, grace_s=0.3)
    run = converse(sb, Script(duration_s=0.5, end="close"))
    finished(sb, run.session_id)
    session = sb.sandbox.store.finished[str(run.session_id)]
    timeline = read_timeline(session.artifacts.timeline)
    assert timeline["ended"]["reason"] == "participant_disconnected"
    assert timeline["ended"]["public_reason"] != "client_end"


def test_echo_fed_back_cuts_replies_again_and_again(sandbox_factory: Factory) -> None:
    """A client that plays the agent into its own microphone: every reply is interrupted
    soon after it becomes audible, and the left channel carries the agent's voice."""
    sb = sandbox_factory(reply_s=2.0, artifacts_delay_s=0)
    run = converse(sb, Script(speech=[(0.8, 0.6)], echo_gain=0.5, duration_s=7.0))
    finished(sb, run.session_id)
    session = sb.sandbox.store.finished[str(run.session_id)]
    timeline = read_timeline(session.artifacts.timeline)
    cut = [
        t for t in timeline["turns"]
        if t["status"] == "interrupted" and t["agent_reply_started_at_ms"] is not None
    ]  # fmt: skip
    assert len(cut) >= 2
    assert all(t["interrupted_at_ms"] - t["agent_reply_started_at_ms"] < 1500 for t in cut)
    samples, rate = soundfile.read(session.artifacts.recording, dtype="float32")
    right_on, left_on = onsets(samples[:, 1], rate), onsets(samples[:, 0], rate)
    lags = [min((x - r for x in left_on if x > r), default=9.0) for r in right_on]
    assert len(right_on) >= 3
    # each agent onset comes back on the user's channel after the client's echo path
    assert all(0.05 <= lag <= 0.4 for lag in lags), lags


def onsets(x: np.ndarray[Any, Any], rate: int, dbfs: float = -40.0) -> list[float]:
    """Times where the 10 ms level rises above `dbfs` after at least 50 ms below it."""
    hop = rate // 100
    frames = x[: len(x) // hop * hop].reshape(-1, hop)
    loud = 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-9) > dbfs
    out, quiet = [], 5
    for i, on in enumerate(loud):
        if on and quiet >= 5:
            out.append(i / 100)
        quiet = 0 if on else quiet + 1
    return out


def test_an_unanswered_tool_call_times_out_in_the_timeline(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(reply_s=0.5, artifacts_delay_s=0, tool_call="lookup")
    run = converse(
        sb,
        Script(speech=[(1.0, 0.6)], answer_tools=False, duration_s=4.0),
        session_config(tools=[LOOKUP_TOOL]),
    )
    finished(sb, run.session_id)
    session = sb.sandbox.store.finished[str(run.session_id)]
    timeline = read_timeline(session.artifacts.timeline)
    (carrier,) = [t for t in timeline["turns"] if "tool_calls" in t]
    (call,) = carrier["tool_calls"]
    assert list(call) == TOOL_KEYS
    assert re.fullmatch(r"chatcmpl-tool-[0-9a-f]{16}", call["call_id"])
    assert re.fullmatch(r"item_[0-9a-f]{12}", call["parallel_call_id"])
    assert call["timed_out"] is True and call["result"] is None
    assert any(t["trigger"] == "tool_result" for t in timeline["turns"])


def read_timeline(path: str) -> dict[str, Any]:
    with open(path, "rb") as fh:
        data: dict[str, Any] = json.loads(fh.read())
    return data


def test_the_command_keeps_artifacts_where_asked(
    sandbox_process_factory: Callable[..., Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`agent-doctor sandbox` as a process: the artifact switches reach the sessions."""
    proc = sandbox_process_factory(
        "--artifacts-dir", str(tmp_path), "--artifacts-delay", "0", "--timeline-quirks",
        "--reply-seconds", "0.6",
    )  # fmt: skip
    if proc.ca_file:
        monkeypatch.setenv("SSL_CERT_FILE", proc.ca_file)
    run = converse(proc, Script(speech=[(1.2, 0.6)], duration_s=3.5))
    folder = tmp_path / str(run.session_id)
    with httpx.Client(verify=ssl.create_default_context(cafile=proc.ca_file), timeout=10) as c:
        got = c.get(
            proc.token_url.replace("/v1/token", f"/v1/sessions/{run.session_id}"),
            headers={"Authorization": proc.api_key},
        ).json()
    assert [a["type"] for a in got["artifacts"]] == ["audio", "timeline", "metadata"]
    assert (folder / "recording" / "audio.ogg").is_file()
    timeline = read_timeline(str(folder / "timeline.json"))
    assert [t["turn_id"] for t in timeline["turns"]][1] == "user_speech_1"
