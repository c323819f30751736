"""The session recording (left = user, right = agent): echo, onsets, activity. Pure.

Blocks of decoded audio go in as they are read; both channels are low-passed and kept at
8 kHz as int16 (115 MB for an hour, the echo core's rate), plus 20 ms frame levels. At the
end the echo core (doctor.audio.echo) runs on the windows where the agent talked most:
the agent channel is the reference, the user channel the capture, as in `agent-doctor echo`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd
from typing import Any

import numpy as np
from numpy.typing import NDArray

RATE = 8000
FRAME = 160  # 20 ms at 8 kHz
AUDIBLE_DBFS = -50.0
ONSET_GAP_S = 0.3
WINDOW_S = 30.0
WINDOWS = 3
MAX_ECHO_DELAY_S = 1.0
"""Longest plausible echo path (device buffers + acoustic path + the client's send queue).
A wider search reads a well-behaved user's own speech, seconds after a reply, as echo."""
OWN_TURN_QUIET_S = 0.1


@dataclass
class RecordingSummary:
    duration_s: float
    channels: int
    agent_onsets_s: list[float] = field(default_factory=list)
    user_active: list[tuple[float, float]] = field(default_factory=list)
    agent_active: list[tuple[float, float]] = field(default_factory=list)
    echo: dict[str, Any] | None = None
    note: str | None = None


class RecordingMeter:
    """Feed float blocks shaped (frames, channels); `finish` measures."""

    def __init__(self, rate_hz: int, channels: int) -> None:
        from scipy import signal

        self.rate = int(rate_hz)
        self.channels = channels
        self.frames_in = 0
        self.parts: list[list[NDArray[np.int16]]] = [[] for _ in range(min(2, channels))]
        self.factor = self.rate // RATE if self.rate % RATE == 0 else 0
        self.phase = 0
        self.sos = signal.butter(8, 3600, btype="lowpass", fs=self.rate, output="sos")
        self.zi = [signal.sosfilt_zi(self.sos) * 0.0 for _ in self.parts]
        g = gcd(self.rate, RATE)
        self.up, self.down = RATE // g, self.rate // g
        self.levels: list[list[NDArray[np.float32]]] = [[] for _ in self.parts]
        self.carry: list[NDArray[np.int16]] = [np.zeros(0, np.int16) for _ in self.parts]

    def feed(self, block: NDArray[np.floating[Any]]) -> None:
        from scipy import signal

        if block.ndim == 1:
            block = block[:, None]
        n = len(block)
        if n == 0:
            return
        self.frames_in += n
        for ch, parts in enumerate(self.parts):
            x = np.asarray(block[:, ch], dtype=np.float64)
            if self.factor == 1:
                y = x
            elif self.factor:
                f, self.zi[ch] = signal.sosfilt(self.sos, x, zi=self.zi[ch])
                y = f[self.phase :: self.factor]
            else:
                y = signal.resample_poly(x, self.up, self.down)
            y16 = np.clip(y * 32767.0, -32768, 32767).astype(np.int16)
            parts.append(y16)
            # 20 ms levels as the audio streams: no second pass over an hour of samples
            joined = np.concatenate([self.carry[ch], y16])
            whole = len(joined) // FRAME * FRAME
            self.levels[ch].append(frame_levels(joined[:whole]).astype(np.float32))
            self.carry[ch] = joined[whole:]
        if self.factor:
            self.phase = (self.phase - n) % self.factor

    def channel(self, ch: int) -> NDArray[np.int16]:
        parts = self.parts[ch]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    def finish(self, echo: bool = True) -> RecordingSummary:
        """Activity and onsets; with `echo`, the echo measurement too (see `measure`)."""
        duration = self.frames_in / self.rate if self.rate else 0.0
        if self.channels < 2:
            return RecordingSummary(duration, self.channels, note="mono recording: no echo check")
        lu, la = (np.concatenate(lv).astype(np.float64) for lv in self.levels)
        out = RecordingSummary(
            duration,
            2,
            agent_onsets_s=onsets(la),
            user_active=spans(lu > AUDIBLE_DBFS),
            agent_active=spans(la > AUDIBLE_DBFS),
        )
        if echo:
            out.echo = self.measure()
        return out

    def measure(self) -> dict[str, Any]:
        """The echo core on the busiest windows; frees the kept audio."""
        agent_active = np.concatenate(self.levels[1]) > AUDIBLE_DBFS
        user_active = np.concatenate(self.levels[0]) > AUDIBLE_DBFS
        user = self.channel(0)
        self.parts[0] = []
        agent = self.channel(1)
        self.parts[1] = []  # one copy of each channel at a time
        return measure_echo(agent, user, agent_active, user_active)

    def release(self) -> None:
        self.parts = [[] for _ in self.parts]


def frame_levels(x: NDArray[np.int16]) -> NDArray[np.float64]:
    n = len(x) // FRAME
    if n == 0:
        return np.zeros(0)
    f = x[: n * FRAME].astype(np.float32).reshape(n, FRAME) / 32768.0
    p = np.mean(f * f, axis=1, dtype=np.float64)
    return np.asarray(10 * np.log10(np.maximum(p, 1e-12)), dtype=np.float64)


def onsets(level_db: NDArray[np.float64]) -> list[float]:
    """Frame times where sound starts after at least ONSET_GAP_S of quiet."""
    loud = level_db > AUDIBLE_DBFS
    gap = round(ONSET_GAP_S / (FRAME / RATE))
    out, quiet = [], gap
    for i, on in enumerate(loud):
        if on and quiet >= gap:
            out.append(round(i * FRAME / RATE, 3))
        quiet = 0 if on else quiet + 1
    return out


def spans(active: NDArray[np.bool_], min_gap_s: float = 0.3) -> list[tuple[float, float]]:
    """Active stretches (seconds), bridging pauses shorter than `min_gap_s`."""
    step = FRAME / RATE
    idx = np.flatnonzero(active)
    if len(idx) == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) * step > min_gap_s)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]])
    pairs = zip(starts, ends, strict=True)
    return [(round(s * step, 2), round((e + 1) * step, 2)) for s, e in pairs]


