"""Where the time goes in `agent-doctor all --timeout 3` against a silent endpoint.

    .venv/bin/python benchmarks/bench_stalled_peer.py          # 10 runs
    .venv/bin/python benchmarks/bench_stalled_peer.py --quick  # 3 runs (CI)

Issue 13: every verdict within `--timeout` + 2 s of the stage that stalled, and the whole
run in under 5 s. A real listener on loopback accepts and never answers (the TLS
handshake stalls); the CLI runs as users run it, in a subprocess. Per run: start-up to
the listener's accept (interpreter, imports, the CA store, the checks' start), accept to
exit (the stall's own wait plus what follows the verdict), the whole wall time, and the
load average, since the start-up share grows with it. Exit status 1 if the stall-to-exit
part exceeds the timeout + 2 s; wall times are reported, not asserted (machines differ).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time

TIMEOUT_S = 3.0


def silent_listener() -> tuple[socket.socket, list[float]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[float] = []
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed: the benchmark is over
            accepted.append(time.monotonic())
            held.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    return listener, accepted


def one_run(port: int, accepted: list[float]) -> dict[str, float]:
    url = f"127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSEMBLYAI_")}
    env["PULSE_SERVER"] = "unix:/nonexistent/agent-doctor-bench"  # audio checks end at once
    seen = len(accepted)
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable, "-m", "doctor", "all", "--ws-url", f"wss://{url}/v1/ws",
            "--token-url", f"https://{url}/v1/token", "--api-key", secrets.token_hex(16),
            "--timeout", f"{TIMEOUT_S:g}", "--json",
        ],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    end = time.monotonic()
    report = json.loads(proc.stdout)
    wss = next(c for c in report["checks"] if c["id"] == "wss")
    if wss["cause"] != "timeout" or len(accepted) != seen + 1:
        raise SystemExit(f"unexpected run: {wss['cause']}, {len(accepted) - seen} connections")
    stall = accepted[seen]
    return {
        "load": load,
        "startup_s": stall - t0,
        "stall_to_exit_s": end - stall,
        "wall_s": end - t0,
        "wss_ms": float(wss["duration_ms"]),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs instead of 10")
    runs = 3 if parser.parse_args(argv).quick else 10
    listener, accepted = silent_listener()
    try:
        rows = [one_run(listener.getsockname()[1], accepted) for _ in range(runs)]
    finally:
        listener.close()
    print(f"`agent-doctor all --timeout {TIMEOUT_S:g}` against a silent listener, {runs} runs")
    print(f"{'load':>5} {'start-up s':>10} {'stall->exit s':>13} {'wall s':>7} {'wss ms':>7}")
    for r in rows:
        print(
            f"{r['load']:5.2f} {r['startup_s']:10.2f} {r['stall_to_exit_s']:13.2f} "
            f"{r['wall_s']:7.2f} {r['wss_ms']:7.0f}"
        )
    walls = [r["wall_s"] for r in rows]
    worst_stall = max(r["stall_to_exit_s"] for r in rows)
    print(
        f"wall median {statistics.median(walls):.2f} s, max {max(walls):.2f} s; "
        f"stall->exit max {worst_stall:.2f} s (bound {TIMEOUT_S + 2:g} s)"
    )
    return 1 if worst_stall > TIMEOUT_S + 2 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
