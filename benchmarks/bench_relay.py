"""The relay's cost: added latency per frame, and many sessions at real-time pace on one core.

Runs `agent-doctor watch` as users do (a process, analysis on, capture written) between
load-generating apps (this process) and a fake service (a subprocess) on loopback.

Judged, where it can run: the wire measure (wire.py). The benchmark re-runs itself in a
private user+network namespace (`unshare -rn`), captures lo while the relay runs, and
times every data frame of every session, both ways, from the kernel's stamp on the packet
that brought its last byte to the relay to the stamp on the packet that took its last byte
out: the relay's added latency per frame, including the time the frame waited in the
relay's socket before the relay woke (what the relay's own figure misses), and nothing of
the apps', the fake service's or their core's delays (which the round trips below count as
the relay's). It does count the time the relay holds a side's frames back because the
other side does not read (backpressure passed on, as it must be): under a service that
falls behind, that is the service's delay. A capture that lost a packet (the kernel's
drop count, a hole in a stream) or a frame that does not pair is reported, not judged.
Where namespaces are not allowed (or with --no-netns) it says so and judges the round
trips, as below.

1. latency: one session through the relay and one direct, probing alternately (one
   `input.audio`-sized probe every 5 ms, the order swapped each tick, so both paths see the
   same machine); the fake service answers each with a `reply.audio`-sized frame at once.
   The latency added per frame (one relay crossing), judged (without the wire measure)
   against the targets: each relay round trip less the median direct one, halved. It
   counts every bit of the machine's noise as the relay's, so it can only overstate.
   Shown beside it, as the other side of the bracket: half the difference between the
   same percentile of the relay and the direct round trips (a shift of the distributions,
   not a per-frame figure: percentiles do not subtract, so it can understate the tail),
   the relay's own
   receive-to-write time (its report), and, from /proc schedstat per probe, how long the
   relay's thread waited on the run queue and how much CPU its worker used: where the
   slowest 1% of probes lost their time. Then, with the wire measure (not judged; skip
   with --no-control), the control: the same probes through a bare asyncio TCP forwarder
   on the relay's core, timed at the wire the same way: the floor this machine's loopback
   and scheduler put under any forwarding process (on a VM whose host takes its vCPUs
   away for milliseconds, that floor can sit above the targets).
2. load: N sessions at real-time pace, audio both ways (50 ms `input.audio` every 50 ms,
   10 ms `reply.audio` every 10 ms). The relay (and its analysis worker) are pinned to one
   core, the generators to the other. Every frame is counted at both ends; one-way latency
   (monotonic send stamp in each frame) through the relay against the same load direct,
   judged (without the wire measure) as the p99 shift (via p99 - direct p99: the two runs
   cannot be paired frame by frame), with the per-frame upper bound (each via frame less
   the direct median) beside it; peak memory of the relay and its worker (VmHWM).

    python benchmarks/bench_relay.py [--quick] [--sessions N] [--seconds S] [--probes N]
        [--audio summary|keep] [--only latency|load] [--no-netns] [--gc-log] [--slice-us N]

--gc-log and --slice-us (for A/B runs; -1: the relay's own short slice off) start the
relay through relay_instrument.py: its GC pauses timed, or its scheduler slice set.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import wire
from tabulate import tabulate

URL_RE = re.compile(r"->\s+(ws://127\.0\.0\.1:\d+/v1/ws)")
IN_CHUNK = 2400  # 50 ms of PCM16 at 24 kHz
OUT_CHUNK = 480  # 10 ms
TARGETS = {"p50_ms": 0.5, "p99_ms": 2.0, "load_p99_ms": 5.0, "memory_mb": 300.0}


def _audio(n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    x = (rng.normal(0, 0.05, n // 2) * 32767).astype("<i2").tobytes()
    return base64.b64encode(x).decode()


# --- a bare TCP forwarder: the control (a subprocess) -------------------------------------


async def bare_forwarder(port_file: str, service_port: int) -> None:
    """Bytes from each connection to the fake service and back, nothing else: what this
    machine's loopback and scheduler add to any process that forwards (the control for the
    wire measure). It asks for the relay's short scheduler slice, as the relay does."""
    from doctor.watch.sched import short_slice

    short_slice()

    async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await r.read(1 << 16):
                w.write(data)
                await w.drain()
        with contextlib.suppress(Exception):
            w.close()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", service_port)
        await asyncio.gather(pump(r, uw), pump(ur, w))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))
    await server.serve_forever()


