"""Run inside `unshare -rn` by test_bench_wire.py: capture lo while a WebSocket client talks
to a server through a byte-for-byte TCP forwarder (the relay's place), then print the wire
measure as key=value words."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import wire  # noqa: E402


async def run() -> tuple[int, int]:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    async def echo(ws):  # type: ignore[no-untyped-def]
        async for msg in ws:
            await ws.send("re:" + str(msg))

    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
        w.close()

    async with serve(echo, "127.0.0.1", 0) as server:
        service_port = next(iter(server.sockets)).getsockname()[1]

        async def forward(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            ur, uw = await asyncio.open_connection("127.0.0.1", service_port)
            await asyncio.gather(pipe(r, uw), pipe(ur, w))

        relay = await asyncio.start_server(forward, "127.0.0.1", 0)
        relay_port = relay.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{relay_port}/v1/ws", proxy=None) as ws:
            for k in range(21):
                await ws.send(f"frame {k} " + "x" * (100 * k))
                await ws.recv()
        relay.close()
    return relay_port, service_port


def main() -> int:
    why = wire.loopback_up()
    if why:
        print(why, file=sys.stderr)
        return 1
    tmp = sys.argv[1]
    cap = wire.Capture(str(BENCHMARKS / "bench_relay.py"), str(Path(tmp) / "t.lo"))
    relay_port, service_port = asyncio.run(run())
    stats = cap.stop()
    res = wire.measure(cap.path, relay_port, service_port)
    both = wire.summary(res.up + res.down)
    print(
        f"sessions={res.sessions} drops={stats.get('kernel_drops')} gaps={res.gaps} "
        f"unpaired={res.unpaired} changed={res.changed} up={len(res.up)} "
        f"down={len(res.down)} p50={both['p50']:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