def _windows(active: NDArray[np.bool_]) -> list[int]:
    """Start frames of up to WINDOWS non-overlapping windows with the most agent speech."""
    w = int(WINDOW_S * RATE / FRAME)
    if len(active) <= w:
        return [0]
    c = np.concatenate([[0], np.cumsum(active, dtype=np.int64)])
    score = c[w:] - c[:-w]
    starts: list[int] = []
    score = score.astype(np.float64)
    for _ in range(WINDOWS):
        i = int(np.argmax(score))
        if score[i] <= 0:
            break
        starts.append(i)
        score[max(0, i - w + 1) : i + w] = -1
    return sorted(starts) or [0]


def measure_echo(
    agent: NDArray[np.int16],
    user: NDArray[np.int16],
    agent_active: NDArray[np.bool_],
    user_active: NDArray[np.bool_] | None = None,
) -> dict[str, Any]:
    """The echo core on the busiest windows; the window with the strongest score reports.

    The delay search stops at MAX_ECHO_DELAY_S, and with `user_active` the user's own turns
    are zeroed first (`own_speech_removed`)."""
    from doctor.audio.echo.analysis import LagWindow, analyse_echo

    if user_active is not None:
        user = own_speech_removed(user, agent_active, user_active)
    lags = LagWindow(0.0, MAX_ECHO_DELAY_S)
    span = int((WINDOW_S + MAX_ECHO_DELAY_S) * RATE)
    rows, best, best_score = [], None, -1.0
    for start_frame in _windows(agent_active):
        a0 = start_frame * FRAME
        ref, cap = agent[a0 : a0 + int(WINDOW_S * RATE)], user[a0 : a0 + span]
        result = analyse_echo(ref, RATE, cap, RATE, window=lags)
        score = result.score_s if result.score_s is not None else -1.0
        rows.append(
            {
                "start_s": round(a0 / RATE, 1),
                "verdict": result.verdict.value,
                "score_s": None if result.score_s is None else round(result.score_s, 2),
            }
        )
        if best is None or score > best_score:
            best, best_score = result, score
    assert best is not None
    ev = best.evidence()
    ev.pop("delay_track", None)
    keep = (
        "verdict",
        "score_s",
        "delay_ms",
        "drift_ppm",
        "erl_db",
        "erl_label",
        "echo_level_dbfs",
        "reference_active_s",
    )
    out = {k: ev.get(k) for k in keep}
    if any(r["verdict"] == "echo" for r in rows):
        out["verdict"] = "echo"
    out["windows"] = rows
    return out


