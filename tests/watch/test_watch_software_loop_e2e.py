"""End to end through `agent-doctor watch` and the sandbox: an app that sends every
`reply.audio` chunk straight back as `input.audio` (a stream mix-up, no speaker in
between) is reported as the agent hearing itself, marked a software loop, never a pass."""

from __future__ import annotations

import asyncio
import base64

from watchparts import App, WatchProcess, chunked, one, pcm16, relay_evidence, speech, watch_run


def test_an_app_that_sends_back_what_it_receives_is_a_software_loop(sandbox_factory) -> None:
    sb = sandbox_factory(reply_s=4.0)

    async def app(wp: WatchProcess) -> None:
        a = await App.open(wp.url, api_key=sb.api_key)
        await a.start({"input": {"turn_detection": {"interrupt_response": False}}})
        await a.stream(chunked(pcm16(speech(0.8, 1.3)), 2400))
        loop = asyncio.get_running_loop()
        end = loop.time() + 6.0
        while loop.time() < end:  # the mix-up: what arrives is what goes out, at once
            try:
                _, pcm = await asyncio.wait_for(a.reply_pcm.get(), end - loop.time())
            except asyncio.TimeoutError:
                break
            await a.send({"type": "input.audio", "audio": base64.b64encode(pcm).decode()})
        await a.end()

    report, wp = watch_run(sb, app)
    found = one(report, "echo_loop")
    ev = relay_evidence(found)
    assert ev["software_loop"] is True, ev
    assert ev["audio_delay_ms"] < 30, ev
    assert "software loop" in found["summary"]
    assert found["fix"]["guide"] == "watch_software_loop"
    assert "too soon for a speaker and a microphone" in wp.stderr_text
