"""`agent-doctor session SESSION_ID... [--recent N] [--save DIR]`: fetch and diagnose.

Reads each session from the Sessions REST API with the user's API key, downloads its
artifacts (pre-signed URLs, fetched with no credential) into a folder per session, and
hands the folders to the analysis `analyze` uses. Every way the fetching can go wrong is
a result of its own (id `session-fetch`) ahead of the analysis.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

import click

from doctor.cli import build_context, report_options, service_options
from doctor.commands.analyze import analyze_and_report, session_plot_option

FETCH_ID = "session-fetch"
FETCH_TITLE = "Sessions API and artifacts"


@dataclass
class Fetched:
    """What getting one session gave: a result, and the folder when files arrived."""

    result: Any  # doctor.result.Result
    folder: str | None = None


@dataclass
class Plan:
    ids: list[str]
    folder: str
    region: str
    other: tuple[str, str] | None  # (region, token URL) to ask when a session is missing
    notes: list[Any] = field(default_factory=list)  # results before any id is fetched


def _fix(guide_id: str, ctx: Any, **values: Any) -> Any:
    from urllib.parse import urlsplit

    from doctor import guide
    from doctor.context import REGIONS

    other = ctx.other_region()
    return guide.fix(
        guide_id,
        host=urlsplit(ctx.token_url).hostname,
        region=ctx.region,
        other_region=other,
        other_host=urlsplit(REGIONS[other][1]).hostname,
        proxy=ctx.proxy_display or "your proxy",
        **values,
    )


def _meta(result: Any) -> Any:
    return result.with_meta(FETCH_ID, FETCH_TITLE, 0)


def _problem(status: Any, cause: str, summary: str, evidence: dict[str, Any], fix: Any) -> Any:
    from doctor.result import problem

    return _meta(problem(status, cause, summary, evidence, fix))


def _answer_problem(answer: Any, sid: str, ctx: Any, api: Any, both: bool = False) -> Any:
    """A REST answer that is not a session, as its own cause (`both`: the other region was
    asked too and had no such session either)."""
    from doctor.net.sessions_api import classify_answer
    from doctor.result import Status

    kind = classify_answer(answer)
    evidence = {"session_id": sid, "http_status": answer.status, "body": answer.body}
    host = api.base
    if kind in ("unauthorized", "no_credentials"):
        return _problem(
            Status.FAIL,
            "unauthorized" if kind == "unauthorized" else "no_credentials",
            f"the Sessions API at {host} refused the API key (HTTP {answer.status})",
            evidence,
            _fix(
                "sessions_key_refused", ctx, code=f"HTTP {answer.status}", detail=_key_source(ctx)
            ),
        )
    if kind == "not_found":
        if not isinstance(answer.body, dict):
            return _problem(
                Status.FAIL,
                "sessions_api_missing",
                f"{host} does not serve the Sessions API (HTTP 404 without a JSON body): is "
                "--token-url pointing at a relay?",
                evidence,
                _fix("sessions_api_unreachable", ctx, detail="HTTP 404, not the Sessions API"),
            )
        if ctx.urls_overridden:  # the run asked one host, not a region
            return _problem(
                Status.FAIL,
                "session_not_found",
                f"no session {sid} for this API key at {host}: another account's, another "
                "host's, or a mistyped id",
                evidence,
                _fix("session_not_found_at_url", ctx, detail=sid, token_url=ctx.token_url),
            )
        if both:
            return _problem(
                Status.FAIL,
                "session_not_found",
                f"no session {sid} for this API key in region {ctx.region} nor in region "
                f"{ctx.other_region()}: another account's, or a mistyped id",
                evidence,
                _fix("session_not_found_in_both_regions", ctx, detail=sid),
            )
        return _problem(
            Status.FAIL,
            "session_not_found",
            f"no session {sid} for this API key in region {ctx.region}: another account's, "
            "another region's, or a mistyped id",
            evidence,
            _fix("session_not_found", ctx, detail=sid),
        )
    return _problem(
        Status.FAIL,
        "sessions_api_error",
        f"the Sessions API answered HTTP {answer.status} for {sid}",
        evidence,
        _fix("sessions_api_unreachable", ctx, detail=f"HTTP {answer.status}"),
    )


def _key_source(ctx: Any) -> str:
    return ctx.api_key.source if ctx.api_key is not None else "nowhere"


async def _fetch_one(api: Any, sid: str, plan: Plan, ctx: Any, other: Any) -> Fetched:
    from doctor.net.sessions_api import classify_answer, find_artifacts
    from doctor.result import Status, passed

    answer = await api.get_session(sid)
    kind = classify_answer(answer)
    both = False
    if kind == "not_found" and other is not None and isinstance(answer.body, dict):
        other_answer = await other.get_session(sid)
        both = classify_answer(other_answer) == "not_found"
        if classify_answer(other_answer) == "ok":
            return Fetched(
                _problem(
                    Status.FAIL,
                    "session_in_other_region",
                    f"session {sid} is not in region {ctx.region}; it ran in region "
                    f"{ctx.other_region()}",
                    {"session_id": sid, "http_status": answer.status},
                    _fix("session_in_other_region", ctx, detail=sid),
                )
            )
    if kind != "ok":
        return Fetched(_answer_problem(answer, sid, ctx, api, both))
    body = answer.body
    facts = {
        "session_id": sid,
        "status": body.get("status"),
        "public_close_reason": body.get("public_close_reason"),
        "duration_seconds": body.get("duration_seconds"),
        "created_at": body.get("created_at"),
        "ended_at": body.get("ended_at"),
    }
    links = find_artifacts(body.get("artifacts"))
    if not links:
        active = body.get("status") not in (None, "completed")
        return Fetched(
            _meta(
                _warn(
                    "artifacts_not_ready",
                    f"session {sid} has no artifacts yet"
                    + (" (it is still open)" if active else "")
                    + ": they appear a few seconds after the session ends; run this again",
                    facts,
                    _fix("artifacts_not_ready", ctx, detail=sid),
                )
            )
        )
    folder = os.path.join(plan.folder, sid)
    downloads = [await api.download(link, folder) for link in links]
    if any(d.expired for d in downloads):
        # Links are short-lived: ask once more for fresh ones, then give up.
        again = await api.get_session(sid)
        fresh = find_artifacts(again.body.get("artifacts")) if isinstance(again.body, dict) else []
        by_kind = {link.kind: link for link in fresh}
        for i, d in enumerate(downloads):
            if d.expired and d.link.kind in by_kind:
                downloads[i] = await api.download(by_kind[d.link.kind], folder)
    files = [
        {"kind": d.kind, "url": d.link.shown, "bytes": d.size, "status": d.status, "error": d.error}
        for d in downloads
    ]
    evidence = {**facts, "folder": folder, "artifacts": files}
    expired = [d for d in downloads if d.expired]
    failed = [d for d in downloads if d.error is not None]
    got = [d for d in downloads if d.error is None]
    if expired:
        return Fetched(
            _problem(
                Status.FAIL,
                "artifact_url_expired",
                f"{len(expired)} artifact link(s) of {sid} had expired, fresh ones too",
                evidence,
                _fix("artifact_url_expired", ctx, detail=sid),
            ),
            folder if got else None,
        )
    if failed:
        what = "; ".join(f"{d.link.shown}: {d.error}" for d in failed)
        return Fetched(
            _problem(
                Status.FAIL,
                "artifact_download_failed",
                f"{len(failed)} of {len(downloads)} artifacts of {sid} could not be downloaded",
                evidence,
                _fix("artifact_download_failed", ctx, detail=what),
            ),
            folder if got else None,
        )
    kinds = ", ".join(sorted(str(d.kind) for d in got))
    return Fetched(
        _meta(passed(f"downloaded {len(got)} artifacts of {sid} ({kinds})", evidence)), folder
    )


def _warn(cause: str, summary: str, evidence: dict[str, Any], fix: Any) -> Any:
    from doctor.result import Status, problem

    return problem(Status.WARN, cause, summary, evidence, fix)


async def _fetch_all(plan: Plan, ctx: Any, recent: int | None) -> list[Fetched]:
    from doctor.net.agent_api import AgentApiError
    from doctor.net.sessions_api import SessionsApi, classify_answer
    from doctor.result import Status

    assert ctx.api_key is not None
    options = {"proxy": ctx.proxy, "ca_bundle": ctx.ca_bundle, "timeout": ctx.timeout}
    out: list[Fetched] = []
    try:
        async with SessionsApi(ctx.token_url, ctx.api_key.value, **options) as api:
            other = None
            if plan.other is not None:
                other = SessionsApi(plan.other[1], ctx.api_key.value, **options)
                await other.__aenter__()
            try:
                ids = list(plan.ids)
                if recent:
                    listed, answer = await api.recent(recent)
                    if classify_answer(answer) != "ok":
                        out.append(Fetched(_answer_problem(answer, "(list)", ctx, api)))
                    ids += [i for i in listed if i not in ids]
                for sid in ids:
                    out.append(await _fetch_one(api, sid, plan, ctx, other))
            finally:
                if other is not None:
                    await other.__aexit__(None, None, None)
    except AgentApiError as exc:
        out.append(
            Fetched(
                _problem(
                    Status.FAIL,
                    "sessions_api_unreachable",
                    f"the Sessions API could not be reached: {exc}",
                    {"step": exc.step, "reason": exc.reason},
                    _fix("sessions_api_unreachable", ctx, detail=str(exc)),
                )
            )
        )
    return out


def _malformed(sid: str, ctx: Any) -> Any:
    from doctor.result import Status

    return _problem(
        Status.FAIL,
        "invalid_session_id",
        f"{sid!r} is not a session id (sess_ + 32 hex digits); not asked",
        {"session_id": sid},
        _fix("session_id_format", ctx, detail=sid),
    )


@click.command("session")
@click.argument("session_ids", nargs=-1, metavar="SESSION_ID...")
@click.option(
    "--recent",
    type=click.IntRange(1, 1000),
    metavar="N",
    help="Also the N newest sessions of this API key (the Sessions API's list).",
)
@click.option(
    "--save",
    "save_dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Keep the downloaded artifacts in DIR/<session_id>/ (default: a temporary folder "
    "that is deleted).",
)
@session_plot_option
@service_options
@report_options
def session_command(
    session_ids: tuple[str, ...],
    recent: int | None,
    save_dir: str | None,
    plot_path: str | None,
    **params: Any,
) -> None:
    """Fetch sessions from the Sessions API by id and diagnose them (echo, interruptions,
    billing, resume, errors, latency, tools) from the service's own recording, timeline
    and metadata."""
    from doctor.context import REGIONS
    from doctor.net.sessions_api import valid_session_id

    if not session_ids and not recent:
        raise click.UsageError("give one or more SESSION_IDs, or --recent N")
    if not params.get("api_key"):
        raise click.UsageError(
            "the Sessions API needs the account's API key: --api-key or ASSEMBLYAI_API_KEY "
            "(a temporary token cannot read sessions)"
        )
    ctx = build_context(params)
    if save_dir is not None:
        try:
            os.makedirs(save_dir, exist_ok=True)
        except OSError as exc:
            raise click.UsageError(f"cannot use --save {save_dir}: {exc.strerror}") from None
    folder = save_dir or tempfile.mkdtemp(prefix="agent-doctor-sessions-")
    ids = list(dict.fromkeys(s.strip() for s in session_ids))  # an id given twice: once
    before = [_malformed(s, ctx) for s in ids if not valid_session_id(s)]
    other = None
    if not ctx.urls_overridden:
        region = ctx.other_region()
        other = (region, REGIONS[region][1])
    plan = Plan([s for s in ids if valid_session_id(s)], folder, ctx.region, other)
    try:
        fetched = asyncio.run(_fetch_all(plan, ctx, recent)) if (plan.ids or recent) else []
        results = [*before, *(f.result for f in fetched)]
        folders = [f.folder for f in fetched if f.folder is not None]
        analyze_and_report(
            folders,
            {**params, "plot_path": plot_path},
            command="session",
            ctx=ctx,
            extra={"saved_to": os.path.abspath(save_dir) if save_dir else None},
            results_before=results,
        )
    finally:
        if save_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