def own_speech_removed(
    user: NDArray[np.int16], agent_active: NDArray[np.bool_], user_active: NDArray[np.bool_]
) -> NDArray[np.int16]:
    """The user channel with the user's own turns zeroed: every stretch of user sound that
    starts while the agent has been quiet for OWN_TURN_QUIET_S, up to the agent's next sound.
    Echo starts while the agent plays, so it is kept; a well-behaved user's answer is not."""
    n = min(len(agent_active), len(user_active), len(user) // FRAME)
    if n == 0:
        return user
    quiet = round(OWN_TURN_QUIET_S * RATE / FRAME)
    c = np.concatenate([[0], np.cumsum(agent_active[:n], dtype=np.int64)])
    out: NDArray[np.int16] = user.copy()
    frames = out[: n * FRAME].reshape(n, FRAME)
    rng = np.random.default_rng(0)
    i = 0
    while i < n:
        if user_active[i] and c[i + 1] - c[max(0, i - quiet)] == 0:
            j = i
            while j < n and not agent_active[j]:
                j += 1
            # a faint noise floor, not digital silence: the detector whitens by level
            frames[i:j] = rng.integers(-3, 4, size=(j - i, FRAME), dtype=np.int16)
            i = j
        else:
            i += 1
    return out


def align(onsets_s: list[float], audible_t: list[float], tol: float = 0.15) -> float | None:
    """Server time of the recording's zero: the shift that lines most agent onsets up with
    the audible starts the log knows (session-formats §5: not a fixed offset)."""
    if not onsets_s or not audible_t:
        return None
    o = np.asarray(onsets_s)
    best, best_n = None, 0
    for a in audible_t[:20]:
        for r in onsets_s[:40]:
            shift = a - r
            n = sum(bool(np.any(np.abs(o + shift - t) < tol)) for t in audible_t)
            if n > best_n:
                best, best_n = shift, n
    return best if best_n >= max(2, min(len(onsets_s), len(audible_t)) // 3) else None


FULL_PASS_S = 900.0
"""Up to 15 minutes the whole recording is decoded; longer ones only in echo windows."""
DECODE_WINDOW_S = WINDOW_S + 2.5


def plan_windows(duration_s: float, agent_spans: list[tuple[float, float]] | None) -> list[float]:
    """Start times (s) of the windows to decode in a long recording: the busiest stretches
    of agent speech the timeline knows, else evenly spread over the file."""
    if agent_spans:
        n = int(duration_s * RATE / FRAME) + 1
        active = np.zeros(n, bool)
        for s, e in agent_spans:
            a, b = max(0, int(s * RATE / FRAME)), min(n, int(e * RATE / FRAME))
            active[a:b] = True
        if active.any():
            return [i * FRAME / RATE for i in _windows(active)]
    count = WINDOWS * 2
    step = max(DECODE_WINDOW_S, (duration_s - DECODE_WINDOW_S) / max(1, count - 1))
    return [round(i * step, 2) for i in range(count) if i * step + 1.0 < duration_s]


def combine_windows(
    windows: list[tuple[float, RecordingSummary, float]], duration_s: float
) -> RecordingSummary:
    """One summary from decoded windows (start, window summary, echo score)."""
    out = RecordingSummary(
        duration_s,
        2,
        note=f"long recording: measured in {len(windows)} windows of {WINDOW_S:.0f} s",
    )
    best: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = []
    for start, w, _ in windows:
        out.agent_onsets_s += [round(start + t, 3) for t in w.agent_onsets_s]
        out.user_active += [(round(start + s, 2), round(start + e, 2)) for s, e in w.user_active]
        out.agent_active += [(round(start + s, 2), round(start + e, 2)) for s, e in w.agent_active]
        if w.echo is None:
            continue
        for row in w.echo.get("windows", []):
            rows.append({**row, "start_s": round(start + row["start_s"], 1)})
        score = w.echo.get("score_s")
        if best is None or (score is not None and score > (best.get("score_s") or -1)):
            best = dict(w.echo)
    if best is not None:
        if any(r["verdict"] == "echo" for r in rows):
            best["verdict"] = "echo"
        best["windows"] = rows
        out.echo = best
    return out
