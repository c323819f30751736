"""Time and peak memory of `agent-doctor analyze` on a long session: a capture log with its
audio kept and the vendor's artifacts (timeline, metadata, stereo Ogg/Opus recording).

    .venv/bin/python benchmarks/bench_session.py          # one hour: ~340 MB log, 1 h Ogg/Opus
    .venv/bin/python benchmarks/bench_session.py --quick  # five minutes (CI)

The inputs are generated in a temporary folder (not committed): a conversation of 12 s
turns (4 s of user speech, a 5 s reply in 10 ms `reply.audio` chunks, `input.audio` every
50 ms all along), and a recording whose left channel carries a faint echo of the right.
The analysis runs in a child process pinned to one core (taskset, when present); peak
memory is its VmHWM. Exit status 1 if memory exceeds the budget (400 MB) or, in the full
run, if the analysis takes longer than 60 s.
"""

from __future__ import annotations

import argparse
import base64
import json
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

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from doctor.commands.analyze import analyze_paths
notes = []
found = analyze_paths(sys.argv[1:], notes)
dt = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM'))
print(json.dumps({"seconds": dt, "vmhwm_kb": hwm, "sessions": len(found), "notes": notes,
                  "problems": sorted({f"{r.id}:{r.cause}" for f in found for r in f.results
                                      if r.status.value in ("warn", "fail")})}))
"""


def write_capture(path: Path, seconds: float) -> int:
    """The capture of a session `seconds` long, audio kept; returns its size in bytes."""
    rng = np.random.default_rng(1)
    sys.path.insert(0, str(ROOT / "tests" / "session"))
    from artifacts import speechlike

    talk = (speechlike(0.4, 24000, 5) * 32767 * 0.5).astype("<i2").tobytes()
    mic = [base64.b64encode(talk[i * 2400 : (i + 1) * 2400]).decode() for i in range(8)]
    out_silent = base64.b64encode(bytes(480)).decode()
    out_loud = [
        base64.b64encode((rng.standard_normal(240) * 6000).astype("<i2").tobytes()).decode()
        for _ in range(8)
    ]
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


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    seconds = 300.0 if args.quick else 3600.0
    tmp = Path(tempfile.mkdtemp(prefix="agent-doctor-bench-session-"))
    try:
        t = time.perf_counter()
        size = write_capture(tmp / "capture.jsonl", seconds)
        write_artifacts(tmp / "artifacts", seconds)
        rec_mb = (tmp / "artifacts" / "audio.ogg").stat().st_size / 1e6
        gen = time.perf_counter() - t
        cmd = [sys.executable, "-c", CHILD, str(tmp / "capture.jsonl"), str(tmp / "artifacts")]
        if shutil.which("taskset"):
            cmd = ["taskset", "-c", "0", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if r.returncode:
            print(r.stderr[-2000:], file=sys.stderr)
            return 1
        res = json.loads(r.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rss = res["vmhwm_kb"] / 1024
    print(
        f"session of {seconds / 60:.0f} min: capture {size / 1e6:.0f} MB (audio kept) + "
        f"timeline + stereo Ogg/Opus ({rec_mb:.0f} MB); inputs generated in {gen:.0f} s"
    )
    print(
        f"  analysis: {res['seconds']:.1f} s on one core, peak RSS {rss:.0f} MB "
        f"(budgets {TIME_BUDGET_S:.0f} s for an hour, {RSS_BUDGET_MB:.0f} MB)"
    )
    print(f"  sessions {res['sessions']}; problems found: {', '.join(res['problems']) or 'none'}")
    bad = rss > RSS_BUDGET_MB or (not args.quick and res["seconds"] > TIME_BUDGET_S)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
