"""The transcript sign of echo counts every user transcript that repeats the agent's words
just spoken, not only those that cut a reply (review r15 #7)."""

from __future__ import annotations

from synth import Script

from doctor.session import Source, analyze_events

SAID = "I can book a table for two at seven tonight."


def echo(s: Script) -> object:
    (f,) = analyze_events(s.sorted(), Source(shape="synthetic"))
    return next(r for r in f.results if r.id == "session-echo")


def test_repeats_after_completed_replies_are_the_transcript_sign() -> None:
    s = Script().open()
    for _ in range(2):
        s.reply(SAID)  # completed, not cut
        s.user("a table for two at seven")  # starts 0.6 s after reply.done
    s.end()
    r = echo(s)
    assert "transcript" in r.evidence["signals"]  # type: ignore[attr-defined]
    assert len(r.evidence["transcript_repeats"]) == 2  # type: ignore[attr-defined]


def test_a_later_answer_reusing_the_agents_words_is_not_a_repeat() -> None:
    s = Script().open()
    for _ in range(2):
        s.reply(SAID)
        s.t += 3.0  # the user thinks, then confirms in the agent's words
        s.user("a table for two at seven")
    s.end()
    assert echo(s).evidence["signals"] == []  # type: ignore[attr-defined]
