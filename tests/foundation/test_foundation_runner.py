"""Runner semantics: concurrency, timeouts, crashes as results, prerequisites, order."""

from __future__ import annotations

import asyncio
import threading

from doctor.context import Context
from doctor.registry import Registry
from doctor.result import Result, Status, passed, problem
from doctor.runner import run_blocking, run_checks


def run(reg: Registry, ids: list[str] | None = None) -> list[Result]:
    return asyncio.run(run_checks(reg.select(ids), Context.build()))


def test_independent_checks_run_at_the_same_time() -> None:
    """Each check can only finish once the other has started: a serial runner deadlocks
    (and is caught by the check timeout, so the test fails rather than hangs)."""
    reg = Registry()
    a_started, b_started = asyncio.Event(), asyncio.Event()

    @reg.check("a", "A", timeout=5)
    async def a(ctx: Context) -> Result:
        a_started.set()
        await b_started.wait()
        return passed("a saw b")

    @reg.check("b", "B", timeout=5)
    async def b(ctx: Context) -> Result:
        b_started.set()
        await a_started.wait()
        return passed("b saw a")

    results = run(reg)
    assert [r.status for r in results] == [Status.PASS, Status.PASS]


def test_blocking_work_runs_in_threads_concurrently() -> None:
    reg = Registry()
    barrier = threading.Barrier(2, timeout=5)

    for name in ("x", "y"):

        @reg.check(name, name.upper(), timeout=10)
        async def meet(ctx: Context) -> Result:
            await run_blocking(barrier.wait)  # raises BrokenBarrierError if run one at a time
            return passed("met")

    assert [r.status for r in run(reg)] == [Status.PASS, Status.PASS]


def test_hanging_checks_become_timeout_errors_and_the_run_goes_on() -> None:
    reg = Registry()

    @reg.check("async-hang", "Hangs on an event", timeout=0.2)
    async def async_hang(ctx: Context) -> Result:
        await asyncio.Event().wait()
        return passed("never")

    @reg.check("thread-hang", "Hangs in a thread", timeout=0.2)
    async def thread_hang(ctx: Context) -> Result:
        await run_blocking(threading.Event().wait)
        return passed("never")

    @reg.check("fine", "Fine")
    async def fine(ctx: Context) -> Result:
        return passed("ok")

    results = run(reg)
    assert [(r.id, r.status, r.cause) for r in results] == [
        ("async-hang", Status.ERROR, "timeout"),
        ("thread-hang", Status.ERROR, "timeout"),
        ("fine", Status.PASS, None),
    ]
    assert results[0].evidence["timeout_s"] == 0.2


def test_exception_becomes_error_with_type_and_message() -> None:
    reg = Registry()

    @reg.check("crash", "Crash")
    async def crash(ctx: Context) -> Result:
        raise KeyError("missing-thing")

    @reg.check("thread-crash", "Crash in a thread")
    async def thread_crash(ctx: Context) -> Result:
        def boom() -> None:
            raise OSError(5, "Input/output error")

        await run_blocking(boom)
        return passed("never")

    crash_r, thread_r = run(reg)
    assert crash_r.status is Status.ERROR and crash_r.cause == "exception"
    assert crash_r.evidence["exception_type"] == "KeyError"
    assert "missing-thing" in crash_r.evidence["exception_message"]
    assert thread_r.evidence["exception_type"] == "OSError"


def test_failed_prerequisite_skips_dependants_transitively() -> None:
    reg = Registry()
    ran: list[str] = []

    @reg.check("base", "Base")
    async def base(ctx: Context) -> Result:
        from doctor import guide

        return problem(Status.FAIL, "timeout", "down", fix=guide.fix("firewall"))

    @reg.check("mid", "Mid", needs=("base",))
    async def mid(ctx: Context) -> Result:
        ran.append("mid")
        return passed("x")

    @reg.check("top", "Top", needs=("mid",))
    async def top(ctx: Context) -> Result:
        ran.append("top")
        return passed("x")

    _base_r, mid_r, top_r = run(reg)
    assert ran == []
    assert (mid_r.status, mid_r.cause) == (Status.SKIP, "prerequisite_failed")
    assert mid_r.evidence == {
        "prerequisite": "base",
        "prerequisite_status": "fail",
        "prerequisite_cause": "timeout",
    }
    assert top_r.status is Status.SKIP and top_r.evidence["prerequisite"] == "mid"


def test_dependant_runs_after_a_passing_prerequisite_and_sees_its_result() -> None:
    reg = Registry()

    @reg.check("first", "First")
    async def first(ctx: Context) -> Result:
        return passed("ok", {"n": 1})

    @reg.check("second", "Second", needs=("first",))
    async def second(ctx: Context) -> Result:
        return passed(f"first said {ctx.results['first'].evidence['n']}")

    assert run(reg)[1].summary == "first said 1"


def test_results_come_back_in_registry_order_whatever_order_they_finish() -> None:
    reg = Registry()
    second_done = asyncio.Event()

    @reg.check("slow-first", "Registered first, finishes last")
    async def slow(ctx: Context) -> Result:
        await second_done.wait()
        return passed("slow")

    @reg.check("fast-second", "Registered second, finishes first")
    async def fast(ctx: Context) -> Result:
        second_done.set()
        return passed("fast")

    assert [r.id for r in run(reg)] == ["slow-first", "fast-second"]


def test_select_pulls_in_needs_and_honours_skip() -> None:
    reg = Registry()
    for cid, needs in (("a", ()), ("b", ("a",)), ("c", ("b",)), ("d", ())):

        @reg.check(cid, cid, needs=needs)
        async def fn(ctx: Context) -> Result:
            return passed("ok")

    assert [c.id for c in reg.select(["c"])] == ["a", "b", "c"]
    assert [c.id for c in reg.select(None, skip=["b"])] == ["a", "c", "d"]


def test_skipped_by_user_prerequisite_does_not_block() -> None:
    reg = Registry()

    @reg.check("net", "Net")
    async def net(ctx: Context) -> Result:
        raise AssertionError("must not run")

    @reg.check("uses-net", "Uses net", needs=("net",))
    async def uses(ctx: Context) -> Result:
        return passed("ran")

    results = asyncio.run(run_checks(reg.select(None, skip=["net"]), Context.build()))
    assert [(r.id, r.status) for r in results] == [("uses-net", Status.PASS)]


def test_runs_despite_lets_a_dependant_run_after_named_failures_only() -> None:
    """echo runs after microphone's `silent_input` (an input that opens is enough), and
    still skips after a failure that means the input does not open."""
    from doctor import guide

    for cause, should_run in (("silent_input", True), ("open_failed", False)):
        reg = Registry()
        ran: list[str] = []

        @reg.check("mic", "Mic")
        async def mic(ctx: Context, cause: str = cause) -> Result:
            return problem(Status.FAIL, cause, "x", fix=guide.fix("audio_level"))

        @reg.check("echo", "Echo", needs=("mic",), runs_despite=("silent_input",))
        async def echo(ctx: Context, ran: list[str] = ran) -> Result:
            ran.append("echo")
            return passed("heard")

        _mic_r, echo_r = run(reg)
        assert (ran == ["echo"]) is should_run, cause
        assert echo_r.status is (Status.PASS if should_run else Status.SKIP)
        assert reg.checks["echo"].runs_despite == frozenset({"silent_input"})
