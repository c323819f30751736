"""Receive times in epoch s, ms, µs or ns (numbers or numeric strings) are told apart by
magnitude; a time the reader cannot read leaves a note instead of vanishing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from doctor.session.events import server_time
from doctor.session_readers.applog import parse_time
from doctor.session_readers.detect import analyze_path

T = 1800000000.25


@pytest.mark.parametrize(
    "value",
    [T, T * 1e3, int(T * 1e6), int(T * 1e9), f"{T:.3f}", str(int(T * 1e6)), str(int(T * 1e9))],
)
def test_every_epoch_unit_reads_as_the_same_second(value: object) -> None:
    got = parse_time(value)
    assert got is not None and abs(got - T) < 1e-3, (value, got)


def test_the_service_timestamp_in_us_or_ns_is_scaled_too() -> None:
    for value in (T * 1e6, T * 1e9):
        got = server_time({"timestamp": value})
        assert got is not None and abs(got - T) < 1e-3


def _log(tmp_path: Path, stamp: Callable[[float], object]) -> Path:
    t0 = 1800000000.0
    rows: list[tuple[float, str, dict[str, object]]] = [
        (t0 + 0.01, "sent", {"type": "session.update", "session": {}}),
        (t0 + 0.4, "received", {"type": "session.ready", "session_id": "sess_" + "5" * 32}),
    ]
    audio = "AAAA" * 800  # 2400 bytes: 50 ms of PCM16 at 24 kHz
    rows += [
        (t0 + 0.5 + i * 0.05, "sent", {"type": "input.audio", "audio": audio}) for i in range(60)
    ]
    rows.append((t0 + 3.6, "sent", {"type": "session.end"}))
    rows.append((t0 + 3.9, "received", {"type": "session.ended"}))
    path = tmp_path / "log.jsonl"
    path.write_text(
        "".join(
            json.dumps({"received_at": stamp(t), "direction": d, "event": m}) + "\n"
            for t, d, m in rows
        )
    )
    return path


@pytest.mark.parametrize("unit", [1e6, 1e9])
def test_a_log_in_us_or_ns_has_its_real_duration(tmp_path: Path, unit: float) -> None:
    (f,) = analyze_path(str(_log(tmp_path, lambda t: int(t * unit))), lambda _l: None)
    summary = f.summary()
    assert summary["duration_s"] is not None and 3.0 < summary["duration_s"] < 4.5, summary
    assert f.segment.audio.max_gap_s < 0.1  # 50 ms chunks, not a "stopped sending" gap
    audio = next(r for r in f.results if r.id == "session-audio")
    assert audio.cause != "audio_pacing", audio.summary


def test_an_unreadable_receive_time_is_noted(tmp_path: Path) -> None:
    notes: list[str] = []
    analyze_path(str(_log(tmp_path, lambda t: "yesterday, around noon")), notes.append)
    assert any("received_at 'yesterday, around noon'" in n and "not a time" in n for n in notes), (
        notes
    )
