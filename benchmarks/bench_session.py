"""Time and peak memory of `agent-doctor analyze` on a long session: a log with its audio
kept and the vendor's artifacts (timeline, metadata, stereo Ogg/Opus recording) beside it.
Two variants of the log: `capture` (agent-doctor's capture format) and `applog` (an app's
own JSON-lines log, session-formats §7.1's entry per line plus a direction marker).

    .venv/bin/python benchmarks/bench_session.py          # one hour: ~330-390 MB log, 1 h Ogg/Opus
    .venv/bin/python benchmarks/bench_session.py --quick  # five minutes (CI)
    .venv/bin/python benchmarks/bench_session.py --only applog

The inputs are generated in a temporary folder (not committed): a conversation of 12 s
turns (4 s of user speech, a reply in 10 ms `reply.audio` chunks, `input.audio` every
50 ms all along), and a recording whose left channel carries a faint echo of the right.
The analysis runs in a child process pinned to one core (taskset, when present); peak
memory is its VmHWM; the load average is printed since the machine may be shared.
Exit status 1 if memory exceeds the budget (400 MB) or, in the full run, if the analysis
takes longer than 60 s.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RSS_BUDGET_MB = 400.0
TIME_BUDGET_S = 60.0
TURN_S = 12.0
T0 = 1_800_000_000.0
VARIANTS = ("capture", "applog")

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
c0 = time.process_time()
from doctor.commands.analyze import analyze_paths
notes = []
found = analyze_paths(sys.argv[1:], notes)
dt = time.perf_counter() - t0
cpu = time.process_time() - c0
hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))
print(json.dumps({"seconds": dt, "cpu": cpu, "vmhwm_kb": hwm, "sessions": len(found),
                  "notes": notes,
                  "problems": sorted({f"{r.id}:{r.cause}" for f in found for r in f.results
                                      if r.status.value in ("warn", "fail")})}))
"""


def _payloads(seed: int) -> tuple[list[str], str, list[str]]:
    """The base64 payloads both logs repeat: 8 microphone chunks of speech-like audio (50 ms),
    a silent and 8 loud `reply.audio` chunks (10 ms)."""
    rng = np.random.default_rng(seed)
    sys.path.insert(0, str(ROOT / "tests" / "session"))
    from artifacts import speechlike

    talk = (speechlike(0.4, 24000, 5) * 32767 * 0.5).astype("<i2").tobytes()
    mic = [base64.b64encode(talk[i * 2400 : (i + 1) * 2400]).decode() for i in range(8)]
    out_silent = base64.b64encode(bytes(480)).decode()
    out_loud = [
        base64.b64encode((rng.standard_normal(240) * 6000).astype("<i2").tobytes()).decode()
        for _ in range(8)
    ]
    return mic, out_silent, out_loud


