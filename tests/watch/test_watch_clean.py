"""A well-behaved app through `agent-doctor watch` (a real process, the sandbox upstream):
the session works as it would directly, the capture holds it, and the report is clean."""

from __future__ import annotations

import json
from pathlib import Path

from clirun import assert_valid_report
from scipy.signal import resample_poly
from watchparts import App, chunked, pcm16, problems, run, speech, start_watch

from doctor.capture.format import decode, is_header
from doctor.sandbox.threaded import ThreadedSandbox


def test_a_well_behaved_app_gets_a_clean_report(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    capture = tmp_path / "capture.jsonl"
    wp = start_watch(sandbox, "--sessions", "1", "--json", "--capture", str(capture))

    async def app() -> App:
        a = await App.open(wp.url, api_key=sandbox.api_key)
        await a.start({"input": {"format": {"encoding": "audio/pcm", "sample_rate": 24000}}})
        await a.stream(chunked(pcm16(speech()), 2400))
        await a.wait("reply.done")
        await a.end()
        return a

    a = run(app())
    rc, out = wp.finish()
    report = assert_valid_report(json.loads(out))
    assert rc == 0, wp.stderr_text
    assert [s["input"] for s in report["sessions"]] == [str(capture)]
    assert problems(report) == [], report["summary"]
    ids = {c["id"] for c in report["checks"]}
    assert {"watch-audio", "watch-close", "watch-relay"} <= ids
    relay = next(c for c in report["checks"] if c["id"] == "watch-relay")
    assert (
        relay["evidence"]["frames_forwarded"]
        == relay["evidence"]["app_frames"] + relay["evidence"]["service_frames"]
    )
    assert relay["evidence"]["analysis_dropped_frames"] == 0
    session_id = a.received[[m["type"] for m in a.received].index("session.ready")]["session_id"]
    assert report["support"]["session_ids"] == [session_id]
    assert report["support"]["closes"][0]["code"] == 1000

    # the app really talked to the service through the relay
    assert sandbox.find("session.end")
    assert any(m["type"] == "reply.audio" for m in a.received)

    # the capture: a header, an open, both directions, a close; audio kept
    lines = capture.read_text(encoding="utf-8").splitlines()
    assert is_header(json.loads(lines[0]))
    records = [decode(json.loads(x)) for x in lines[1:]]
    dirs = {getattr(r, "dir", None) for r in records}
    assert {"app", "service"} <= dirs
    events = [getattr(r, "event", None) for r in records]
    assert events.count("open") == 1 and events.count("close") == 1
    sent_audio = [
        r for r in records if getattr(r, "msg", None) and r.msg.get("type") == "input.audio"
    ]
    assert sent_audio and all("audio" in r.msg for r in sent_audio)
    received = [r.msg for r in records if getattr(r, "dir", None) == "service" and r.msg]
    assert len(received) == len(a.received)

    # the live lines say what happened, and nothing is secret
    assert "session ready" in wp.stderr_text
    for text in (out, wp.stderr_text, capture.read_text(encoding="utf-8")):
        assert sandbox.api_key not in text


def test_summary_audio_keeps_sizes_not_samples(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    capture = tmp_path / "capture.jsonl"
    wp = start_watch(
        sandbox, "--sessions", "1", "--json", "--capture", str(capture), "--audio", "summary"
    )

    async def app() -> None:
        a = await App.open(wp.url, api_key=sandbox.api_key)
        await a.start()
        await a.stream(chunked(pcm16(speech(0.5, 1.2)), 2400))
        await a.wait("reply.done")
        await a.end()

    run(app())
    rc, _ = wp.finish()
    assert rc == 0, wp.stderr_text
    records = [json.loads(x) for x in capture.read_text(encoding="utf-8").splitlines()[1:]]
    audio = [r for r in records if r.get("msg", {}).get("type") in ("input.audio", "reply.audio")]
    assert audio
    for r in audio:
        assert "audio" not in r["msg"] and "data" not in r["msg"]
        assert r["audio"]["valid_base64"] is True and r["audio"]["bytes"] > 0


def test_one_barge_in_is_a_line_not_a_warning(sandbox_factory) -> None:  # type: ignore[no-untyped-def]
    sb = sandbox_factory(reply_s=4.0)
    wp = start_watch(sb, "--sessions", "1", "--json")

    async def app() -> None:
        a = await App.open(wp.url, api_key=sb.api_key)
        await a.start()
        await a.stream(chunked(pcm16(speech(0.8, 1.3)), 2400))
        await a.wait("reply.audio")
        silence = chunked(b"\0\0" * 24000, 2400)
        await a.stream(silence)  # the agent speaks for a second
        # the user cuts in (another voice: the sandbox's voices share one pitch contour)
        await a.stream(chunked(pcm16(resample_poly(speech(0.9, 1.5, seed=3), 10, 11)), 2400))
        await a.wait("reply.done")
        await a.end()

    run(app())
    rc, out = wp.finish()
    report = assert_valid_report(json.loads(out))
    assert "reply interrupted" in wp.stderr_text
    assert rc == 0 and problems(report) == [], [
        (c["id"], c["cause"], c["evidence"]) for c in problems(report)
    ]
