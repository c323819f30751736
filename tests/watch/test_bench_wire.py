"""benchmarks/wire.py: the relay's added latency per frame from loopback packets.

The pure parts get packets built here (TCP over IPv4 on lo, WebSocket frames, masked from
clients); the capture itself runs for real in a private user+network namespace.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import wire  # noqa: E402

RELAY, SERVICE = 40000, 50000
MASK = b"\x11\x22\x33\x44"


def packet(sport: int, dport: int, seq: int, payload: bytes = b"", syn: bool = False) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02 if syn else 0x18, 0, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 6, 0, b"\x7f\0\0\1", b"\x7f\0\0\1")
    return b"\0" * 12 + b"\x08\x00" + ip + tcp + payload


def ws_frame(payload: bytes, masked: bool, opcode: int = 1) -> bytes:
    head = bytes([0x80 | opcode])
    n = len(payload)
    size = bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, "big")
    if not masked:
        return head + size + payload
    body = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return head + bytes([size[0] | 0x80]) + size[1:] + MASK + body


class Stream:
    """One direction of a TCP connection: SYN, handshake, then whatever is sent."""

    def __init__(self, sport: int, dport: int, t: int, out: list[tuple[int, bytes]]) -> None:
        self.sport, self.dport, self.seq, self.out = sport, dport, 1000, out
        out.append((t, packet(sport, dport, self.seq, syn=True)))
        self.seq += 1
        self.send(t, b"GET /v1/ws HTTP/1.1\r\nHost: x\r\n\r\n")

    def send(self, t: int, data: bytes) -> None:
        self.out.append((t, packet(self.sport, self.dport, self.seq, data)))
        self.seq += len(data)


def session(app_port: int, up_port: int, frames: int, delay_ns: int) -> list[tuple[int, bytes]]:
    """An app's session through the relay: each frame out `delay_ns` after it came in."""
    pk: list[tuple[int, bytes]] = []
    app_in = Stream(app_port, RELAY, 0, pk)
    up_out = Stream(up_port, SERVICE, 0, pk)
    svc_in = Stream(SERVICE, up_port, 0, pk)
    app_out = Stream(RELAY, app_port, 0, pk)
    for k in range(frames):
        t = 1_000_000 * (k + 1)
        msg = f'{{"type":"input.audio","n":{k},"port":{app_port}}}'.encode() * 9
        app_in.send(t, ws_frame(msg, masked=True))
        up_out.send(t + delay_ns, ws_frame(msg, masked=True))
        reply = f'{{"type":"reply.audio","n":{k},"port":{app_port}}}'.encode()
        svc_in.send(t + 10, ws_frame(reply, masked=False))
        app_out.send(t + 10 + 2 * delay_ns, ws_frame(reply, masked=False))
    return pk


def test_pairs_each_frame_both_ways_and_ignores_a_direct_connection() -> None:
    pk = session(30001, 30002, 20, 300_000) + session(30003, 30004, 20, 700_000)
    direct: list[tuple[int, bytes]] = []
    d = Stream(30005, SERVICE, 0, direct)
    d.send(5, ws_frame(b'{"type":"session.update"}', masked=True))
    res = wire.measure_packets(sorted(pk + direct, key=lambda p: p[0]), RELAY, SERVICE)
    assert res.sessions == 2
    assert (res.unpaired, res.changed, res.gaps) == (0, 0, 0)
    assert sorted(set(res.up)) == [0.3, 0.7]
    assert sorted(set(res.down)) == [0.6, 1.4]
    assert len(res.up) == len(res.down) == 40


def test_a_frame_split_over_packets_is_stamped_by_its_last_byte() -> None:
    pk: list[tuple[int, bytes]] = []
    app_in = Stream(30001, RELAY, 0, pk)
    up_out = Stream(30002, SERVICE, 0, pk)
    frame = ws_frame(b"x" * 3000, masked=True)
    app_in.send(100, frame[:1000])
    app_in.send(900, frame[1000:])  # the frame is whole here
    up_out.send(1900, frame)
    res = wire.measure_packets(pk, RELAY, SERVICE)
    assert res.up == [0.001]


