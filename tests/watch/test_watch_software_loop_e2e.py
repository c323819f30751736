"""End to end through `agent-doctor watch` and the sandbox: an app that sends every
`reply.audio` chunk straight back as `input.audio` (a stream mix-up, no speaker in
between) is reported as the agent hearing itself, never a pass.

On the relay's clock this copy does not read as a few ms: 180-245 ms were measured on an
idle machine (one run under load read under 30 ms), an offset of the relay's player and
microphone models, not of the app; so `software_loop` is not asserted here (the observer's
tests in test_watch_software_loop.py cover it on a wire with known timing)."""

from __future__ import annotations

import asyncio
import base64

from watchparts import WatchProcess, one, open_talking, relay_evidence, watch_run


def test_an_app_that_sends_back_what_it_receives_is_an_echo_not_a_pass(sandbox_factory) -> None:
    sb = sandbox_factory(reply_s=4.0)

    async def app(wp: WatchProcess) -> None:
        a = await open_talking(wp, sb.api_key)
        # the mix-up: the agent's audio goes into the app's input as it plays, chunk for
        # chunk at real time from its arrival (no speaker, no microphone in between)
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