class Forwarder:
    """The bare forwarder as a process, on the relay's core."""

    def __init__(self, tmp: str, service_port: int, cpu: str | None) -> None:
        port_file = os.path.join(tmp, "forwarder-port")
        cmd = [sys.executable, __file__, "--bare-forwarder", port_file, str(service_port)]
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            cmd = ["taskset", "-c", cpu, *cmd]
        self.proc = subprocess.Popen(cmd, start_new_session=True)
        STARTED.append(self.proc)
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file) or not Path(port_file).read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the bare forwarder did not start")
            time.sleep(0.02)  # another process's file: no event to wait on
        self.port = int(Path(port_file).read_text())
        self.url = f"ws://127.0.0.1:{self.port}/v1/ws"


def control_rows(
    tmp: str, direct: str, service_port: int, cpu: str | None, probes: int
) -> list[list[str]]:
    """The same probes through the bare forwarder, timed at the wire: not judged, the floor
    under any forwarder's figures on this machine (percentiles do not subtract)."""
    ctl = Wire(True, tmp, "ctl")
    if ctl.capture is None:
        return [["control (bare forwarder)", "not available", ctl.why]]
    fwd = Forwarder(tmp, service_port, cpu)
    asyncio.run(probe_pairs(direct, fwd.url, probes, None))
    stats = ctl.capture.stop()
    fwd.proc.terminate()
    fwd.proc.wait(10)
    res = wire.measure(ctl.capture.path, fwd.port, service_port)
    sm = wire.summary(res.up + res.down)
    whole = stats.get("kernel_drops") == 0 and not (res.gaps or res.unpaired or res.changed)
    return [
        [
            "control, not judged: a bare TCP forwarder on the same core, at the wire, "
            "both ways p50 / p99 / max (ms), n",
            f"{sm['p50']:.3f} / {sm['p99']:.3f} / {sm['max']:.3f}, {sm['n']}",
            "" if whole else "incomplete capture",
        ]
    ]


# --- the fake service (a subprocess) -----------------------------------------------------


