"""Real-time pacing counts from the first reply chunk as it went out: a first chunk that
left late (a loaded machine: the CI lost a stop to this) brought chunk 1 early, under the
50 ms a chunk plays for (test_reply_audio_is_paced_at_real_time failed on 44 ms)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from sandbox_wire import chunks, run, utterance

from doctor.net.agent_api import AgentConnection
from doctor.sandbox import audio
from doctor.sandbox.threaded import ThreadedSandbox

Factory = Callable[..., ThreadedSandbox]
# protocol.md's real-time pacing (test_sandbox_conversation.py's version)
pytestmark = pytest.mark.sandbox_behaviour("documented")


def test_a_slow_first_chunk_mocked_as_load_does_not_bring_the_next_early(
    sandbox_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    encode = audio.encode
    calls = {"n": 0}

    def slow_first(piece: Any, encoding: str) -> bytes:
        calls["n"] += 1
        if calls["n"] == 1:
            time.sleep(0.03)  # the machine's load, mocked: chunk 0 leaves 30 ms late
        return encode(piece, encoding)

    monkeypatch.setattr(audio, "encode", slow_first)
    sb = sandbox_factory(reply_s=0.5)

    async def go() -> None:
        async with AgentConnection.open(sb.ws_url, api_key=sb.api_key) as c:
            await c.start_session({})
            for chunk in chunks(utterance()):
                await c.send_audio(chunk)
            await c.wait_for("reply.done", "reply")
            await c.end()

    run(go())
    assert calls["n"] >= 10  # the reply's chunks went through the mocked step
    sent = sb.find("reply.audio")
    t0 = sent[0]["t_s"]
    gaps = [round(e["t_s"] - t0, 4) for e in sent]
    assert len(sent) == 10
    assert all(g >= k * 0.05 - 0.002 for k, g in enumerate(gaps)), gaps
