"""What recording a session costs the sandbox: CPU per minute of session and peak memory.

    .venv/bin/python benchmarks/bench_sandbox_recording.py          # a 10-minute session
    .venv/bin/python benchmarks/bench_sandbox_recording.py --quick  # one minute (CI)

The sandbox records every session it runs (stereo Ogg/Opus, written as it goes) on its
event loop, so the cost per chunk is what matters: the agent's `reply.audio` every 10 ms
and the client's `input.audio` every 20 ms, fed here as fast as the recorder takes them on
a simulated clock. Peak memory: what Python and numpy allocated while recording
(tracemalloc).
Exit status 1 if recording takes more than 15 % of one core (a real-time factor above
0.15: a busy CI machine included) or holds more than 50 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RTF_BUDGET = 0.15
MEMORY_BUDGET_MB = 50.0

CHILD = r"""
import json, os, sys, time
import numpy as np
from doctor.sandbox.recorder import Recorder, warm_up
from doctor.sandbox.audio import synth_voice

import tracemalloc

warm_up()
seconds, path = float(sys.argv[1]), sys.argv[2]
voice = synth_voice(5.0, seed=1)
user = (synth_voice(4.0, seed=2) * 0.5).astype(np.int16)
t0 = 1_800_000_000.0


def record(traced):
    if traced:
        tracemalloc.start()
    rec = Recorder(path, t0)
    cpu = time.process_time()
    agent_at, user_at = 0.0, 0.0
    while agent_at < seconds:
        i = int(agent_at * 100) % 500
        rec.agent(voice[i * 240 : (i + 1) * 240], t0 + agent_at)
        agent_at += 0.01
        if user_at <= agent_at:
            j = int(user_at * 50) % 200
            rec.user(user[j * 480 : (j + 1) * 480], 24000, t0 + user_at)
            user_at += 0.02
    rec.close(t0 + seconds + 0.3)
    return time.process_time() - cpu


cpu = record(False)  # timed alone: tracemalloc slows allocation
record(True)  # the same again for the memory peak
peak = tracemalloc.get_traced_memory()[1] / 1e6
print(json.dumps({"cpu_s": cpu, "rss_mb": peak, "bytes": os.path.getsize(path)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one minute instead of ten")
    args = parser.parse_args()
    seconds = 60.0 if args.quick else 600.0
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(seconds), str(Path(tmp) / "audio.ogg")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    if out.returncode:
        print(out.stderr[-2000:], file=sys.stderr)
        return 1
    got = json.loads(out.stdout)
    rtf = got["cpu_s"] / seconds
    print(f"session            {seconds / 60:.0f} min (agent 10 ms chunks, client 20 ms)")
    print(f"recording CPU      {got['cpu_s']:.2f} s  (real-time factor {rtf:.4f})")
    print(f"peak memory added  {got['rss_mb']:.1f} MB")
    kbit = got["bytes"] * 8 / seconds / 1000
    print(f"Ogg/Opus file      {got['bytes'] / 1e6:.1f} MB ({kbit:.0f} kbit/s)")
    ok = rtf <= RTF_BUDGET and got["rss_mb"] <= MEMORY_BUDGET_MB
    print("within budget" if ok else f"over budget (rtf {RTF_BUDGET}, {MEMORY_BUDGET_MB} MB)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
