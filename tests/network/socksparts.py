"""A real SOCKS5 relay on 127.0.0.1 for the wss probe's SOCKS path (no auth, CONNECT only,
IPv4 or a domain name): a `netparts.ThreadServer` handler."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading


def _exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed mid-handshake")
        data += chunk
    return data


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def socks5_relay(conn: socket.socket) -> None:
    """Greeting, CONNECT, then bytes both ways until either side closes (bounded: 30 s idle)."""
    conn.settimeout(30)
    _, n = _exact(conn, 2)
    _exact(conn, n)
    conn.sendall(b"\x05\x00")
    _, _, _, atyp = _exact(conn, 4)
    if atyp == 1:
        host = socket.inet_ntoa(_exact(conn, 4))
    elif atyp == 3:
        host = _exact(conn, _exact(conn, 1)[0]).decode()
    else:
        conn.sendall(b"\x05\x08\x00\x01" + bytes(6))  # address type not supported
        return
    (port,) = struct.unpack(">H", _exact(conn, 2))
    upstream = socket.create_connection((host, port), timeout=5)
    upstream.settimeout(30)
    conn.sendall(b"\x05\x00\x00\x01" + bytes(6))
    back = threading.Thread(target=_pipe, args=(upstream, conn), daemon=True)
    back.start()
    _pipe(conn, upstream)
    back.join(30)
    upstream.close()


def socks5_refusing_auth(conn: socket.socket) -> None:
    """A SOCKS5 proxy that wants user/password (RFC 1929) and refuses whatever it gets; a
    client that offers no login is told no method is acceptable (0xFF)."""
    conn.settimeout(30)
    _, n = _exact(conn, 2)
    if b"\x02" not in _exact(conn, n):
        conn.sendall(b"\x05\xff")
        return
    conn.sendall(b"\x05\x02")
    _exact(conn, 1)  # sub-negotiation version
    _exact(conn, _exact(conn, 1)[0])  # user
    _exact(conn, _exact(conn, 1)[0])  # password
    conn.sendall(b"\x01\x01")
