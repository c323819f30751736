"""Does what the user said repeat what the agent just said? (the transcript sign of echo)."""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)
MIN_WORDS = 3
REPEAT_SHARE = 0.6


def words(text: str | None) -> list[str]:
    return [w.lower() for w in _WORD.findall(text or "")]


def join_deltas(deltas: list[str]) -> str:
    """The words of `transcript.agent.delta`s as text (§6.3): greeting deltas carry no
    trailing space ("How", "can"), later replies' do ("We ", "open "); one space between."""
    return " ".join(w for w in (d.strip() for d in deltas) if w)


def repeats(user_text: str | None, agent_text: str | None) -> bool:
    """At least 3 user words, 60 % of them in order inside the agent's recent words."""
    u, a = words(user_text), words(agent_text)
    if len(u) < MIN_WORDS or not a:
        return False
    # longest common subsequence, bounded: user turns are short
    u, a = u[:60], a[-400:]
    prev = [0] * (len(a) + 1)
    for uw in u:
        cur = [0] * (len(a) + 1)
        for j, aw in enumerate(a, 1):
            cur[j] = prev[j - 1] + 1 if uw == aw else max(prev[j], cur[j - 1])
        prev = cur
    return prev[-1] >= REPEAT_SHARE * len(u)