def write_capture(path: Path, seconds: float) -> int:
    """The capture of a session `seconds` long, audio kept; returns its size in bytes."""
    mic, out_silent, out_loud = _payloads(1)
    sid = "sess_" + "b" * 32
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(
            json.dumps(
                {
                    "capture": "agent-doctor",
                    "version": 1,
                    "started_wall": T0,
                    "started_mono": 0.0,
                    "audio": "keep",
                    "upstream": "wss://agents.assemblyai.com/v1/ws",
                    "tool_version": "bench",
                }
            )
            + "\n"
        )

        def frame(t: float, d: str, msg: str) -> None:
            fh.write(f'{{"t":{t:.4f},"wall":{T0 + t:.4f},"conn":1,"dir":"{d}","msg":{msg}}}\n')

        fh.write(
            f'{{"t":0.0,"wall":{T0},"conn":1,"event":"open","path":"/v1/ws","auth":"header"}}\n'
        )
        frame(0.01, "app", '{"type":"session.update","session":{"system_prompt":"x"}}')
        frame(
            0.4,
            "service",
            f'{{"type":"session.ready","session_id":"{sid}","timestamp":{T0 + 0.4}}}',
        )
        # the app's microphone: 50 ms chunks all session long, interleaved with the turns
        mic_t = 0.5
        turn = 0
        t = 1.0
        n_turns = int(seconds // TURN_S)
        for turn in range(n_turns):
            base = 1.0 + turn * TURN_S
            events: list[tuple[float, str, str]] = []
            events.append((base + 0.6, "service", '{"type":"input.speech.started"}'))
            events.append((base + 5.0, "service", '{"type":"input.speech.stopped"}'))
            events.append(
                (
                    base + 5.0,
                    "service",
                    '{"type":"transcript.user","text":"What about my order number please"}',
                )
            )
            rid = f"resp_{turn:032x}"
            events.append(
                (base + 5.01, "service", f'{{"type":"reply.started","reply_id":"{rid}"}}')
            )
            ts = base + 5.02
            k = 0
            while ts < base + 11.0:
                data = out_silent if ts < base + 6.0 else out_loud[k % 8]
                events.append(
                    (ts, "service", f'{{"type":"reply.audio","reply_id":"{rid}","data":"{data}"}}')
                )
                ts += 0.01
                k += 1
            events.append(
                (
                    base + 11.0,
                    "service",
                    f'{{"type":"transcript.agent","reply_id":"{rid}",'
                    '"text":"Your order ships tomorrow.","interrupted":false}',
                )
            )
            events.append(
                (
                    base + 11.3,
                    "service",
                    f'{{"type":"reply.done","reply_id":"{rid}","status":"completed"}}',
                )
            )
            while mic_t < base + TURN_S:
                events.append(
                    (mic_t, "app", f'{{"type":"input.audio","audio":"{mic[int(mic_t * 20) % 8]}"}}')
                )
                mic_t += 0.05
            events.sort(key=lambda e: e[0])
            for et, d, msg in events:
                if d == "service" and msg.endswith("}"):
                    msg = msg[:-1] + f',"timestamp":{T0 + et:.4f}}}'
                frame(et, d, msg)
            t = base + TURN_S
        frame(t + 0.5, "app", '{"type":"session.end"}')
        frame(
            t + 0.8,
            "service",
            f'{{"type":"session.ended","session_duration_seconds":{t},"timestamp":{T0 + t + 0.8}}}',
        )
        close = {"t": t + 0.9, "wall": T0 + t + 0.9, "conn": 1, "event": "close"}
        fh.write(json.dumps({**close, "by": "service", "code": 1000, "reason": ""}) + "\n")
    return path.stat().st_size


WORDS = ["Your", "order", "ships", "tomorrow", "morning", "from", "our", "main", "warehouse"]


def _at(t: float) -> str:
    """RFC 3339 UTC with 7 fractional digits, as the Go logger of §7.1 writes `at`."""
    whole = int(t)
    frac = f"{t - whole:.7f}"[2:].rstrip("0")
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + (f".{frac}" if frac else "") + "Z"
    )


def _offset(seconds: float) -> str:
    """A Go duration string rounded to ms (`1m5.25s`, `1h0m2.5s`), as §7.1's `offset`."""
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    sec = f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if h:
        return f"{h}h{m}m{sec}"
    return f"{m}m{sec}" if m else sec