async def fake_service(port_file: str) -> None:
    from websockets.asyncio.server import serve

    async def handler(ws: Any) -> None:
        session = f"sess_{id(ws):032x}"[:37]
        state: dict[str, Any] = {"lat": [], "frames": 0, "talk": None}
        reply = _audio(OUT_CHUNK, 2)

        async def talk(seconds: float) -> None:
            t0 = time.monotonic()
            i = 0
            while time.monotonic() - t0 < seconds:
                msg = {"type": "reply.audio", "data": reply, "ts": time.monotonic()}
                await ws.send(json.dumps(msg))
                i += 1
                delay = t0 + i * 0.01 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await ws.send(json.dumps({"type": "talk.done", "sent": i}))

        async for raw in ws:
            msg = json.loads(raw)
            kind = msg.get("type")
            if kind == "session.update":
                await ws.send(json.dumps({"type": "session.ready", "session_id": session}))
                seconds = (msg.get("session") or {}).get("bench_talk_s")
                if seconds:
                    state["talk"] = asyncio.ensure_future(talk(float(seconds)))
            elif kind == "input.audio" and "probe" in msg:
                await ws.send(json.dumps({"type": "reply.audio", "data": reply, "ts": msg["ts"]}))
            elif kind == "input.audio":
                state["frames"] += 1
                state["lat"].append(time.monotonic() - msg["ts"])
            elif kind == "session.end":
                if state["talk"] is not None:
                    await state["talk"]
                await ws.send(
                    json.dumps(
                        {"type": "session.ended", "frames": state["frames"], "lat": state["lat"]}
                    )
                )
                await ws.close()
                return

    async with serve(handler, "127.0.0.1", 0, max_size=2**24, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        Path(port_file).write_text(str(port))
        await asyncio.Future()


# --- the apps ------------------------------------------------------------------------------


async def _probe(ws: Any, payload: str, i: int) -> float:
    """One probe's round trip (s): an `input.audio`-sized frame out, the reply back."""
    sent = time.monotonic()
    await ws.send(json.dumps({"type": "input.audio", "audio": payload, "probe": i, "ts": sent}))
    while True:
        msg = json.loads(await ws.recv())
        if msg.get("type") == "reply.audio":
            return time.monotonic() - sent


def _sched_ns(tid_paths: list[str]) -> tuple[int, int]:
    """CPU time and run-queue wait (ns) summed over threads, from /proc/.../schedstat."""
    cpu = wait = 0
    for path in tid_paths:
        with contextlib.suppress(OSError, ValueError, IndexError), open(path) as fh:
            fields = fh.read().split()
            cpu += int(fields[0])
            wait += int(fields[1])
    return cpu, wait


def _threads(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return [f"/proc/{pid}/task/{t}/schedstat" for t in os.listdir(f"/proc/{pid}/task")]
    return []


async def probe_pairs(
    direct_url: str, relay_url: str, count: int, relay_pid: int | None
) -> dict[str, list[float]]:
    """Interleaved probes, one every 5 ms alternately direct and through the relay (the
    order swapped every tick), so that both round trips see the same machine: their
    difference is the relay's, not the noise of a different minute. Per relay probe, from
    /proc schedstat: how long the relay's event-loop thread waited on the run queue, and
    how much CPU its worker process used, to say where a slow probe's time went."""
    from websockets.asyncio.client import connect

    payload = _audio(IN_CHUNK, 1)
    out: dict[str, list[float]] = {"direct": [], "relay": [], "relay_wait": [], "worker_cpu": []}
    main_thread = [f"/proc/{relay_pid}/task/{relay_pid}/schedstat"] if relay_pid else []
    worker = [t for c in _children(relay_pid) for t in _threads(c)] if relay_pid else []
    kw: dict[str, Any] = {
        "additional_headers": {"Authorization": "bench-key"},
        "max_size": 2**24,
        "compression": None,
        "proxy": None,
    }
    async with connect(direct_url, **kw) as d, connect(relay_url, **kw) as r:
        for ws in (d, r):
            await ws.send(json.dumps({"type": "session.update", "session": {}}))
            await ws.recv()
        t0 = time.monotonic()
        k = 0
        for i in range(count):
            for which in ("direct", "relay") if i % 2 else ("relay", "direct"):
                k += 1
                if which == "direct":
                    out["direct"].append(await _probe(d, payload, i))
                else:
                    _, w0 = _sched_ns(main_thread)
                    c0, _ = _sched_ns(worker)
                    out["relay"].append(await _probe(r, payload, i))
                    _, w1 = _sched_ns(main_thread)
                    c1, _ = _sched_ns(worker)
                    out["relay_wait"].append((w1 - w0) / 1e6)
                    out["worker_cpu"].append((c1 - c0) / 1e6)
                delay = t0 + k * 0.005 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
        for ws in (d, r):
            await ws.send(json.dumps({"type": "session.end"}))
            with contextlib.suppress(Exception):
                while json.loads(await ws.recv()).get("type") != "session.ended":
                    pass
    return out


async def realtime_session(url: str, seconds: float, seed: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    payload = _audio(IN_CHUNK, seed)
    out: dict[str, Any] = {"sent": 0, "got": 0, "lat": [], "service_sent": None}
    async with connect(
        url,
        additional_headers={"Authorization": "bench-key"},
        max_size=2**24,
        compression=None,
        proxy=None,
        open_timeout=30,
    ) as ws:
        await ws.send(json.dumps({"type": "session.update", "session": {"bench_talk_s": seconds}}))
        await ws.recv()
        done = asyncio.get_running_loop().create_future()

        async def read() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "reply.audio":
                    out["got"] += 1
                    out["lat"].append(time.monotonic() - msg["ts"])
                elif kind == "talk.done":
                    out["service_sent"] = msg["sent"]
                elif kind == "session.ended":
                    out["service_got"] = msg["frames"]
                    out["up_lat"] = msg["lat"]
                    done.set_result(None)
                    return

        reader = asyncio.ensure_future(read())
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < seconds:
            await ws.send(
                json.dumps({"type": "input.audio", "audio": payload, "ts": time.monotonic()})
            )
            out["sent"] += 1
            i += 1
            delay = t0 + i * 0.05 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await ws.send(json.dumps({"type": "session.end"}))
        await asyncio.wait_for(done, 60)
        reader.cancel()
    return out


async def load(url: str, sessions: int, seconds: float) -> list[dict[str, Any]]:
    async def one(i: int) -> dict[str, Any]:
        await asyncio.sleep(i * 0.02)  # stagger the starts a little, as real users do
        return await realtime_session(url, seconds, i + 10)

    return list(await asyncio.gather(*(one(i) for i in range(sessions))))


# --- the relay -----------------------------------------------------------------------------


class Watch:
    def __init__(
        self, upstream_port: int, sessions: int, cpu: str | None, capture: str, audio: str
    ) -> None:
        self.gc_log = capture + ".gc.json" if INSTRUMENT["gc"] else "-"
        launch = ["-m", "doctor"]
        if INSTRUMENT["gc"] or INSTRUMENT["slice_us"]:
            here = os.path.dirname(os.path.abspath(__file__))
            wrapper = os.path.join(here, "relay_instrument.py")
            launch = [wrapper, self.gc_log, str(INSTRUMENT["slice_us"]), "--"]
        cmd = [
            sys.executable,
            *launch,
            "watch",
            "--ws-url",
            f"ws://127.0.0.1:{upstream_port}/v1/ws",
            "--sessions",
            str(sessions),
            "--json",
            "--capture",
            capture,
            "--audio",
            audio,
        ]
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            cmd = ["taskset", "-c", cpu, *cmd]
        # its own session, as from its own terminal: under Linux autogroup scheduling the
        # relay then gets its own share of the CPU instead of a part of the generators' one
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        STARTED.append(self.proc)
        self.url = ""
        self.err: list[str] = []
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.url:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.err.append(line)
            m = URL_RE.search(line)
            if m:
                self.url = m.group(1)
        if not self.url:
            raise RuntimeError("watch did not start: " + "".join(self.err))
        self.slice_ms = "?"  # the relay thread's scheduler slice (Linux: /proc/PID/sched)
        with contextlib.suppress(OSError, ValueError), open(f"/proc/{self.proc.pid}/sched") as fh:
            for line in fh:
                if line.startswith("se.slice"):
                    self.slice_ms = f"{int(line.split(':')[1]) / 1e6:g}"
        self.peak_kb: dict[int, int] = {}
        self.cpu_s: dict[int, float] = {}  # CPU seconds used so far, per process
        self.cpu0_s: dict[int, float] = {}  # at the first sample: start-up is not counted

    def sample_memory(self) -> None:
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            rss = _status_kb(pid, "VmHWM")
            if rss:
                self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), rss)
            cpu = _cpu_s(pid)
            if cpu is not None:
                self.cpu_s[pid] = cpu
                self.cpu0_s.setdefault(pid, cpu)

    def cpu_used(self, pid: int) -> float:
        return self.cpu_s.get(pid, 0.0) - self.cpu0_s.get(pid, 0.0)

    def report(self) -> dict[str, Any]:
        out, err = self.proc.communicate(timeout=300)
        self.err.append(err)
        return json.loads(out)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(x) for x in fh.read().split()]
    return out


