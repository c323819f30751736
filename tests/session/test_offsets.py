"""Go `offset` durations of app logs (session-formats §7.1): the parser, property-tested
against a port of Go's `Duration.String`, and its use where an entry has no `at`."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synth import T0, Script, normal_session

from doctor.result import Status
from doctor.session.analyzer import SessionFindings
from doctor.session_readers.applog import OFFSET_KEY
from doctor.session_readers.detect import analyze_path
from doctor.session_readers.offsets import parse_go_duration, with_offsets

MAX_NS = (1 << 63) - 1


def go_string(ns: int) -> str:
    """Go's `time.Duration.String` (src/time/time.go), for the round trip."""
    if ns == 0:
        return "0s"
    u = abs(ns)

    def frac(v: int, prec: int) -> str:
        whole, rem = divmod(v, 10**prec)
        digits = f"{rem:0{prec}d}".rstrip("0")
        return f"{whole}" + (f".{digits}" if digits else "")

    if u < 1_000_000_000:
        if u < 1_000:
            out = f"{u}ns"
        elif u < 1_000_000:
            out = frac(u, 3) + "\u00b5s"
        else:
            out = frac(u, 6) + "ms"
    else:
        secs, rem = divmod(u, 1_000_000_000)
        digits = f"{rem:09d}".rstrip("0")
        out = f"{secs % 60}" + (f".{digits}" if digits else "") + "s"
        mins = secs // 60
        if mins:
            out = f"{mins % 60}m" + out
            if mins // 60:
                out = f"{mins // 60}h" + out
    return "-" + out if ns < 0 else out


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("4.2s", 4.2),
        ("12.407s", 12.407),
        ("1.466s", 1.466),
        ("850ms", 0.85),
        ("350ms", 0.35),
        ("1m5.25s", 65.25),
        ("1m2.5s", 62.5),
        ("1h0m2s", 3602.0),
        ("1h0m0.25s", 3600.25),
        ("2.5\u00b5s", 2.5e-6),
        ("2.5\u03bcs", 2.5e-6),
        ("2.5us", 2.5e-6),
        ("300ns", 3e-7),
        ("0", 0.0),
        ("0s", 0.0),
        ("-1.5s", -1.5),
        ("+2m", 120.0),
        (".5s", 0.5),
        ("5.s", 5.0),
        ("1h1h", 7200.0),
    ],
)
def test_the_go_grammar(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds, abs=1e-12)


@pytest.mark.parametrize(
    "text",
    ["", "s", ".s", "-", "1", "1.5", "1.5sec", "1x", "1h-2m", " 1s", "1s ", "1e3s", "..5s", "0x"],
)
def test_what_go_refuses_is_none(text: str) -> None:
    assert parse_go_duration(text) is None


def test_beyond_int64_nanoseconds_is_none_as_in_go() -> None:
    assert parse_go_duration("2562047h47m16.854775807s") == MAX_NS / 1e9
    assert parse_go_duration("2562048h") is None
    assert parse_go_duration(12.5) is None and parse_go_duration(None) is None


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=-MAX_NS, max_value=MAX_NS))
def test_round_trip_of_what_go_prints(ns: int) -> None:
    assert parse_go_duration(go_string(ns)) == ns / 1e9


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**15))
def test_micro_sign_greek_mu_and_us_agree(ns: int) -> None:
    text = go_string(ns)
    values = {parse_go_duration(text.replace("\u00b5s", u)) for u in ("\u00b5s", "\u03bcs", "us")}
    assert values == {ns / 1e9}


parts = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10**6),
        st.none() | st.text(alphabet="0123456789", min_size=1, max_size=9),
        st.sampled_from(["ns", "us", "\u00b5s", "ms", "s", "m", "h"]),
    ),
    min_size=1,
    max_size=5,
)
UNIT_NS = {"ns": 1, "us": 10**3, "\u00b5s": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9}
UNIT_NS["h"] = 3600 * 10**9


