"""Runs checks concurrently, each under its own timeout, and never lets one crash the run."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from doctor.context import Context
from doctor.registry import CheckSpec
from doctor.result import Result, Status, errored, skipped

T = TypeVar("T")
ProgressEvent = Literal["start", "done"]
Progress = Callable[[ProgressEvent, CheckSpec, Result | None], None]


async def run_blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking work (PortAudio, sockets) in a daemon thread.

    Not `asyncio.to_thread`: the default executor is joined at interpreter exit, so one
    thread stuck in a driver call would hang the whole CLI after its check timed out.
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def work() -> None:
        try:
            value = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the awaiting task, not swallowed
            _call_soon(loop, settle, False, exc)
        else:
            _call_soon(loop, settle, True, value)

    threading.Thread(
        target=work, name=f"doctor-{getattr(fn, '__name__', 'work')}", daemon=True
    ).start()
    return await fut


def _call_soon(loop: asyncio.AbstractEventLoop, cb: Callable[..., None], *args: Any) -> None:
    # RuntimeError: the loop closed while the thread was stuck; nobody is waiting.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(cb, *args)


def _describe_exception(exc: BaseException) -> dict[str, Any]:
    return {"exception_type": type(exc).__name__, "exception_message": str(exc)[:500]}


async def _run_one(spec: CheckSpec, ctx: Context) -> Result:
    timeout = spec.timeout_for(ctx)
    try:
        return await asyncio.wait_for(spec.fn(ctx), timeout)
    except asyncio.TimeoutError:
        return errored(
            "timeout", f"check did not finish within {timeout:g} s", {"timeout_s": timeout}
        )
    except Exception as exc:
        return errored(
            "exception",
            f"check crashed: {type(exc).__name__}: {exc}"[:300],
            _describe_exception(exc),
        )


def _blocked_by(spec: CheckSpec, ctx: Context, selected: set[str]) -> Result | None:
    for need in spec.needs:
        if need not in selected:  # left out with --skip: the user vouches for it
            continue
        dep = ctx.results[need]
        if dep.status is Status.FAIL and dep.cause in spec.runs_despite:
            continue
        if not dep.status.is_ok:
            verb = "was skipped" if dep.status is Status.SKIP else f"ended with {dep.status.value}"
            return skipped(
                "prerequisite_failed",
                f"needs {need}, which {verb} ({dep.cause or 'no cause'})",
                {
                    "prerequisite": need,
                    "prerequisite_status": dep.status.value,
                    "prerequisite_cause": dep.cause,
                },
            )
    return None


async def run_checks(
    specs: list[CheckSpec], ctx: Context, progress: Progress | None = None
) -> list[Result]:
    """Start every check at once; each waits only for what it needs. Results come back
    in the order of `specs` (registry order), whatever order they finish in."""
    selected = {s.id for s in specs}
    tasks: dict[str, asyncio.Task[Result]] = {}

    async def run(spec: CheckSpec) -> Result:
        for need in spec.needs:
            if need in tasks:
                await asyncio.shield(tasks[need])
        blocked = _blocked_by(spec, ctx, selected)
        if progress:
            progress("start", spec, None)
        t0 = time.monotonic()
        result = blocked or await _run_one(spec, ctx)
        result = result.with_meta(spec.id, spec.title, round((time.monotonic() - t0) * 1000))
        ctx.results[spec.id] = result
        if progress:
            progress("done", spec, result)
        return result

    for spec in specs:
        tasks[spec.id] = asyncio.create_task(run(spec), name=f"check-{spec.id}")
    return [await tasks[s.id] for s in specs]