def _cpu_s(pid: int) -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return None


def _status_kb(pid: int, field: str) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def tail_attribution(rtt: list[float], wait: list[float], cpu: list[float]) -> dict[str, float]:
    """Mean relay run-queue wait and worker CPU (ms) over all probes and over the slowest 1%."""
    n = max(1, len(rtt) // 100)
    worst = sorted(range(len(rtt)), key=rtt.__getitem__)[-n:]

    def mean(xs: list[float]) -> float:
        return float(np.mean(xs)) if xs else float("nan")

    return {
        "wait_all": mean(wait),
        "wait_tail": mean([wait[k] for k in worst]),
        "worker_all": mean(cpu),
        "worker_tail": mean([cpu[k] for k in worst]),
    }


STARTED: list[subprocess.Popen[Any]] = []  # the relays and captures this run started


def stop_started() -> None:
    """Whatever a phase that failed left running: no orphan holds the output pipe open."""
    for proc in STARTED:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


class Wire:
    """The wire measure around one phase: the capture of lo while the relay runs, then
    the added latency per frame from the kernel's packet stamps (see wire.py)."""

    def __init__(self, enabled: bool, tmp: str, name: str) -> None:
        self.capture: wire.Capture | None = None
        self.res: wire.Paired | None = None
        self.why = "" if enabled else WIRE_OFF[0]
        if enabled:
            try:
                self.capture = wire.Capture(__file__, os.path.join(tmp, f"{name}.lo"))
                STARTED.append(self.capture.proc)
            except (OSError, RuntimeError) as exc:
                self.why = f"capture failed: {exc}"

    def rows(
        self, relay_url: str, service_port: int, p50: float | None, p99: float
    ) -> tuple[list[list[str]], bool | None]:
        """Table rows, and whether the targets were met (None: no complete measure)."""
        if self.capture is None:
            return [["wire measure", "not available", self.why]], None
        stats = self.capture.stop()
        relay_port = int(relay_url.rsplit(":", 1)[1].split("/")[0])
        res = self.res = wire.measure(self.capture.path, relay_port, service_port)
        drops = stats.get("kernel_drops")
        complete = drops == 0 and not res.gaps and not res.unpaired and not res.changed
        rows: list[list[str]] = []
        for label, values in (("app->service", res.up), ("service->app", res.down)):
            sm = wire.summary(values)
            rows.append(
                [
                    f"wire: added per frame {label} p50 / p99 / max (ms), n",
                    f"{sm['p50']:.3f} / {sm['p99']:.3f} / {sm['max']:.3f}, {sm['n']}",
                    "",
                ]
            )
        both = wire.summary(res.up + res.down)
        ok = (p50 is None or both["p50"] < p50) and both["p99"] < p99
        target = f"< {p50} / < {p99}" if p50 is not None else f"- / < {p99}"
        rows.append(
            [
                "wire: added per frame, both ways p50 / p99 / max (ms)",
                f"{both['p50']:.3f} / {both['p99']:.3f} / {both['max']:.3f}",
                target,
                met(ok) if complete else "not judged: incomplete",
            ]
        )
        rows.append(
            [
                "wire: sessions; capture drops; stream gaps; unpaired / changed frames",
                f"{res.sessions}; {drops}; {res.gaps}; {res.unpaired} / {res.changed}",
                "0; 0; 0 / 0",
                "" if complete else "INCOMPLETE",
            ]
        )
        return rows, (ok if complete else None)


WIRE_OFF = ["not in a private network namespace"]
INSTRUMENT: dict[str, Any] = {"gc": False, "slice_us": 0}  # bench-only A/B knobs


def wire_tail(res: wire.Paired | None, probes: int, got: dict[str, list[float]]) -> list[list[str]]:
    """Where the wire's slowest 1% of probes (in + out at the relay) lost their time: the
    relay thread's run-queue wait and its worker's CPU during those probes, against all.
    The relay's k-th frame each way is probe k-1 (the first is session.update/ready)."""
    if res is None or len(res.up) < probes + 1 or len(res.down) < probes + 1:
        return []
    per_probe = [res.up[i + 1] + res.down[i + 1] for i in range(probes)]
    tail = tail_attribution(per_probe, got["relay_wait"], got["worker_cpu"])
    return [
        [
            "wire: relay run-queue wait / worker CPU per probe, all / slowest 1% (ms)",
            f"{tail['wait_all']:.3f} / {tail['wait_tail']:.3f}; "
            f"{tail['worker_all']:.3f} / {tail['worker_tail']:.3f}",
            "",
        ]
    ]


def gc_row(watch: Watch, t0: float, t1: float) -> list[list[str]]:
    """The relay's GC pauses (--gc-log) between t0 and t1 (monotonic: while the sessions
    ran; not the report at the end): count, total, largest, over 0.5 ms, per generation."""
    if watch.gc_log == "-":
        return []
    try:
        log = json.loads(Path(watch.gc_log).read_text())
    except (OSError, ValueError):
        return [["relay GC pauses", "no log", ""]]
    parts = []
    for gen in (0, 1, 2):
        ms = [p[2] for p in log if p[1] == gen and t0 <= p[0] <= t1]
        parts.append(
            f"gen{gen}: {len(ms)} / {sum(ms):.1f} / {max(ms, default=0):.2f} / "
            f"{sum(1 for x in ms if x > 0.5)}"
        )
    return [["relay GC pauses in the run: n / total ms / max ms / over 0.5 ms", "; ".join(parts)]]


def met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def loadavg() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


async def _with_memory(watch: Watch, coro: Any) -> Any:
    task = asyncio.ensure_future(coro)
    while not task.done():
        watch.sample_memory()
        await asyncio.wait({task}, timeout=0.5)
    watch.sample_memory()
    return task.result()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sessions", type=int)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--probes", type=int)
    ap.add_argument("--audio", choices=("summary", "keep"), default="summary")
    ap.add_argument("--only", choices=("latency", "load"), help="one part only")
    ap.add_argument(
        "--no-netns", action="store_true", help="no private namespace: round trips only"
    )
    ap.add_argument(
        "--latency-any-core",
        action="store_true",
        help="latency phase: the relay on any core (default: core 0, with its worker)",
    )
    ap.add_argument("--gc-log", action="store_true", help="time the relay's GC pauses")
    ap.add_argument(
        "--slice-us",
        type=int,
        default=0,
        help="the relay's scheduler slice from its start; -1: its own short slice off (A/B)",
    )
    ap.add_argument(
        "--no-control",
        action="store_true",
        help="latency phase: skip the control (the same probes through a bare TCP forwarder)",
    )
    ap.add_argument("--fake-service", metavar="PORT_FILE", help=argparse.SUPPRESS)
    ap.add_argument(
        "--bare-forwarder", nargs=2, metavar=("PORT_FILE", "PORT"), help=argparse.SUPPRESS
    )
    ap.add_argument("--capture-lo", metavar="FILE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.fake_service:
        asyncio.run(fake_service(args.fake_service))
        return 0
    if args.bare_forwarder:
        asyncio.run(bare_forwarder(args.bare_forwarder[0], int(args.bare_forwarder[1])))
        return 0
    if args.capture_lo:
        return wire.capture_main(args.capture_lo)
    INSTRUMENT.update(gc=args.gc_log, slice_us=args.slice_us)
    if args.no_netns:
        WIRE_OFF[0] = "--no-netns"
    else:
        rc = wire.enter_namespace([__file__, *sys.argv[1:]])
        if rc is not None:
            return rc
        if not os.environ.get(wire.NETNS_ENV):
            WIRE_OFF[0] = "unshare -rn not allowed here"
    wire_on = bool(os.environ.get(wire.NETNS_ENV))
    if wire_on:
        why = wire.loopback_up()
        if why:
            print(f"bench_relay: {why}", file=sys.stderr)
            return 1
    sessions = args.sessions or (10 if args.quick else 50)
    seconds = args.seconds or (5.0 if args.quick else 30.0)
    probes = args.probes or (300 if args.quick else 2000)
    two_cores = (os.cpu_count() or 1) >= 2
    relay_cpu, gen_cpu = ("0", 1) if two_cores else (None, None)
    # the latency phase's relay: on core 0 with its worker (as the load phase, where the
    # issue asks for one core), or, with --latency-any-core, on any core as users run it
    lat_cpu = f"0-{(os.cpu_count() or 1) - 1}" if args.latency_any_core else relay_cpu
    if gen_cpu is not None:
        os.sched_setaffinity(0, {gen_cpu})
    tmp = tempfile.mkdtemp(prefix="bench-relay-")
    port_file = os.path.join(tmp, "port")
    service = subprocess.Popen([sys.executable, __file__, "--fake-service", port_file])
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file) or not Path(port_file).read_text():
            if time.monotonic() > deadline:
                raise RuntimeError("the fake service did not start")
            time.sleep(0.05)  # waiting for another process's file: no event to wait on
        port = int(Path(port_file).read_text())
        direct = f"ws://127.0.0.1:{port}/v1/ws"
        timing_ok = True

        # 1. latency per frame
        if args.only == "load":
            return run_load(
                args, port, direct, sessions, seconds, relay_cpu, tmp, two_cores, wire_on=wire_on
            )
        load_before = loadavg()
        at_wire = Wire(wire_on, tmp, "lat")
        watch = Watch(port, 1, lat_cpu, os.path.join(tmp, "lat.jsonl"), args.audio)
        t_run = time.monotonic()
        got = asyncio.run(probe_pairs(direct, watch.url, probes, watch.proc.pid))
        t_end = time.monotonic()
        rep = watch.report()
        wire_rows, wire_ok = at_wire.rows(watch.url, port, TARGETS["p50_ms"], TARGETS["p99_ms"])
        relay = next(c for c in rep["checks"] if c["id"] == "watch-relay")["evidence"]
        base, via = got["direct"], got["relay"]
        # judged (an upper bound): each relay round trip less the median direct one,
        # halved, all noise counted as the relay's; shown beside it (a lower bracket, not
        # per frame): half the difference of the same quantile of the two round trips
        floor = statistics.median(base)
        per_frame = [max(0.0, (r - floor) / 2) * 1000 for r in via]
        added50, added99 = pct(per_frame, 50), pct(per_frame, 99)
        shift50 = (pct(via, 50) - pct(base, 50)) / 2 * 1000
        shift99 = (pct(via, 99) - pct(base, 99)) / 2 * 1000
        tail = tail_attribution(via, got["relay_wait"], got["worker_cpu"])
        rows = [
            [
                "direct round trip p50 / p99 (ms)",
                f"{pct(base, 50) * 1000:.3f} / {pct(base, 99) * 1000:.3f}",
                "",
            ],
            [
                "relay round trip p50 / p99 (ms)",
                f"{pct(via, 50) * 1000:.3f} / {pct(via, 99) * 1000:.3f}",
                "",
            ],
            [
                "added per frame p50 (ms): (relay - median direct) / 2",
                f"{added50:.3f}",
                f"< {TARGETS['p50_ms']}",
                met(added50 < TARGETS["p50_ms"]),
            ],
            [
                "added per frame p99 (ms): (relay - median direct) / 2",
                f"{added99:.3f}",
                f"< {TARGETS['p99_ms']}",
                met(added99 < TARGETS["p99_ms"]),
            ],
            [
                "quantile shift p50 / p99 (ms): (relay pNN - direct pNN) / 2, not per frame",
                f"{shift50:.3f} / {shift99:.3f}",
                f"< {TARGETS['p50_ms']} / < {TARGETS['p99_ms']}",
                met(shift50 < TARGETS["p50_ms"] and shift99 < TARGETS["p99_ms"]),
            ],
            [
                "relay's own time p50 / p99 (ms)",
                f"{relay['added_latency_p50_ms']} / {relay['added_latency_p99_ms']}",
                "",
            ],
            [
                "relay run-queue wait per probe: all mean / slowest 1% mean (ms)",
                f"{tail['wait_all']:.3f} / {tail['wait_tail']:.3f}",
                "",
            ],
            [
                "worker CPU per probe: all mean / slowest 1% mean (ms)",
                f"{tail['worker_all']:.3f} / {tail['worker_tail']:.3f}",
                "",
            ],
            [
                "frames analysed / skipped",
                f"{relay['analysed_records']} / {relay['analysis_dropped_frames']}",
                "",
            ],
        ]
        rows.append(["load average 1/5/15 min: before / after", f"{load_before}", loadavg()])
        rows.append(["relay thread's scheduler slice (ms)", watch.slice_ms, ""])
        rows = wire_rows + wire_tail(at_wire.res, probes, got) + rows + gc_row(watch, t_run, t_end)
        if wire_on and not args.no_control:
            try:
                rows += control_rows(tmp, direct, port, lat_cpu, probes)
            except Exception as exc:  # the control is context: never at the judged table's cost
                rows.append(["control (bare forwarder)", "failed", str(exc)[:80]])
        if wire_ok is None:
            timing_ok = added50 < TARGETS["p50_ms"] and added99 < TARGETS["p99_ms"]
        else:
            timing_ok = wire_ok
        print(
            f"latency: {probes} probes every 10 ms through the relay (one session, analysis "
            f"on; relay on core {lat_cpu or 'any'}), interleaved with {probes} direct ones; "
            "judged: "
            + ("the wire measure" if wire_ok is not None else "round trips (upper bound)")
        )
        print(tabulate(rows, headers=["", "value", "target", ""]))
        if args.only == "latency":
            return 0 if timing_ok or args.quick else 1
        return run_load(
            args, port, direct, sessions, seconds, relay_cpu, tmp, two_cores, timing_ok, wire_on
        )
    finally:
        service.terminate()
        service.wait(10)
        stop_started()