@settings(max_examples=300, deadline=None)
@given(parts)
def test_components_add_up(ps: list[tuple[int, str | None, str]]) -> None:
    text = "".join(f"{w}{'.' + f if f else ''}{u}" for w, f, u in ps)
    # Go adds each component truncated to whole nanoseconds
    exact = sum(
        int((Fraction(w) + (Fraction(int(f), 10 ** len(f)) if f else 0)) * UNIT_NS[u])
        for w, f, u in ps
    )
    assert parse_go_duration(text) == (exact / 1e9 if exact <= MAX_NS else None)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_any_text_is_a_number_or_none(text: str) -> None:
    got = parse_go_duration(text)
    assert got is None or isinstance(got, float)


# -- offsets where `at` is absent ------------------------------------------------------


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat().replace("+00:00", "Z")


def offset_of(t: float, start: float) -> str:
    """The app's offset as the Go logger writes it: rounded to ms (§7.1)."""
    return go_string(round((t - start) * 1000) * 1_000_000)


APP_START = T0 - 1.2  # the app starts ~1.2 s before the session (§7.1)


def log_lines(s: Script, path: Path, keep_at: str = "first") -> Path:
    """JSON lines, received and sent, `offset` on every entry; `at` on the first entry,
    every entry or none."""
    rows = []
    for e in s.sorted():
        if e.direction == "meta":
            continue
        t = e.recv_t if e.recv_t is not None else e.t
        assert t is not None
        row: dict[str, Any] = {
            "direction": "sent" if e.direction == "app" else "received",
            "event": dict(e.payload),
            "offset": offset_of(t, APP_START),
        }
        if keep_at == "all" or (keep_at == "first" and not rows):
            row["at"] = iso(t)
        rows.append(row)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(path: Path) -> tuple[SessionFindings, list[str]]:
    notes: list[str] = []
    (f,) = analyze_path(str(path), notes.append)
    return f, notes


def burst_session() -> Script:
    s = Script().open()
    s.reply("Hello!", lead_in=0.3)
    s.mic(12.0, chunk_s=0.05, pace=8.0)  # 12 s of audio sent in 1.5 s
    s.t += 13
    s.end()
    return s


def test_offsets_time_the_apps_audio_where_at_is_only_on_the_first_entry(tmp_path: Path) -> None:
    f, notes = run(log_lines(burst_session(), tmp_path / "a.jsonl"))
    audio = {r.id: r for r in f.results}["session-audio"]
    assert (audio.status, audio.cause) == (Status.WARN, "audio_pacing")
    assert audio.evidence["wall_s"] == pytest.approx(1.5, abs=0.06)
    assert "receive time 'at'" in f.source.shape
    assert not any("relative" in n for n in notes)


def test_offsets_give_the_same_findings_as_at(tmp_path: Path) -> None:
    s = normal_session()
    with_at, _ = run(log_lines(s, tmp_path / "at.jsonl", keep_at="all"))
    only_offset, notes = run(log_lines(s, tmp_path / "off.jsonl", keep_at="none"))
    assert {r.id: (r.status, r.cause) for r in only_offset.results} == {
        r.id: (r.status, r.cause) for r in with_at.results
    }
    assert "receive time from 'offset' (Go duration)" in only_offset.source.shape
    # anchored on the service's own timestamps: the start time is known, within tens of ms
    assert any("anchored on the service's timestamps" in n for n in notes)
    a = with_at.summary()["started_at"]
    b = only_offset.summary()["started_at"]
    assert a is not None and b is not None
    gap = datetime.fromisoformat(a.replace("Z", "+00:00")) - datetime.fromisoformat(
        b.replace("Z", "+00:00")
    )
    assert abs(gap.total_seconds()) <= 0.1  # the synthetic log's skew is 50 ms
    assert only_offset.segment.has_recv_time


def test_offsets_without_any_anchor_stay_relative(tmp_path: Path) -> None:
    s = burst_session()
    for e in s.events:  # an app that strips the service's timestamps
        e.payload.pop("timestamp", None)
    f, notes = run(log_lines(s, tmp_path / "rel.jsonl", keep_at="none"))
    assert any("times are relative to the app's start" in n for n in notes)
    assert f.summary()["started_at"] is None  # no wall clock: not 1970
    audio = {r.id: r for r in f.results}["session-audio"]
    assert audio.cause == "audio_pacing"  # durations still hold