def test_a_lost_packet_is_a_gap_and_a_changed_frame_is_counted() -> None:
    pk = session(30001, 30002, 5, 100_000)
    from_app = [i for i, (_, p) in enumerate(pk) if p[34:36] == (30001).to_bytes(2, "big")]
    del pk[from_app[3]]  # SYN, handshake, frame 0, frame 1: frame 1 never captured
    res = wire.measure_packets(pk, RELAY, SERVICE)
    assert res.gaps >= 1
    pk2: list[tuple[int, bytes]] = []
    a = Stream(30001, RELAY, 0, pk2)
    b = Stream(30002, SERVICE, 0, pk2)
    for k in range(3):
        a.send(k, ws_frame(b"same-%d" % k, masked=True))
        b.send(k + 1, ws_frame(b"same-%d" % k if k != 1 else b"diff-1", masked=True))
    res2 = wire.measure_packets(pk2, RELAY, SERVICE)
    assert (res2.sessions, res2.changed) == (1, 1)


def test_control_frames_are_not_paired() -> None:
    pk: list[tuple[int, bytes]] = []
    a = Stream(30001, RELAY, 0, pk)
    b = Stream(30002, SERVICE, 0, pk)
    a.send(10, ws_frame(b"hello", masked=True))
    a.send(20, ws_frame(b"", masked=True, opcode=9))  # a ping the relay answers itself
    b.send(30, ws_frame(b"hello", masked=True))
    res = wire.measure_packets(pk, RELAY, SERVICE)
    assert (res.up, res.unpaired) == ([2e-5], 0)


def _namespaces() -> bool:
    try:
        return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


@pytest.mark.skipif(
    not _namespaces() and not os.environ.get("AGENT_DOCTOR_REQUIRE_REAL_PARTS"),
    reason="unshare -rn is not allowed here",
)
def test_real_capture_of_a_websocket_through_a_forwarder_on_lo(tmp_path: Path) -> None:
    """A real capture in a private namespace: a client, a byte-for-byte TCP forwarder in the
    relay's place, and a server; every frame pairs, and the filter keeps one copy each."""
    script = BENCHMARKS.parent / "tests" / "watch" / "wire_probe_app.py"
    out = subprocess.run(
        ["unshare", "-rn", sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    got = dict(line.split("=", 1) for line in out.stdout.split())
    assert got["sessions"] == "1"
    assert got["drops"] == "0"
    assert (got["gaps"], got["unpaired"], got["changed"]) == ("0", "0", "0")
    assert int(got["up"]) == 21 and int(got["down"]) == 21  # 20 frames + 1 more, each way
    assert 0 < float(got["p50"]) < 1000


def test_mocked_unshare_refusal_is_said_and_the_benchmark_runs_without(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Mocked: this machine allows namespaces; a refusing one is simulated."""
    monkeypatch.delenv(wire.NETNS_ENV, raising=False)
    refused = subprocess.CompletedProcess([], 1, b"", b"unshare: Operation not permitted\n")
    monkeypatch.setattr(wire.subprocess, "run", lambda *a, **k: refused)
    assert wire.enter_namespace(["bench_relay.py"]) is None
    assert "unshare -rn refused (unshare: Operation not permitted)" in capsys.readouterr().out


def test_the_controls_bare_forwarder_passes_bytes_both_ways_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench_relay's control: a bare TCP forwarder to the service, every byte as sent. (In
    this process it must not take the short scheduler slice: pytest's thread keeps it.)"""
    import asyncio

    import bench_relay

    from doctor.watch import sched

    monkeypatch.setattr(sched, "short_slice", lambda *a: False)

    async def run() -> bytes:
        async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(await r.readexactly(70_000))
            await w.drain()
            w.close()

        service = await asyncio.start_server(echo, "127.0.0.1", 0)
        port_file = tmp_path / "port"
        fwd = asyncio.create_task(
            bench_relay.bare_forwarder(str(port_file), service.sockets[0].getsockname()[1])
        )
        while not port_file.exists() or not port_file.read_text():
            if fwd.done():  # it failed before listening: say why
                fwd.result()
            await asyncio.sleep(0)  # the forwarder task runs on this loop: yield to it
        r, w = await asyncio.open_connection("127.0.0.1", int(port_file.read_text()))
        w.write(bytes(range(256)) * 273 + b"\x01" * 112)
        got = await asyncio.wait_for(r.readexactly(70_000), 10)
        w.close()
        fwd.cancel()
        service.close()
        return got

    assert asyncio.run(run()) == bytes(range(256)) * 273 + b"\x01" * 112
