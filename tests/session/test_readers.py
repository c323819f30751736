"""Readers per shape: vendor artifacts, app JSON array and JSON lines, capture, bad input."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import artifacts as A
import pytest
from synth import normal_session

from doctor.capture.format import Header, encode, frame_from_message
from doctor.result import Status
from doctor.session.analyzer import SessionFindings
from doctor.session_readers.detect import analyze_path


def run(path: Path) -> tuple[list[SessionFindings], list[str]]:
    notes: list[str] = []
    return analyze_path(str(path), notes.append), notes


def by_id(f: SessionFindings) -> dict[str, Any]:
    return {r.id: r for r in f.results}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


def go_array(path: Path, drop_tail: int = 0) -> Path:
    """§7.1: MarshalIndent of {at, event, offset, type}, keys sorted, <>& escaped."""
    rows = []
    for e in normal_session(sent=False).sorted():
        if e.direction != "service":
            continue
        p = dict(e.payload)
        if p["type"] == "reply.audio":
            p["data"] = "<redacted>"
        assert e.recv_t is not None
        rows.append({"at": iso(e.recv_t), "event": p, "offset": "1.2s", "type": p["type"]})
    text = json.dumps(rows, indent=2, sort_keys=True)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e") + "\n"
    path.write_text(text[: len(text) - drop_tail] if drop_tail else text)
    return path


# -- vendor artifacts -------------------------------------------------------------------


def test_artifacts_folder_normal_session_with_field_quirks(tmp_path: Path) -> None:
    audio = A.recording(26.8, [(0.6, 2.3), (7.5, 10.2), (18.2, 20.3)], [(3.8, 5.5)])
    folder = A.write_folder(tmp_path / "s", A.normal_timeline(), audio)
    (f,), notes = run(folder)
    assert f.session_id == A.SID
    assert any("vendor artifacts: metadata, recording, timeline" in n for n in notes)
    res = by_id(f)
    assert [k for k, r in res.items() if r.status in (Status.WARN, Status.FAIL)] == []
    lat = res["session-latency"].evidence
    # from the commit to the audible start, not time_to_first_audio_ms (from creation)
    # the tool turn too: 2.1 s to the tool_result reply's sound, less the tool's 0.8 s
    assert lat["per_turn_s"] == [1.18, 0.9, 1.3]
    assert lat["tool_turns"][0]["tool_wait_s"] == 0.8
    assert res["session-echo"].evidence["audio"]["verdict"] == "no_echo"
    assert f.recording_offset_s is not None


def test_artifacts_echo_in_the_user_channel(tmp_path: Path) -> None:
    spans = [(0.6, 2.3), (7.5, 10.2), (13.6, 15.1), (18.2, 20.3)]
    audio = A.recording(26.8, spans, [(3.8, 5.5)], echo_db=-18.0, delay_s=0.2)
    (f,), _ = run(A.write_folder(tmp_path / "s", A.normal_timeline(), audio))
    echo = by_id(f)["session-echo"]
    assert echo.cause == "echo_loop"
    assert echo.evidence["signals"] == ["audio"]
    assert abs(echo.evidence["audio"]["delay_ms"] - 200) < 5


def test_timeline_pretty_printed_without_config_changes(tmp_path: Path) -> None:
    tl = A.normal_timeline()
    del tl["config_changes"]
    p = tmp_path / "timeline.json"
    p.write_text(json.dumps(tl, indent=2) + "\n")
    (f,), notes = run(p)
    assert any("vendor timeline" in n for n in notes)
    assert by_id(f)["session-billing"].status is Status.PASS


def test_timeline_abrupt_public_reason_is_billing(tmp_path: Path) -> None:
    tl = A.normal_timeline()
    tl["ended"]["public_reason"] = "connection_lost"
    p = tmp_path / "timeline.json"
    p.write_text(json.dumps(tl))
    (f,), _ = run(p)
    assert by_id(f)["session-billing"].cause == "no_session_end"


def test_timeline_tool_call_timed_out(tmp_path: Path) -> None:
    tl = A.normal_timeline()
    tl["turns"][3]["tool_calls"][0]["timed_out"] = True
    p = tmp_path / "timeline.json"
    p.write_text(json.dumps(tl))
    (f,), _ = run(p)
    assert by_id(f)["session-tools"].cause == "tool_result_late"


def test_recording_that_does_not_decode(tmp_path: Path) -> None:
    folder = A.write_folder(tmp_path / "s", A.normal_timeline())
    (folder / "audio.ogg").write_bytes(b"OggS" + b"\x00" * 500)
    (f,), notes = run(folder)
    assert any("the recording does not decode" in n for n in notes)
    assert f.session_id == A.SID


def test_recording_alone(tmp_path: Path) -> None:
    import soundfile as sf

    p = tmp_path / "audio.ogg"
    audio = A.recording(12, [(1, 5), (6, 11)], [(5.2, 5.9)], echo_db=-12)
    sf.write(p, audio, 48000, format="OGG", subtype="OPUS")
    (f,), notes = run(p)
    assert any("no timeline" in n for n in notes)
    assert list(by_id(f)) == ["session-echo"]
    assert by_id(f)["session-echo"].cause == "echo_loop"


# -- app logs ---------------------------------------------------------------------------


def test_go_json_array(tmp_path: Path) -> None:
    (f,), notes = run(go_array(tmp_path / "log.json"))
    assert any("JSON array of events (event under 'event', receive time 'at'" in n for n in notes)
    res = by_id(f)
    assert f.session_id == "sess_" + "a" * 32
    assert res["session-log"].cause == "log_incomplete"
    assert res["session-billing"].status is Status.PASS  # session.ended arrived
    # audio redacted: the audible start is estimated from the word timings (§6.3)
    lat = res["session-latency"]
    assert lat.status is Status.PASS
    assert lat.evidence["measured_to"].startswith("estimated audible start")
    assert abs(lat.evidence["p50_s"] - 0.8) < 0.3


def test_truncated_json_array_keeps_what_was_read(tmp_path: Path) -> None:
    (f,), notes = run(go_array(tmp_path / "log.json", drop_tail=5000))
    assert any("truncated" in n for n in notes)
    assert f.segment.replies


def test_json_array_with_a_junk_element(tmp_path: Path) -> None:
    p = go_array(tmp_path / "log.json")
    text = p.read_text()
    i = text.index("\n  {", 2000)
    p.write_text(text[:i] + "\n  {junk!!,\n" + text[i:])
    (f,), notes = run(p)
    assert any("not JSON" in n and "skipped" in n for n in notes)
    assert len(f.segment.replies) == 5


@pytest.mark.parametrize("when", ["iso", "epoch_s", "epoch_ms"])
@pytest.mark.parametrize("nested", [True, False])
def test_json_lines_shapes(tmp_path: Path, when: str, nested: bool) -> None:
    lines = []
    for e in normal_session().sorted():
        if e.direction == "meta":
            continue
        assert e.recv_t is not None
        t: Any = {"iso": iso(e.recv_t), "epoch_s": e.recv_t, "epoch_ms": int(e.recv_t * 1000)}
        entry: dict[str, Any] = {
            "received_at": t[when],
            "direction": "sent" if e.direction == "app" else "received",
        }
        if nested:
            entry["event"] = e.payload
        else:
            entry.update(e.payload)
        lines.append(json.dumps(entry))
    p = tmp_path / "log.jsonl"
    p.write_text("\n".join(lines) + "\n")
    (f,), notes = run(p)
    assert any("receive time 'received_at'" in n and "direction 'direction'" in n for n in notes)
    res = by_id(f)
    assert res["session-billing"].evidence.get("grace_s_may_be_billed") is None
    assert res["session-tools"].status is Status.PASS
    assert f.segment.has_recv_time


def test_json_lines_with_bad_lines_and_a_huge_line(tmp_path: Path, monkeypatch: Any) -> None:
    from doctor.session_readers import jsonstream

    monkeypatch.setattr(jsonstream, "MAX_VALUE_CHARS", 4096)
    good = [json.dumps(e.payload) for e in normal_session().sorted() if e.direction != "meta"]
    batch = json.dumps([json.loads(x) for x in good[10:13]])  # a line holding a batch
    lines = [*good[:10], "{truncated", "x" * 20000, "", "[1,2]", batch, *good[13:]]
    p = tmp_path / "log.jsonl"
    p.write_text("\n".join(lines))
    (f,), notes = run(p)
    assert any("line 11: not JSON" in n for n in notes)
    assert any("line 12: 20001 bytes long; skipped" in n for n in notes)
    assert any("2 entries are not Voice Agent events" in n for n in notes)  # 1 and 2
    assert len(f.segment.replies) == 5


def test_not_a_session_log(tmp_path: Path) -> None:
    p = tmp_path / "events.jsonl"
    rows = [
        {"at": "2027-01-15T08:00:00Z", "kind": "http", "url": "https://x", "ms": 12, "ok": True}
    ] * 300
    p.write_text("\n".join(json.dumps(r) for r in rows))
    found, notes = run(p)
    assert found == []
    assert any("not a session log" in n and "kind" in n for n in notes)


def test_binary_junk_and_empty_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 40)
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    assert run(junk) == ([], [f"{junk}: binary data, not a session log"])
    assert run(empty) == ([], [f"{empty}: empty file"])
    assert run(tmp_path / "missing")[1] == [f"{tmp_path / 'missing'}: no such file or folder"]


# -- capture ----------------------------------------------------------------------------


def write_capture(path: Path, audio: str = "keep", extra_lines: list[str] | None = None) -> Path:
    s = normal_session()
    header = Header(
        started_wall=s.events[0].t or 0.0,
        started_mono=0.0,
        audio="keep" if audio == "keep" else "summary",
        upstream="wss://agents.assemblyai.com/v1/ws",
    )
    out = [encode(header)]
    from doctor.capture.format import ConnEvent

    t0 = header.started_wall
    for e in s.sorted():
        wall = e.recv_t if e.recv_t is not None else e.t or t0
        if e.direction == "meta":
            kind = "open" if e.type == "meta.open" else "close"
            out.append(encode(ConnEvent(wall - t0, wall, 1, kind, dict(e.payload))))  # type: ignore[arg-type]
            continue
        fr = frame_from_message(
            wall - t0,
            wall,
            1,
            e.direction,
            json.dumps(e.payload),  # type: ignore[arg-type]
            audio,
        )  # type: ignore[arg-type]
        out.append(encode(fr))
    out[5:5] = extra_lines or []
    path.write_text("\n".join(out) + "\n")
    return path


@pytest.mark.parametrize("audio", ["keep", "summary"])
def test_capture_normal_session(tmp_path: Path, audio: str) -> None:
    (f,), notes = run(write_capture(tmp_path / "c.jsonl", audio))
    assert any(f"capture v1 (audio {audio})" in n for n in notes)
    res = by_id(f)
    assert [k for k, r in res.items() if r.status in (Status.WARN, Status.FAIL)] == []
    assert res["session-log"].status is Status.PASS


def test_capture_with_bad_records(tmp_path: Path) -> None:
    bad = ['{"t": 1}', "not json", '{"t":1,"wall":2,"conn":1,"dir":"sideways"}']
    (f,), notes = run(write_capture(tmp_path / "c.jsonl", extra_lines=bad))
    assert sum("skipped" in n for n in notes) == 3
    assert f.session_id == "sess_" + "a" * 32


def test_capture_from_a_newer_version(tmp_path: Path) -> None:
    p = tmp_path / "c.jsonl"
    p.write_text(json.dumps({"capture": "agent-doctor", "version": 99}) + "\n")
    found, notes = run(p)
    assert found == []
    assert any("upgrade agent-doctor" in n for n in notes)


def test_mono_wav_recording_is_read_but_not_echo_checked(tmp_path: Path) -> None:
    import soundfile as sf

    p = tmp_path / "rec.wav"
    sf.write(p, A.recording(5, [(1, 3)], [])[:, 1], 44100)
    (f,), notes = run(p)
    assert any("mono recording: no echo check" in n for n in notes)
    assert f.recording is not None and abs(f.recording.duration_s - 5 * 48000 / 44100) < 0.01


def test_stereo_24k_recording_finds_agent_onsets(tmp_path: Path) -> None:
    import soundfile as sf

    p = tmp_path / "rec.ogg"
    audio = A.recording(10, [(1.0, 3.0), (5.0, 8.0)], [], rate=24000)
    sf.write(p, audio, 24000, format="OGG", subtype="OPUS")
    (f,), _ = run(p)
    onsets = f.recording.agent_onsets_s
    assert len(onsets) == 2
    assert abs(onsets[0] - 1.0) < 0.1 and abs(onsets[1] - 5.0) < 0.1


def test_irregular_timeline_shapes_are_not_problems(tmp_path: Path) -> None:
    """§3.6: silent replies in a row, an overlap, one very early cut, a call-only turn."""
    tl = A.normal_timeline()
    call = dict(
        tl["turns"][3]["tool_calls"][0],
        call_id="chatcmpl-tool-fedcba9876543210",
        dispatched_at_ms=A.START_MS + 30500,
        result_received_at_ms=A.START_MS + 30900,
    )
    tl["turns"] += [
        A.turn(A.rid(10), user="so", us=24000, ue=24300),
        A.turn(A.rid(11), user="so I", us=24400, ue=24700),
        A.turn(
            A.rid(12),
            user="so I was",
            us=24800,
            ue=25100,
            text="Right,",
            audible=25000,
            end=26000,
            ttfa=800,
        ),
        A.turn(
            A.rid(13),
            status="interrupted",
            user="Can you",
            us=27000,
            ue=28000,
            text="Sure",
            audible=28900,
            end=29400,
            ttfa=700,
        ),
        A.turn(A.rid(14), trigger="tool_result", tool_calls=[call]),
    ]
    tl["ended"]["duration_seconds"] = 33.5
    p = tmp_path / "timeline.json"
    p.write_text(json.dumps(tl))
    (f,), _ = run(p)
    res = by_id(f)
    assert {k: r.summary for k, r in res.items() if r.status in (Status.WARN, Status.FAIL)} == {}
    assert res["session-latency"].evidence["overlapping"] == 1


def test_timeline_cuts_before_any_sound_are_turn_detection(tmp_path: Path) -> None:
    """Field #4b: with the user still talking, replies cut before they made a sound."""
    tl = A.normal_timeline()
    extra = []
    for i in range(3):
        b = 24000 + i * 4000
        extra.append(
            A.turn(
                A.rid(20 + i),
                status="interrupted",
                user="and then I",
                us=b,
                ue=b + 800,
                text="",
                end=b + 1300,
            )
        )
        extra.append(
            A.turn(
                A.rid(30 + i),
                user="went to the shop",
                us=b + 1303,
                ue=b + 2500,
                text="I see.",
                audible=b + 3300,
                end=b + 3800,
                ttfa=800,
            )
        )
    tl["turns"] += extra
    tl["ended"]["duration_seconds"] = 40.0
    p = tmp_path / "timeline.json"
    p.write_text(json.dumps(tl))
    (f,), _ = run(p)
    res = by_id(f)
    assert res["session-turn-detection"].cause == "eager_turn_detection"
    assert len(res["session-turn-detection"].evidence["cuts"]) == 3
    assert res["session-echo"].status is Status.PASS
    assert res["session-interruptions"].status is Status.PASS
