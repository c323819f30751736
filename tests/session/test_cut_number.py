"""A JSON array cut inside a number's exponent or fraction ("1.0000000000000002e+" of
1e16) is truncated there: the decoder took "1.0000000000000002" as a whole element (the
hypothesis test of truncated arrays found it, now and then, in a suite run)."""

from __future__ import annotations

import io
import json

import pytest

from doctor.session_readers import jsonstream


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_every_cut_of_an_array_of_numbers_yields_a_true_prefix_and_one_note(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK_CHARS", chunk)
    values = [1.0000000000000002e16, None, -12345678901234567890, 1.5e-300, 0.25, []]
    text = json.dumps(values, indent=2)
    for cut in range(1, len(text)):
        notes: list[str] = []
        got = [v for _, v in jsonstream.array_elements(io.StringIO(text[:cut]), notes.append)]
        assert got == values[: len(got)], (text[:cut], got)
        assert len(notes) == 1 and "truncated" in notes[0], (text[:cut], notes)


def test_the_whole_array_reads_without_a_note() -> None:
    values = [1.0000000000000002e16, -1e-5, 3]
    notes: list[str] = []
    text = json.dumps(values)
    assert [v for _, v in jsonstream.array_elements(io.StringIO(text), notes.append)] == values
    assert notes == []
