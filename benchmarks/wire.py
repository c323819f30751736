"""The relay's added latency per frame, measured at the wire from the kernel's packet stamps.

Round trips through the relay against direct ones count every hop's scheduling noise as
the relay's. Here the benchmark runs in a private user+network namespace (`unshare -rn`),
where an AF_PACKET socket may capture loopback, and each frame is timed where it crosses
the relay: from the kernel's stamp on the packet that carried the frame's last byte *to*
the relay, to the stamp on the packet that carried its last byte *from* the relay. That
counts the time the frame waited in the relay's socket before the relay woke, its
parsing, the event loop's other work, and the write; it does not count the apps' or the
service's own delays, nor the kernel's loopback hop (microseconds, on both sides alike).

Pure parts (TCP reassembly, WebSocket frames, pairing) take packets as (stamp ns, bytes);
the shell (`Capture`, `enter_namespace`) is the only I/O. On loopback each packet is seen
twice (pkttype OUTGOING and HOST): a socket filter keeps the HOST copy only, and drops
bare ACKs (the SYN is kept: it gives each stream's first sequence number).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

NETNS_ENV = "BENCH_RELAY_NETNS"  # set inside the namespace the benchmark re-ran itself in
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
RECORD = struct.Struct("<qI")  # stamp (ns, CLOCK_REALTIME), packet length

# cBPF: keep IPv4 TCP packets seen as HOST (not OUTGOING) that carry payload or SYN/FIN/RST
_FILTER = [
    (0x20, 0, 0, 0xFFFFF004),  # 0  ld pkttype
    (0x15, 16, 0, 4),  # 1  == OUTGOING -> drop
    (0x28, 0, 0, 12),  # 2  ldh ethertype
    (0x15, 0, 14, 0x0800),  # 3  != IPv4 -> drop
    (0x30, 0, 0, 23),  # 4  ldb ip proto
    (0x15, 0, 12, 6),  # 5  != TCP -> drop
    (0xB1, 0, 0, 14),  # 6  X = ip header length
    (0x50, 0, 0, 27),  # 7  ldb tcp flags
    (0x45, 8, 0, 0x07),  # 8  FIN|SYN|RST -> accept
    (0x50, 0, 0, 26),  # 9  ldb tcp data offset
    (0x54, 0, 0, 0xF0),  # 10
    (0x74, 0, 0, 2),  # 11 A = tcp header length
    (0x0C, 0, 0, 0),  # 12 A += X
    (0x07, 0, 0, 0),  # 13 X = A
    (0x28, 0, 0, 16),  # 14 ldh ip total length
    (0x1C, 0, 0, 0),  # 15 A -= X: payload length
    (0x15, 1, 0, 0),  # 16 == 0 -> drop
    (0x06, 0, 0, 0x40000),  # 17 accept
    (0x06, 0, 0, 0),  # 18 drop
]


# --- the shell: namespace and capture --------------------------------------------------------


def enter_namespace(argv: list[str]) -> int | None:
    """Re-run this benchmark in a private user+network namespace; its exit status, or None
    (with the reason printed) when namespaces are not allowed here: run without."""
    if os.environ.get(NETNS_ENV):
        return None
    try:
        probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"wire measure unavailable: cannot run unshare ({exc})", flush=True)
        return None
    if probe.returncode != 0:
        why = probe.stderr.decode(errors="replace").strip().splitlines()
        print(f"wire measure unavailable: unshare -rn refused ({why[-1] if why else '?'})")
        return None
    env = {**os.environ, NETNS_ENV: "1"}
    return subprocess.run(["unshare", "-rn", sys.executable, *argv], env=env).returncode


def loopback_up() -> str | None:
    """Bring lo up in the new namespace (it starts down); None, or why it failed."""
    ifreq = struct.Struct("16sh14x")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            flags = ifreq.unpack(fcntl.ioctl(s, 0x8913, ifreq.pack(b"lo", 0)))[1]
            fcntl.ioctl(s, 0x8914, ifreq.pack(b"lo", flags | 1))  # IFF_UP
    except OSError as exc:
        return f"cannot bring lo up: {exc}"
    return None


def _open_socket() -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    code = b"".join(struct.pack("HBBI", *insn) for insn in _FILTER)
    buf = ctypes.create_string_buffer(code)
    prog = struct.pack("HP", len(_FILTER), ctypes.addressof(buf))
    s.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024 * 1024)  # capped: rmem_max
    s.bind(("lo", ETH_P_ALL))
    # packets queued before the filter was attached (all of them) are not wanted
    s.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            s.recv(65536)
    s.setblocking(True)
    return s


def capture_main(out_path: str) -> int:
    """The capture process: every kept packet to `out_path` until SIGTERM, then the
    kernel's counts (packets, drops) to `out_path + '.json'`."""
    stop = False

    def on_term(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    # a short scheduler slice, as the relay's: on the generators' core, the capture reads
    # as soon as packets come instead of after a generator's slice (fewer kernel drops)
    from doctor.watch.sched import short_slice

    short_slice()
    s = _open_socket()
    s.settimeout(0.2)
    Path(out_path + ".ready").write_text("1")
    packets = 0
    parent = os.getppid()
    with open(out_path, "wb", buffering=1 << 20) as out:
        while not stop:
            try:
                data, anc, _, _ = s.recvmsg(65600, 64)
            except (TimeoutError, InterruptedError):
                if os.getppid() != parent:  # the benchmark died without stopping us
                    break
                continue
            _write_packet(out, data, anc)
            packets += 1
        # SIGTERM comes once the traffic is over, but a capture behind on a loaded machine
        # still has its last packets queued: they are part of the phase (a run at load 9
        # lost the last frame's packets here and counted 20 frames of 21)
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                data, anc, _, _ = s.recvmsg(65600, 64)
                _write_packet(out, data, anc)
                packets += 1
    kernel = struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
    Path(out_path + ".json").write_text(
        json.dumps({"written": packets, "kernel_packets": kernel[0], "kernel_drops": kernel[1]})
    )
    return 0


def _write_packet(out: Any, data: bytes, anc: list[tuple[int, int, bytes]]) -> None:
    stamp = 0
    for level, kind, value in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = struct.unpack("qq", value[:16])
            stamp = sec * 1_000_000_000 + nsec
    out.write(RECORD.pack(stamp, len(data)))
    out.write(data)


class Capture:
    """The capture process around one phase of the benchmark."""

    def __init__(self, script: str, out_path: str) -> None:
        self.path = out_path
        self.proc = subprocess.Popen([sys.executable, script, "--capture-lo", out_path])
        deadline = time.monotonic() + 30
        while not os.path.exists(out_path + ".ready"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the loopback capture did not start")
            time.sleep(0.02)  # another process's file: no event to wait on

    def stop(self) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        try:
            stats: dict[str, Any] = json.loads(Path(self.path + ".json").read_text())
        except (OSError, ValueError):
            stats = {"kernel_drops": None}
        return stats


def read_packets(path: str) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        data = fh.read()
    pos = 0
    size = RECORD.size
    while pos + size <= len(data):
        stamp, n = RECORD.unpack_from(data, pos)
        pos += size
        yield stamp, data[pos : pos + n]
        pos += n


# --- pure: TCP streams, WebSocket frames, pairing ----------------------------------------------

Flow = tuple[int, int]  # (source port, destination port): all of it is 127.0.0.1


@dataclass
class WsFrame:
    stamp: int  # ns: the packet that carried the frame's last byte
    opcode: int
    fin: bool
    payload: bytes  # unmasked


@dataclass
class _Stream:
    next_seq: int | None = None
    pending: dict[int, bytes] = field(default_factory=dict)
    buf: bytearray = field(default_factory=bytearray)
    handshake_done: bool = False
    frames: list[WsFrame] = field(default_factory=list)
    gap: bool = False
    broken: bool = False  # no SYN seen, or not WebSocket


def _unmask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if not n:
        return payload
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def _parse_frames(st: _Stream, stamp: int) -> None:
    buf = st.buf
    if not st.handshake_done:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > 65536:
                st.broken = True
            return
        del buf[: end + 4]
        st.handshake_done = True
    pos = 0
    n = len(buf)
    while n - pos >= 2:
        b0, b1 = buf[pos], buf[pos + 1]
        length = b1 & 0x7F
        head = 2
        if length == 126:
            if n - pos < 4:
                break
            length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
            head = 4
        elif length == 127:
            if n - pos < 10:
                break
            length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            head = 10
        masked = b1 & 0x80
        key = b""
        if masked:
            if n - pos < head + 4:
                break
            key = bytes(buf[pos + head : pos + head + 4])
            head += 4
        if n - pos < head + length:
            break
        payload = bytes(buf[pos + head : pos + head + length])
        if masked:
            payload = _unmask(payload, key)
        st.frames.append(WsFrame(stamp, b0 & 0x0F, bool(b0 & 0x80), payload))
        pos += head + length
    del buf[:pos]


def streams(packets: Iterable[tuple[int, bytes]]) -> dict[Flow, _Stream]:
    """Reassemble each IPv4 TCP stream on loopback by sequence number and parse its
    WebSocket frames, each stamped with the packet that completed it."""
    out: dict[Flow, _Stream] = defaultdict(_Stream)
    for stamp, pkt in packets:
        if len(pkt) < 34 or pkt[12:14] != b"\x08\x00" or pkt[23] != 6:
            continue
        ihl = (pkt[14] & 0x0F) * 4
        total = int.from_bytes(pkt[16:18], "big")
        t = 14 + ihl
        sport, dport = struct.unpack_from("!HH", pkt, t)
        seq = int.from_bytes(pkt[t + 4 : t + 8], "big")
        flags = pkt[t + 13]
        doff = (pkt[t + 12] >> 4) * 4
        payload = pkt[t + doff : 14 + total]
        st = out[(sport, dport)]
        if flags & 0x02:  # SYN: the data starts one past it
            st.next_seq = (seq + 1) & 0xFFFFFFFF
            continue
        if st.next_seq is None:
            st.broken = True
            continue
        if not payload or st.broken:
            continue
        st.pending[seq] = payload
        while st.next_seq in st.pending:
            data = st.pending.pop(st.next_seq)
            st.buf += data
            st.next_seq = (st.next_seq + len(data)) & 0xFFFFFFFF
            _parse_frames(st, stamp)
        # a segment re-sent over one already taken: nothing new in it
        for old in [s for s in st.pending if ((st.next_seq - s) & 0xFFFFFFFF) < 1 << 31]:
            del st.pending[old]
    for st in out.values():
        if st.pending:
            st.gap = True
    return dict(out)


@dataclass
class Paired:
    """Added latency (ms) per forwarded data frame, by direction, and what did not pair."""

    up: list[float] = field(default_factory=list)  # app -> relay -> service
    down: list[float] = field(default_factory=list)  # service -> relay -> app
    sessions: int = 0
    unpaired: int = 0  # data frames into the relay with no counterpart out (or vice versa)
    changed: int = 0  # paired frames whose payload or opcode differ
    gaps: int = 0  # streams with a hole in their sequence numbers (a packet not captured),
    # or relayed streams seen without their start


def _data(st: _Stream) -> list[WsFrame]:
    return [f for f in st.frames if f.opcode < 8]


def pair(flows: dict[Flow, _Stream], relay_port: int, service_port: int) -> Paired:
    """Pair each app connection to the relay with the relay's own connection to the
    service (by the content they carry: the upstream connection shares most frames), then
    the k-th data frame in with the k-th out, both ways: the relay forwards data frames in
    order and unchanged."""
    res = Paired(gaps=sum(st.gap for st in flows.values()))  # any hole: the capture lost
    app_in = {f: s for f, s in flows.items() if f[1] == relay_port}
    up_out = {f: s for f, s in flows.items() if f[1] == service_port}
    owner: dict[bytes, set[Flow]] = defaultdict(set)
    for flow, st in app_in.items():
        for fr in _data(st):
            owner[fr.payload].add(flow)
    claimed: set[Flow] = set()
    for out_flow, out_st in up_out.items():
        votes: dict[Flow, int] = defaultdict(int)
        for fr in _data(out_st):
            holders = owner.get(fr.payload)
            if holders and len(holders) == 1:
                votes[next(iter(holders))] += 1
        data_out = _data(out_st)
        in_flow = max(votes, key=lambda k: votes[k]) if votes else None
        if in_flow is None or 2 * votes[in_flow] <= len(data_out):
            continue  # a direct connection (it may share a first frame), not the relay's
        res.sessions += 1
        claimed.add(in_flow)
        down_in = flows.get((service_port, out_flow[0]))  # service -> relay
        down_out = flows.get((relay_port, in_flow[0]))  # relay -> app
        for src, dst, into in ((app_in[in_flow], out_st, res.up), (down_in, down_out, res.down)):
            if src is None or dst is None:
                res.unpaired += sum(len(_data(st)) for st in (src, dst) if st is not None)
                continue
            res.gaps += int(src.broken) + int(dst.broken)
            a, b = _data(src), _data(dst)
            res.unpaired += abs(len(a) - len(b))
            for x, y in zip(a, b, strict=False):  # the surplus is counted above
                if x.payload != y.payload or x.opcode != y.opcode:
                    res.changed += 1
                into.append((y.stamp - x.stamp) / 1e6)
    for flow, st in app_in.items():  # an app's connection with no upstream one seen
        if flow not in claimed and st.handshake_done:
            res.unpaired += len(_data(st))
    return res


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    arr = np.asarray(values)
    return {
        "n": len(values),
        "p50": float(np.percentile(arr, 50)),
        "p99": float(np.percentile(arr, 99)),
        "max": float(arr.max()),
    }


def measure_packets(
    packets: Iterable[tuple[int, bytes]], relay_port: int, service_port: int
) -> Paired:
    return pair(streams(packets), relay_port, service_port)


def measure(path: str, relay_port: int, service_port: int) -> Paired:
    return measure_packets(read_packets(path), relay_port, service_port)
