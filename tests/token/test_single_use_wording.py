"""What agent-doctor says about single use must hold for the docs (single use) and for
the field (the live service accepted a token more than once within its window,
field-facts §1): no output states single use as a fact."""

from __future__ import annotations

import re

from clirun import run_cli

from doctor import guide
from doctor.checks.resume import plan_for
from doctor.context import Context, Credential
from doctor.result import Result

AS_A_FACT = re.compile(r"(token is single use|single use:|tokens are single use)", re.I)


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_token_option_help_says_what_holds_both_ways() -> None:
    text = flat(run_cli("check", "--help").stdout)
    token_help = text.split("--token TEXT", 1)[1].split("--proxy", 1)[0]
    assert not AS_A_FACT.search(token_help), token_help
    assert "The docs call tokens single use" in token_help
    assert "accepted reuse" in token_help and "may use it up" in token_help


def test_resume_with_a_token_alone_says_why_it_cannot_run() -> None:
    ctx = Context.build(token=Credential("token", "t" * 40, "option --token"))
    result = plan_for(ctx)
    assert isinstance(result, Result)
    assert (result.status.value, result.cause) == ("skip", "needs_api_key")
    assert not AS_A_FACT.search(result.summary), result.summary
    assert "a resume needs a second connection" in result.summary
    assert "a run with --token alone cannot mint one" in result.summary
    assert "--api-key" in result.summary


def test_the_rate_limit_fix_does_not_call_tokens_single_use() -> None:
    steps = " ".join(guide.fix("rate_limit", detail="the 429 has no Retry-After header").steps)
    assert not AS_A_FACT.search(steps), steps
    assert "a stock of tokens does not help" in steps
    assert "`expires_in_seconds` window" in steps and "the docs allow one connection" in steps
