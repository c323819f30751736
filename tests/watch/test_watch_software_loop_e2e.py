"""End to end through `agent-doctor watch` and the sandbox: apps that send the agent's
`reply.audio` back as `input.audio` (a stream mix-up, no speaker in between).

An app that pipes each chunk straight back as it arrives is a software loop: the wire shows
each chunk back under 1 ms after the relay handed it over, and so must the report. It read
180-245 ms before the relay placed both directions on their senders' clocks: the app's
input ran continuously from its own sentence, so the chunks that arrived while it was still
speaking (~200 ms of the reply, sent back at once) anchored everything after them that
much late, and the relay's player model added the service's jitter on the other side.

An app that replays the agent at real time from when it gets round to it is a loop with a
real delay (the reply that queued while it spoke): an echo, not a software loop."""

from __future__ import annotations

import asyncio
import base64

from watchparts import (
    App,
    WatchProcess,
    chunked,
    one,
    open_talking,
    pcm16,
    relay_evidence,
    speech,
    watch_run,
)


def test_an_app_that_pipes_the_agent_into_its_input_is_a_software_loop(sandbox_factory) -> None:
    sb = sandbox_factory(reply_s=4.0)

    async def app(wp: WatchProcess) -> None:
        a = await App.open(wp.url, api_key=sb.api_key)
        await a.start({"input": {"turn_detection": {"interrupt_response": False}}})

        async def pipe() -> None:  # the mix-up: every reply chunk goes out as input, at once
            while True:
                _, pcm = await a.reply_pcm.get()
                await a.send({"type": "input.audio", "audio": base64.b64encode(pcm).decode()})

        piping = asyncio.ensure_future(pipe())
        await a.stream(chunked(pcm16(speech(0.8, 1.3)), 2400))  # the app's own sentence
        try:
            await a.wait("reply.done", 20)
        finally:
            piping.cancel()
        await a.end()

    report, wp = watch_run(sb, app)
    found = one(report, "echo_loop")
    ev = relay_evidence(found)
    assert found["status"] == "fail" and ev["signals"] == ["audio"], found
    assert ev["software_loop"] is True, ev
    assert 0 <= ev["audio_delay_ms"] < 30, ev  # the wire's own figure: about 1 ms
    assert abs(ev["audio_erl_db"]) < 4, ev  # sent back at full level
    assert found["fix"]["guide"] == "watch_software_loop", found["fix"]
    assert "too soon for a speaker and a microphone" in wp.stderr_text


def test_an_app_that_replays_the_agent_late_is_an_echo_not_a_pass(sandbox_factory) -> None:
    sb = sandbox_factory(reply_s=4.0)

    async def app(wp: WatchProcess) -> None:
        a = await open_talking(wp, sb.api_key)
        # the agent's audio goes into the app's input at real time from when the app gets
        # to it: the part that arrived while it was speaking goes back that much late
        loop = asyncio.get_running_loop()
        end = loop.time() + 6.0
        due = 0.0
        while loop.time() < end:
            try:
                _, pcm = await asyncio.wait_for(a.reply_pcm.get(), end - loop.time())
            except asyncio.TimeoutError:
                break
            due = max(due, loop.time())
            if due > loop.time():
                await asyncio.sleep(due - loop.time())  # pacing the app's stream
            await a.send({"type": "input.audio", "audio": base64.b64encode(pcm).decode()})
            due += len(pcm) / 48_000
        await a.end()

    report, wp = watch_run(sb, app)
    found = one(report, "echo_loop")
    ev = relay_evidence(found)
    assert found["status"] == "fail" and ev["signals"] == ["audio"], found
    assert ev["audio_verdict"] == "echo" and abs(ev["audio_erl_db"]) < 4, ev  # full level
    assert "comes back" in found["summary"] and "comes back in input.audio" in wp.stderr_text
