"""Credentials pass through the relay and nowhere else: neither the API key in the header
nor a token in `?token=` (nor one minted through the relay) appears in the live lines,
the capture or the report."""

from __future__ import annotations

import json
from pathlib import Path

from watchparts import App, chunked, mint, pcm16, run, speech, start_watch

from doctor.report.redact import mask
from doctor.sandbox.threaded import ThreadedSandbox


def test_token_and_key_never_written(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    capture = tmp_path / "capture.jsonl"
    report_file = tmp_path / "report.json"
    wp = start_watch(
        sandbox,
        "--sessions",
        "2",
        "--json",
        "--capture",
        str(capture),
        "--report",
        str(report_file),
    )
    tokens: list[str] = []

    async def apps() -> None:
        token = await mint(wp, sandbox.api_key)  # the token face, with the key in the header
        tokens.append(token)
        a = await App.open(wp.url, token=token)  # the browser way: ?token=
        await a.start()
        await a.stream(chunked(pcm16(speech(0.5, 1.2)), 2400))
        await a.end()
        b = await App.open(wp.url, api_key=sandbox.api_key)  # the server way: the header
        await b.start()
        await b.end()

    run(apps())
    rc, out = wp.finish()
    assert rc == 0, wp.stderr_text
    secrets = [sandbox.api_key, tokens[0]]
    texts = {
        "stdout": out,
        "stderr": wp.stderr_text,
        "capture": capture.read_text(encoding="utf-8"),
        "report": report_file.read_text(encoding="utf-8"),
    }
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a credential in the {where}"
            assert mask(secret) not in text or where != "capture"
    records = [json.loads(x) for x in texts["capture"].splitlines()[1:]]
    opens = [r for r in records if r.get("event") == "open"]
    assert [(o["auth"], o["token_seq"]) for o in opens] == [("query", 1), ("header", None)]
    assert all("token" not in o.get("path", "") for o in opens)
    assert set(json.loads(out)["redactions"]) >= {"api_key", "token"}