def test_a_bad_offset_is_no_time_not_an_error(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    rows = [
        {"offset": "soon", "event": {"type": "session.ready", "session_id": "sess_" + "1" * 32}},
        {"offset": 12, "event": {"type": "session.ended"}},
    ]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    f, notes = run(p)
    assert f.session_id == "sess_" + "1" * 32
    assert f.segment.first_t is None
    assert all("Traceback" not in n for n in notes)


# -- `at` on a later entry than the first offset ----------------------------------------

SID = "sess_" + "3" * 32


def derive(rows: list[Any]) -> tuple[list[tuple[int, Any]], list[str]]:
    notes: list[str] = []
    return list(with_offsets(iter(enumerate(rows, 1)), notes.append)), notes


def test_a_later_at_anchors_entries_before_it_not_the_service_timestamps() -> None:
    rows = [
        {
            "offset": "1s",
            "event": {"type": "session.ready", "session_id": SID, "timestamp": 1800000000.0},
        },
        {"offset": "1.5s", "at": iso(1799999998.55), "event": {"type": "session.ended"}},
    ]
    out, notes = derive(rows)
    assert [line for line, _ in out] == [1, 2]
    assert out[0][1][OFFSET_KEY] == pytest.approx(1799999998.05, abs=1e-6)
    assert OFFSET_KEY not in out[1][1]  # its own `at` is its receive time
    assert not any("anchored on the service's timestamps" in n for n in notes)


def test_entries_without_offset_before_the_first_at_keep_their_place() -> None:
    rows = [
        {"offset": "1s", "event": {"type": "session.ready", "timestamp": 1800000000.0}},
        {"note": "a line of the app's own, no offset"},
        {"offset": "2s", "event": {"type": "reply.started", "timestamp": 1800000001.0}},
        {"offset": "3s", "at": iso(1700000003.0), "event": {"type": "session.ended"}},
    ]
    out, notes = derive(rows)
    assert [line for line, _ in out] == [1, 2, 3, 4]
    assert out[0][1][OFFSET_KEY] == pytest.approx(1700000001.0, abs=1e-6)
    assert out[2][1][OFFSET_KEY] == pytest.approx(1700000002.0, abs=1e-6)
    assert not notes


def test_without_any_at_the_service_timestamps_still_anchor_at_the_end() -> None:
    rows = [
        {"offset": "1s", "event": {"type": "session.ready", "timestamp": 1800000000.0}},
        {"offset": "2s", "event": {"type": "session.ended"}},
    ]
    out, notes = derive(rows)
    assert [o[OFFSET_KEY] for _, o in out] == [1800000000.0, 1800000001.0]
    assert any("anchored on the service's timestamps" in n for n in notes)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5000), st.booleans(), st.booleans(), st.booleans()),
        min_size=1,
        max_size=30,
    ),
    st.floats(-5, 5),
    st.integers(0, 29),
)
def test_one_clock_per_file_whenever_an_at_is_anywhere(
    steps: list[tuple[int, bool, bool, bool]], skew: float, first_at: int
) -> None:
    """Entries (offset step ms, has `at`, has a service timestamp, a line without offset
    after it); at least one carries `at`: every derived time is on the `at` clock, so the
    receive times never run backwards, and the service-timestamp note is never said."""
    start = 1_700_000_000.0
    rows: list[Any] = []
    want: dict[int, float] = {}
    off_ms = 0
    for i, (step, has_at, has_ts, extra) in enumerate(steps):
        off_ms += step
        t = start + off_ms / 1000
        ev: dict[str, Any] = {"type": "reply.started"}
        if has_ts:
            ev["timestamp"] = t + skew
        row: dict[str, Any] = {"offset": go_string(off_ms * 1_000_000), "event": ev}
        if has_at or i == min(first_at, len(steps) - 1):
            row["at"] = iso(t)
        else:
            want[len(rows) + 1] = t
        rows.append(row)
        if extra:
            rows.append({"note": "no offset"})
    out, notes = derive(rows)
    assert [line for line, _ in out] == list(range(1, len(rows) + 1))
    for line, obj in out:
        if line in want:
            assert obj[OFFSET_KEY] == pytest.approx(want[line], abs=1e-3)
    assert not any("anchored on the service's timestamps" in n for n in notes)
