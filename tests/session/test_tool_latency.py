"""Latency on a turn answered through a tool (review r15 #6): from the end of the user's
speech to the first audible reply after the tool call (the tool_result reply), less the
app's own tool time."""

from __future__ import annotations

from synth import Script, rid

from doctor.result import Status
from doctor.session import Source, analyze_events


def test_a_turn_answered_through_a_tool_is_measured() -> None:
    s = Script().open(tools=[{"name": "lookup", "timeout_seconds": 30.0}])
    s.user("Where is my parcel?")  # speech stops, the turn is committed
    quiet = rid()  # the field's tool reply: a call, no sound
    s.svc("reply.started", s.t + 0.3, reply_id=quiet, item_id="msg_" + quiet[5:])
    s.svc("tool.call", s.t + 0.35, call_id="call_1", name="lookup", arguments={})
    s.svc("reply.done", s.t + 0.4, reply_id=quiet, status="completed")
    s.t += 0.4
    s.tool_result("call_1", after=0.8)  # the app's tool took 0.85 s
    s.t += 0.9
    s.reply("It arrives on Monday.", lead_in=0.6)  # the tool_result reply
    s.t += 1
    s.end()
    (f,) = analyze_events(s.sorted(), Source(shape="synthetic"))
    lat = next(r for r in f.results if r.id == "session-latency")
    assert lat.status is Status.PASS, lat.summary
    assert lat.evidence["turns"] == 1
    (tool_turn,) = lat.evidence["tool_turns"]
    assert tool_turn["tool_wait_s"] > 0.5
    assert lat.evidence["per_turn_s"][0] < tool_turn["to_audio_s"]
