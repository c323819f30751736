"""A read-back confirmation is no echo: the user repeating the order number they gave,
after the agent read it back, says the user's own words (w_confirm.jsonl of the review).
The agent's own words coming back are still echo, read-backs included."""

from __future__ import annotations

from synth import Script

from doctor.session import Source, analyze_events


def echo(s: Script) -> object:
    (f,) = analyze_events(s.sorted(), Source(shape="synthetic"))
    return next(r for r in f.results if r.id == "session-echo")


def test_confirming_a_read_back_is_not_echo() -> None:
    s = Script().open()
    s.reply("Hi! What is your order number?")
    s.user("It is 4 5 7 2 9")
    s.reply("Thanks. Your order number is 4 5 7 2 9, is that right?")
    s.user("Yes, 4 5 7 2 9")  # starts 0.6 s after reply.done, as the echo tests' repeats
    s.reply("And your phone number is 555 123 4567?")
    s.user("Yes 555 123 4567")  # the agent's words: one repeat, which alone is no sign
    s.reply("Great, your delivery is on Friday the 12th.")
    s.user("Friday the 12th, perfect, thank you")
    s.end()
    r = echo(s)
    assert r.evidence["signals"] == [], r.summary  # type: ignore[attr-defined]


def test_the_echo_of_a_read_back_is_still_echo() -> None:
    s = Script().open()
    s.reply("Hi! What is your order number?")
    s.user("It is 4 5 7 2 9")
    for _ in range(2):
        s.reply("Thanks. Your order number is 4 5 7 2 9, is that right?")
        s.user("your order number is 4 5 7 2 9")  # the agent's words come back
    s.end()
    r = echo(s)
    assert "transcript" in r.evidence["signals"], r.summary  # type: ignore[attr-defined]
    assert len(r.evidence["transcript_repeats"]) == 2  # type: ignore[attr-defined]


def test_words_the_user_said_once_do_not_hide_a_later_echo() -> None:
    """Only numbers the user introduced are exempt: with every word exempt, a user who
    once asked "is there anything I can do today to get help" hid three echoes of "Is
    there anything else I can help you with today?" (a reviewer's repro)."""
    s = Script().open()
    s.reply("Hi!")
    s.user("Hi, is there anything I can do today to get help with my bill?")
    for _ in range(3):
        s.reply("Is there anything else I can help you with today?")
        s.user("Is there anything else I can help you with today?")
    s.end()
    r = echo(s)
    assert "transcript" in r.evidence["signals"], r.summary  # type: ignore[attr-defined]
