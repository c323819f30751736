"""Checks with known behaviour, loaded into the real CLI through AGENT_DOCTOR_PLUGINS.

They are `in_all=False`, so only `agent-doctor check ID` runs them.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from doctor import guide
from doctor.context import Context
from doctor.registry import check
from doctor.result import Result, Status, passed, problem
from doctor.runner import run_blocking


@check("fake-pass", "Always passes", in_all=False)
async def fake_pass(ctx: Context) -> Result:
    return passed("fine", {"value_ms": 1})


@check("fake-warn", "Always warns", in_all=False)
async def fake_warn(ctx: Context) -> Result:
    return problem(Status.WARN, "low_level", "a warning", {}, guide.fix("audio_level"))


@check("fake-fail", "Always fails", in_all=False)
async def fake_fail(ctx: Context) -> Result:
    return problem(Status.FAIL, "timeout", "a failure", {}, guide.fix("firewall"))


@check("fake-crash", "Raises", in_all=False)
async def fake_crash(ctx: Context) -> Result:
    raise RuntimeError("boom")


@check("fake-hang", "Hangs in a thread", in_all=False, timeout=0.3)
async def fake_hang(ctx: Context) -> Result:
    await run_blocking(threading.Event().wait)
    return passed("unreachable")


@check("fake-after-fail", "Needs fake-fail", needs=("fake-fail",), in_all=False)
async def fake_after_fail(ctx: Context) -> Result:
    return passed("should have been skipped")


@check("fake-leak", "Tries every way to leak the credentials", in_all=False)
async def fake_leak(ctx: Context) -> Result:
    key = ctx.api_key.value if ctx.api_key else "none"
    token = ctx.token.value if ctx.token else "none"
    logging.getLogger("doctor.test").warning("logging the key %s and token %s", key, token)
    await asyncio.sleep(0)
    raise ValueError(f"server said: bad key {key!r} in Authorization: Bearer {key}, token={token}")


@check("fake-leak-evidence", "Puts the key in evidence and summary", in_all=False)
async def fake_leak_evidence(ctx: Context) -> Result:
    key = ctx.api_key.value if ctx.api_key else "none"
    return problem(
        Status.FAIL,
        "unauthorized",
        f"key {key} refused",
        {"header": f"Bearer {key}", "url": f"wss://h/v1/ws?token={key}"},
        guide.fix("token_auth", detail=f"key {key}"),
    )