def run_load(
    args: argparse.Namespace,
    port: int,
    direct: str,
    sessions: int,
    seconds: float,
    relay_cpu: str | None,
    tmp: str,
    two_cores: bool,
    timing_ok: bool = True,
    wire_on: bool = False,
) -> int:
    """2. many sessions at real-time pace: the exit status of the whole run."""
    ok = True
    load_before = loadavg()
    base_runs = asyncio.run(load(direct, sessions, seconds))
    at_wire = Wire(wire_on, tmp, "load")
    watch = Watch(port, sessions, relay_cpu, os.path.join(tmp, "load.jsonl"), args.audio)
    t_load = time.monotonic()
    runs = asyncio.run(_with_memory(watch, load(watch.url, sessions, seconds)))
    wall = time.monotonic() - t_load
    relay_cpu_s = watch.cpu_used(watch.proc.pid)
    worker_cpu_s = sum(watch.cpu_used(k) for k in watch.cpu_s if k != watch.proc.pid)
    rep = watch.report()
    wire_rows, wire_ok = at_wire.rows(watch.url, port, None, TARGETS["load_p99_ms"])
    relay = next(c for c in rep["checks"] if c["id"] == "watch-relay")["evidence"]
    peak_mb = sum(watch.peak_kb.values()) / 1024
    relay_mb = watch.peak_kb.get(watch.proc.pid, 0) / 1024
    frames = max(1, int(relay["frames_forwarded"]))

    def lat(rs: list[dict[str, Any]]) -> list[float]:
        return [x * 1000 for r in rs for x in r["lat"] + r.get("up_lat", [])]

    sent_up = sum(r["sent"] for r in runs)
    got_up = sum(r.get("service_got", 0) for r in runs)
    sent_down = sum(r["service_sent"] or 0 for r in runs)
    got_down = sum(r["got"] for r in runs)
    lb, lv = lat(base_runs), lat(runs)
    # judged: the p99 shift (via p99 - direct p99; the two runs cannot be paired frame by
    # frame); beside it the upper bound per frame (each via frame less the direct median)
    added_p99 = pct(lv, 99) - pct(lb, 99)
    floor = statistics.median(lb) if lb else float("nan")
    upper_p99 = pct([x - floor for x in lv], 99) if lv else float("nan")
    every = sent_up == got_up and sent_down == got_down
    rows = [
        ["app -> service frames sent / arrived", f"{sent_up} / {got_up}", "all", met(every)],
        ["service -> app frames sent / arrived", f"{sent_down} / {got_down}", "all", ""],
        ["one-way latency direct p50 / p99 (ms)", f"{pct(lb, 50):.2f} / {pct(lb, 99):.2f}", ""],
        [
            "one-way latency via relay p50 / p99 (ms)",
            f"{pct(lv, 50):.2f} / {pct(lv, 99):.2f}",
            "",
        ],
        [
            "added p99 (ms): via p99 - direct p99",
            f"{added_p99:.2f}",
            f"< {TARGETS['load_p99_ms']}",
            met(added_p99 < TARGETS["load_p99_ms"]),
        ],
        [
            "added p99 upper bound (ms): (via - direct median), all noise counted",
            f"{upper_p99:.2f}",
            f"< {TARGETS['load_p99_ms']}",
            met(upper_p99 < TARGETS["load_p99_ms"]),
        ],
        [
            "relay's own time p50 / p99 (ms)",
            f"{relay['added_latency_p50_ms']} / {relay['added_latency_p99_ms']}",
            "",
        ],
        [
            "peak memory relay + worker (MB, VmHWM)",
            f"{peak_mb:.0f} ({relay_mb:.0f} + {peak_mb - relay_mb:.0f})",
            f"< {TARGETS['memory_mb']:.0f}",
            met(peak_mb < TARGETS["memory_mb"]),
        ],
        [
            "CPU: relay / analysis worker (% of one core)",
            f"{100 * relay_cpu_s / wall:.0f} / {100 * worker_cpu_s / wall:.0f}",
            "",
        ],
        [
            "CPU per forwarded frame: relay / worker (us)",
            f"{1e6 * relay_cpu_s / frames:.0f} / {1e6 * worker_cpu_s / frames:.0f}",
            "",
        ],
        ["load average 1/5/15 min: before / after", load_before, loadavg()],
        [
            "frames analysed / skipped (analysis_behind); analysis stopped",
            f"{relay['analysed_records']} / {relay['analysis_dropped_frames']}; "
            f"{'yes' if relay.get('analysis_stopped_behind') else 'no'}",
            "",
        ],
        [
            "analysis queue peak (MB); echo measured / deferred / sessions unmeasured",
            f"{(relay.get('analysis_queue_peak_bytes') or 0) / 2**20:.1f}; "
            f"{relay.get('echo_measurements')} / {relay.get('echo_deferred')} / "
            f"{len(relay.get('echo_unmeasured_connections') or [])}",
            "",
        ],
        [
            "capture frames dropped",
            f"{relay['capture_dropped_frames']}",
            "0",
            met(relay["capture_dropped_frames"] == 0),
        ],
    ]
    rows = wire_rows + rows + gc_row(watch, t_load, t_load + wall)
    print(
        f"\nload: {sessions} sessions x {seconds:g} s at real-time pace, audio both ways; "
        f"relay on {'one core' if two_cores else 'the only core'}; --audio {args.audio}; "
        "judged: "
        + ("the wire measure" if wire_ok is not None else "the p99 shift of one-way latency")
    )
    print(tabulate(rows, headers=["", "value", "target", ""]))
    ok &= every and relay["capture_dropped_frames"] == 0 and peak_mb < TARGETS["memory_mb"]
    timing_ok &= added_p99 < TARGETS["load_p99_ms"] if wire_ok is None else wire_ok
    if not timing_ok:
        # Latency on a shared machine measures the machine's load as much as the relay:
        # --quick (CI) reports it; a full run on a quiet machine holds it to the targets.
        print(
            f"bench_relay: a latency target was missed (load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)",
            file=sys.stderr,
        )
        ok &= args.quick
    if not ok:
        print("bench_relay: a target was missed", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
