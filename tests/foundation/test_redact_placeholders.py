"""A fix's placeholder credentials survive the report's scrubbing; real ones never do."""

from __future__ import annotations

from doctor import guide
from doctor.report.redact import Redactor


def test_the_proxy_fix_placeholder_survives_the_scrub() -> None:
    """guide's proxy fix said `http://****@PROXY:PORT` once scrubbed: unreadable."""
    steps = " ".join(guide.fix("proxy").steps)
    assert "http://USER:PASSWORD@PROXY:PORT" in steps
    assert "http://USER:PASSWORD@PROXY:PORT" in Redactor().scrub(steps)


def test_real_userinfo_is_still_masked_even_in_capitals() -> None:
    r = Redactor()
    for url in (
        "http://bob:hunter2@proxy:3128",
        "http://USER:HUNTER2@proxy:3128",
        "http://ADMIN:PASSWORD@proxy:3128",
        "socks5://USER:password@proxy:1080",
        "http://alice@proxy:3128",
    ):
        out = r.scrub(f"via {url} here")
        assert "****@proxy:" in out, out
        assert url.split("//")[1].split("@")[0] not in out