def write_applog(path: Path, seconds: float) -> int:
    """An app's own JSON-lines log of a session `seconds` long (session-formats §7.1's
    entry, one per line: `at`, `offset`, `type`, the event under `event` with its keys
    sorted, plus a `direction` marker), both directions with audio kept; returns its size.

    The same conversation as the capture: 12 s turns, the microphone in 50 ms
    `input.audio` chunks all along, each reply 0.5 s of silent lead-in then 3 s of audio in
    10 ms `reply.audio` chunks with a word-per-delta agent transcript and growing user
    partials, as the service sends them (§6.2)."""
    mic, out_silent, out_loud = _payloads(2)
    sid = "sess_" + "c" * 32
    app_start = T0 - 1.2  # `offset` counts from the app's start, ~1.2 s before the session
    n_turns = int(seconds // TURN_S)
    with open(path, "w", encoding="utf-8") as fh:

        def entry(t: float, sent: bool, event: dict[str, object]) -> None:
            if not sent:
                event["timestamp"] = round(T0 + t, 7)
            recv = T0 + t + (0.0 if sent else 0.035)
            body = json.dumps(event, sort_keys=True, separators=(",", ":"))
            fh.write(
                f'{{"at":"{_at(recv)}","direction":"{"sent" if sent else "received"}",'
                f'"event":{body},"offset":"{_offset(recv - app_start)}",'
                f'"type":"{event["type"]}"}}\n'
            )

        entry(0.0, True, {"type": "session.update", "session": {"system_prompt": "x"}})
        entry(
            0.4, False, {"type": "session.ready", "session_id": sid, "expires_at": int(T0) + 3600}
        )
        mic_t = 0.5
        t = 1.0
        for turn in range(n_turns):
            base = 1.0 + turn * TURN_S
            rid = f"resp_{turn:032x}"
            item = f"msg_{turn:032x}"
            uitem = f"item_{turn:032x}"
            events: list[tuple[float, bool, dict[str, object]]] = [
                (base + 0.6, False, {"type": "input.speech.started"}),
                (
                    base + 2.0,
                    False,
                    {"type": "transcript.user.delta", "item_id": uitem, "text": "What about"},
                ),
                (
                    base + 3.5,
                    False,
                    {
                        "type": "transcript.user.delta",
                        "item_id": uitem,
                        "text": "What about my order",
                    },
                ),
                (base + 5.0, False, {"type": "input.speech.stopped"}),
                (
                    base + 5.0,
                    False,
                    {
                        "type": "transcript.user",
                        "item_id": uitem,
                        "text": "What about my order number please",
                    },
                ),
                (base + 5.01, False, {"type": "reply.started", "reply_id": rid, "item_id": item}),
            ]
            for k, w in enumerate(WORDS):
                events.append(
                    (
                        base + 5.05,
                        False,
                        {
                            "type": "transcript.agent.delta",
                            "reply_id": rid,
                            "item_id": item,
                            "delta": w + " ",
                            "start_ms": k * 300,
                            "end_ms": k * 300 + 250,
                        },
                    )
                )
            ts = base + 5.02
            k = 0
            while ts < base + 8.5:
                data = out_silent if ts < base + 5.5 else out_loud[k % 8]
                events.append((ts, False, {"type": "reply.audio", "reply_id": rid, "data": data}))
                ts += 0.01
                k += 1
            events.append(
                (
                    base + 8.5,
                    False,
                    {
                        "type": "transcript.agent",
                        "reply_id": rid,
                        "item_id": item,
                        "text": " ".join(WORDS),
                        "interrupted": False,
                    },
                )
            )
            events.append(
                (base + 8.8, False, {"type": "reply.done", "reply_id": rid, "status": "completed"})
            )
            while mic_t < base + TURN_S:
                events.append(
                    (mic_t, True, {"type": "input.audio", "audio": mic[int(mic_t * 20) % 8]})
                )
                mic_t += 0.05
            events.sort(key=lambda e: e[0])
            for et, sent, ev in events:
                entry(et, sent, ev)
            t = base + TURN_S
        entry(t + 0.5, True, {"type": "session.end"})
        entry(
            t + 0.8,
            False,
            {
                "type": "session.ended",
                "session_duration_seconds": t,
                "audio_duration_seconds": None,
            },
        )
        fh.write(
            json.dumps({"at": _at(T0 + t + 0.9), "type": "close", "code": 1000, "reason": ""})
            + "\n"
        )
    return path.stat().st_size


def write_artifacts(folder: Path, seconds: float) -> None:
    import soundfile as sf

    sys.path.insert(0, str(ROOT / "tests" / "session"))
    from artifacts import SID, START_MS, metadata, speechlike, turn

    folder.mkdir(parents=True, exist_ok=True)
    n_turns = int(seconds // TURN_S)
    turns = []
    for i in range(n_turns):
        b = int(i * TURN_S * 1000) + 1000
        turns.append(
            turn(
                f"resp_{i:032x}",
                user="What about my order",
                us=b + 600,
                ue=b + 5000,
                text="Your order ships tomorrow.",
                audible=b + 6000,
                end=b + 11000,
                ttfa=990,
            )
        )
    tl = {
        "session_id": SID,
        "started_at_unix_ms": START_MS,
        "turns": turns,
        "ended": {
            "reason": "user_initiated",
            "public_reason": "client_end",
            "duration_seconds": seconds + 2.5,
        },
    }
    (folder / "timeline.json").write_text(json.dumps(tl, separators=(",", ":")))
    (folder / "metadata.json").write_text(json.dumps(metadata(), indent=2))
    rate = 48000
    voice = speechlike(5.0, rate, 3)
    user = speechlike(4.4, rate, 4)
    with sf.SoundFile(folder / "audio.ogg", "w", rate, 2, format="OGG", subtype="OPUS") as f:
        for i in range(n_turns):
            block = np.zeros((int(TURN_S * rate), 2), np.float32)
            off = int(1.0 * rate) if i == 0 else 0
            block[int(0.6 * rate) : int(5.0 * rate), 0] = user
            block[int(6.0 * rate) : int(11.0 * rate), 1] = voice
            d = int(0.12 * rate)
            block[d:, 0] += block[:-d, 1] * 0.05  # a faint echo (-26 dB)
            f.write(block[off:] if off else block)


def _load() -> str:
    try:
        a, b, c = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{a:.1f} {b:.1f} {c:.1f}"


def run_variant(variant: str, seconds: float, quick: bool, tmp: Path, art_s: float) -> bool:
    """Write one variant's log beside the artifacts in `tmp`, analyse both in a child on
    one core, print; True if within budget."""
    t = time.perf_counter()
    if variant == "capture":
        log = tmp / "capture.jsonl"
        size = write_capture(log, seconds)
        what = "capture (audio kept)"
    else:
        log = tmp / "app.jsonl"
        size = write_applog(log, seconds)
        what = "app JSON-lines log (§7.1 entries, both directions, audio kept)"
    rec_mb = (tmp / "artifacts" / "audio.ogg").stat().st_size / 1e6
    gen = time.perf_counter() - t + art_s
    cmd = [sys.executable, "-c", CHILD, str(log), str(tmp / "artifacts")]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    load_before = _load()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    finally:
        log.unlink()
    load_after = _load()
    if r.returncode:
        print(r.stderr[-2000:], file=sys.stderr)
        return False
    res = json.loads(r.stdout.strip().splitlines()[-1])
    rss = res["vmhwm_kb"] / 1024
    events = next(
        (
            int(m.group(1))
            for n in res["notes"]
            if (m := re.search(r", (\d+) (?:events|records)$", n))
        ),
        0,
    )
    per = f", {res['cpu'] / events * 1e6:.0f} µs CPU/event incl. recording" if events else ""
    print(
        f"[{variant}] session of {seconds / 60:.0f} min: {what} {size / 1e6:.0f} MB, "
        f"{events} events + timeline + stereo Ogg/Opus ({rec_mb:.0f} MB); "
        f"inputs generated in {gen:.0f} s"
    )
    print(
        f"  analysis: {res['seconds']:.1f} s on one core ({res['cpu']:.1f} s CPU){per}, "
        f"peak RSS {rss:.0f} MB "
        f"(budgets {TIME_BUDGET_S:.0f} s for an hour, {RSS_BUDGET_MB:.0f} MB); "
        f"load average {load_before} before, {load_after} after"
    )
    print(f"  sessions {res['sessions']}; problems found: {', '.join(res['problems']) or 'none'}")
    return not (rss > RSS_BUDGET_MB or (not quick and res["seconds"] > TIME_BUDGET_S))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=VARIANTS, help="run one variant (default: both)")
    args = ap.parse_args(argv)
    seconds = 300.0 if args.quick else 3600.0
    ok = True
    tmp = Path(tempfile.mkdtemp(prefix="agent-doctor-bench-session-"))
    try:
        t = time.perf_counter()
        write_artifacts(tmp / "artifacts", seconds)  # shared by the variants
        art_s = time.perf_counter() - t
        for variant in [args.only] if args.only else VARIANTS:
            ok = run_variant(variant, seconds, args.quick, tmp, art_s) and ok
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
