"""`--plot FILE.png`: each session's timeline, one panel per session (matplotlib, Agg).

Lanes: the user's turns (speech start to the commit), the agent's replies (creation in
grey, audible part in colour, cuts marked), tool calls to their results, errors and
closes; the recording's activity when a recording was read, and the echo measurement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from doctor.session.analyzer import SessionFindings

MAX_PANELS = 8
WINDOW_S = 30.0  # the echo core's window (doctor.session.recording)


class PlotUnavailable(Exception):
    """matplotlib is missing: one line for the user, never a traceback."""


def _rel(t: float | None, t0: float) -> float | None:
    return None if t is None else t - t0


def plot_sessions(found: list[SessionFindings], path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable(
            "--plot needs matplotlib: pip install 'agent-doctor[plot]' (no plot written)"
        ) from None
    panels = found[:MAX_PANELS]
    fig, axes = plt.subplots(len(panels), 1, figsize=(14, 2.8 * len(panels)), squeeze=False)
    for ax, f in zip(axes[:, 0], panels, strict=True):
        _panel(ax, f)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _panel(ax: Any, f: SessionFindings) -> None:
    seg = f.segment
    t0 = seg.first_t or 0.0
    lanes = {"user": 4, "agent": 3, "tools": 2, "errors": 1, "recording": 0}
    for u in seg.users:
        s, e = _rel(u.started_t, t0), _rel(u.stopped_t, t0)
        if s is None and e is None:
            continue
        s = s if s is not None else (e or 0.0) - 0.5
        e = e if e is not None else s + 0.5
        ax.barh(lanes["user"], max(0.05, e - s), left=s, height=0.6, color="#4c72b0")
    for r in seg.replies:
        s = _rel(r.started_t, t0)
        a = _rel(r.audible_t, t0)
        end = _rel(r.cut_t if r.cut_t is not None else r.done_t, t0)
        if s is not None and end is not None:
            ax.barh(lanes["agent"], max(0.02, (a or end) - s), left=s, height=0.6, color="#cccccc")
        if a is not None and end is not None:
            color = "#c44e52" if r.interrupted else "#55a868"
            ax.barh(lanes["agent"], max(0.02, end - a), left=a, height=0.6, color=color)
        if r.interrupted and end is not None:
            ax.plot([end], [lanes["agent"] + 0.4], marker="v", color="#c44e52")
    for c in seg.tools.values():
        s, e = _rel(c.t, t0), _rel(c.result_t, t0)
        if s is None:
            continue
        ax.plot([s], [lanes["tools"]], marker="o", color="#8172b2")
        if e is not None:
            ax.plot([s, e], [lanes["tools"]] * 2, color="#8172b2")
        elif not c.answered:
            ax.plot([s], [lanes["tools"]], marker="x", markersize=10, color="#c44e52")
    for err in seg.errors:
        x = _rel(err.t, t0)
        if x is not None:
            ax.plot([x], [lanes["errors"]], marker="X", markersize=9, color="#c44e52")
            ax.annotate(
                err.code,
                (x, lanes["errors"]),
                fontsize=7,
                xytext=(3, 5),
                textcoords="offset points",
            )
    for cl in seg.closes:
        x = _rel(cl.t, t0)
        if x is not None:
            ax.plot([x], [lanes["errors"]], marker="|", markersize=14, color="black")
    rec = f.recording
    title = f"{f.session_id or 'session without id'} ({f.source.shape})"
    if rec is not None:
        shift = (f.recording_offset_s - t0) if f.recording_offset_s is not None else 0.0
        for s, e in rec.user_active:
            ax.barh(lanes["recording"] + 0.15, e - s, left=s + shift, height=0.3, color="#4c72b0")
        for s, e in rec.agent_active:
            ax.barh(lanes["recording"] - 0.15, e - s, left=s + shift, height=0.3, color="#55a868")
        for w in (rec.echo or {}).get("windows", []):
            color = "#c44e52" if w.get("verdict") == "echo" else "#999999"
            start = w["start_s"] + shift
            ax.axvspan(start, start + WINDOW_S, ymin=0, ymax=0.12, color=color, alpha=0.15)
        if rec.echo:
            e = rec.echo
            title += f" | echo in the user channel: {e.get('verdict')}" + (
                f", delay {e.get('delay_ms')} ms, ERL {e.get('erl_db')} dB"
                if e.get("verdict") == "echo"
                else ""
            )
    ax.set_yticks(list(lanes.values()))
    ax.set_yticklabels(["user", "agent", "tools", "errors", "recording L/R"])
    ax.set_xlabel("seconds from the session's first event")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
