"""Click-to-report time of `agent-doctor browser` in real engines, on a clean setup.

    .venv/bin/python benchmarks/bench_browser_round_trip.py          # 3 engines x 3 runs
    .venv/bin/python benchmarks/bench_browser_round_trip.py --quick  # Chromium x 1 (CI)

Each run: a plain-ws sandbox, a private PulseAudio (the microphone hears a room tone, the
speaker is a null sink), the CLI with --no-open, the engine headless clicking Start. Times:
click -> the page shows the CLI's verdicts, and click -> the CLI has printed the merged
report and exited (the echo test included). Exit status 1 if a median exceeds the issue's
budget of 30 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "browser")]
BUDGET_S = 30.0


@contextlib.contextmanager
def sandbox() -> Iterator[dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "doctor", "sandbox", "--no-tls"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def room() -> Iterator[dict[str, str]]:
    from pulse_fixture import private_pulse, tone_into

    with private_pulse() as pa:
        pa.load_module("module-null-sink", "sink_name=room", "rate=48000", "channels=1")
        pa.load_module("module-remap-source", "master=room.monitor", "source_name=room_mic")
        pa.pactl("set-default-source", "room_mic")
        with tone_into(pa, sink="room", freq_hz=300.0, amplitude=0.05, seconds=900):
            yield pa.client_env(PULSE_SOURCE="room_mic")


def launcher(engine: str, env: dict[str, str]) -> Any:
    from browsers import chromium, firefox, webkit

    if engine == "chromium":
        return chromium(env=env, permissions=["microphone"], audible=True)
    if engine == "firefox":
        return firefox(env=env)
    return webkit(env=env, mock_capture=False)


def one_run(engine: str, env: dict[str, str], sb: dict[str, Any]) -> tuple[float, float, str]:
    from pagerun import start_cli

    cli_env = {**env, "ASSEMBLYAI_API_KEY": sb["api_keys"][0]}
    cli = start_cli(
        ["--ws-url", sb["ws_url"], "--token-url", sb["token_url"], "--timeout", "120", "-v"],
        cli_env,
    )
    try:
        with launcher(engine, env) as driver:
            driver.goto(cli.url)
            driver.wait_for("window.__doctorReady === true", 30)
            t0 = time.monotonic()
            driver.click("#start")
            try:
                driver.wait_for("window.__doctorDone", 120)
            except Exception as exc:
                from pagerun import page_state

                raise RuntimeError(
                    f"{engine}: the page did not finish: {page_state(driver)}"
                ) from exc
            page_s = time.monotonic() - t0
        report, _, _ = cli.finish(120)
        cli_s = time.monotonic() - t0
    except BaseException as exc:
        cli.proc.kill()
        _, err = cli.proc.communicate()
        exc.add_note(f"CLI stderr: {err[-3000:]}")
        raise
    bad = [c["id"] for c in report["checks"] if c["status"] != "pass"]
    return page_s, cli_s, ", ".join(bad) or "all pass"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="Chromium, one run")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--engines", default=None, help="comma-separated: chromium,firefox,webkit")
    args = ap.parse_args()
    engines = ["chromium"] if args.quick else ["chromium", "firefox", "webkit"]
    if args.engines:
        engines = args.engines.split(",")
    runs = args.runs or (1 if args.quick else 3)
    rows = []
    failed = False
    with room() as env, sandbox() as sb:
        for engine in engines:
            page, cli, notes = [], [], set()
            for _ in range(runs):
                p, c, n = one_run(engine, env, sb)
                page.append(p)
                cli.append(c)
                notes.add(n)
            med = statistics.median(cli)
            failed |= med > BUDGET_S
            rows.append((engine, runs, statistics.median(page), med, max(cli), "; ".join(notes)))
    print(
        f"{'engine':<9} {'runs':>4} {'click->page s':>14} {'click->report s':>16} "
        f"{'max s':>6}  checks"
    )
    for engine, n, p, c, mx, notes in rows:
        print(f"{engine:<9} {n:>4} {p:>14.1f} {c:>16.1f} {mx:>6.1f}  {notes}")
    if failed:
        print(f"FAIL: a median click-to-report time exceeds {BUDGET_S:g} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
