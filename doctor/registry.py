"""The one registry of checks: `@check(...)` on an async function is all it takes to add one."""

from __future__ import annotations

import importlib
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from doctor.context import Context
    from doctor.result import Result

CheckFn = Callable[["Context"], Awaitable["Result"]]
Timeout = float | Callable[["Context"], float]

PLUGINS_ENV = "AGENT_DOCTOR_PLUGINS"


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    fn: CheckFn
    needs: tuple[str, ...] = ()
    timeout: Timeout = 30.0
    description: str = ""
    in_all: bool = True
    # causes of a failed prerequisite that do not stop this check (echo needs an input
    # that opens, not one that already carries sound: it runs despite `silent_input`)
    runs_despite: frozenset[str] = frozenset()

    def timeout_for(self, ctx: Context) -> float:
        return self.timeout(ctx) if callable(self.timeout) else float(self.timeout)


@dataclass
class Registry:
    checks: dict[str, CheckSpec] = field(default_factory=dict)

    def check(
        self,
        id: str,
        title: str,
        *,
        needs: Iterable[str] = (),
        timeout: Timeout = 30.0,
        description: str = "",
        in_all: bool = True,
        runs_despite: Iterable[str] = (),
    ) -> Callable[[CheckFn], CheckFn]:
        def register(fn: CheckFn) -> CheckFn:
            if id in self.checks:
                raise ValueError(f"check id {id!r} registered twice")
            unknown = [n for n in needs if n not in self.checks]
            if unknown:
                raise ValueError(f"check {id!r} needs unregistered {unknown}: register it first")
            doc = (fn.__doc__ or "").strip().splitlines()
            self.checks[id] = CheckSpec(
                id,
                title,
                fn,
                tuple(needs),
                timeout,
                description or (doc[0] if doc else ""),
                in_all,
                frozenset(runs_despite),
            )
            return fn

        return register

    def ids(self) -> list[str]:
        return list(self.checks)

    def select(self, ids: Iterable[str] | None = None, skip: Iterable[str] = ()) -> list[CheckSpec]:
        """Registry order; `ids` pulls in what they need; unknown ids raise KeyError."""
        skip = set(skip)
        unknown = [i for i in [*(ids or []), *skip] if i not in self.checks]
        if unknown:
            raise KeyError(", ".join(unknown))
        if ids is None:
            wanted = {c.id for c in self.checks.values() if c.in_all}
        else:
            wanted = set()
            stack = list(ids)
            while stack:
                cid = stack.pop()
                if cid not in wanted:
                    wanted.add(cid)
                    stack.extend(self.checks[cid].needs)
        return [c for c in self.checks.values() if c.id in wanted and c.id not in skip]


REGISTRY = Registry()
check = REGISTRY.check


def load_checks() -> Registry:
    """Import the built-in checks (light modules: heavy imports live inside the checks)
    and any plugin modules named in AGENT_DOCTOR_PLUGINS (comma-separated)."""
    importlib.import_module("doctor.checks")
    for name in filter(None, (p.strip() for p in os.environ.get(PLUGINS_ENV, "").split(","))):
        importlib.import_module(name)
    return REGISTRY
