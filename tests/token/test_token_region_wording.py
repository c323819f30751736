"""The `token` check's fixes name the run's region, say of regions only what is known
(protocol.md open question 1: whether keys work across regions is not documented), and
give one advice on `expires_in_seconds` wherever it appears."""

from __future__ import annotations

import json

from clirun import assert_valid_report, cli_env, run_cli

from doctor import guide
from doctor.net.mint_outcome import mint_outcome


def test_the_no_credentials_fix_names_the_region_of_the_run() -> None:
    proc = run_cli("check", "token", "--skip", "wss", "--region", "eu", "--json", env=cli_env())
    report = assert_valid_report(json.loads(proc.stdout))
    (token,) = [c for c in report["checks"] if c["id"] == "token"]
    assert (token["status"], token["cause"]) == ("skip", "no_credentials")
    steps = " ".join(token["fix"]["steps"])
    assert "This run used the eu region (agents.eu.assemblyai.com)" in steps
    assert "try `--region us`" in steps
    assert "(us)" not in steps and "us region" not in steps


def test_region_is_a_possibility_to_check_not_a_fact() -> None:
    steps = " ".join(guide.fix("token_auth", region="us", other_region="eu").steps)
    assert "keys are per region" not in steps
    assert "Whether a key works in both regions is not documented" in steps
    out = mint_outcome(404, False, None, 60, "Invalid API key", {"detail": "Invalid API key"})
    assert out is not None and out.cause == "unauthorized"
    assert "belongs to another region" not in out.detail
    assert "possibly, made for the other region" in out.detail and "not documented" in out.detail


def test_one_advice_on_the_token_window() -> None:
    auth = " ".join(guide.fix("token_auth").steps)
    lifetime = " ".join(guide.fix("token_lifetime").steps)
    advice = "`expires_in_seconds` of 60 (the low end of the docs' suggested 60-300"
    assert advice in auth and advice in lifetime
    for text in (auth, lifetime):
        assert "between 60 and 300" not in text and "60 or less" not in text
