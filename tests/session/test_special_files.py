"""A FIFO, a socket or a device inside a folder is skipped with a note naming it: opening
a FIFO nobody writes to waited for ever (`analyze DIR` hung). A FIFO named on the command
line is still read: the user chose it."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import artifacts as A
from clirun import run_cli


def test_a_fifo_and_a_socket_in_a_folder_are_skipped_with_a_note(tmp_path: Path) -> None:
    A.write_folder(tmp_path, A.normal_timeline(), meta=False)
    os.mkfifo(tmp_path / "pipe")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(tmp_path / "sock"))
    try:
        # the old reader opened the FIFO and waited for a writer: the timeout failed it
        p = run_cli("analyze", str(tmp_path), timeout=60)
    finally:
        sock.close()
    assert A.SID in p.stdout, (p.stdout, p.stderr)
    assert f"{tmp_path / 'pipe'}: a FIFO (named pipe), not a regular file; skipped" in p.stderr
    assert f"{tmp_path / 'sock'}: a socket, not a regular file; skipped" in p.stderr
    assert "Traceback" not in p.stderr


def test_a_fifo_named_on_the_command_line_is_still_read(tmp_path: Path) -> None:
    import json

    fifo = tmp_path / "timeline.fifo"
    os.mkfifo(fifo)
    text = json.dumps(A.normal_timeline(), separators=(",", ":"))

    def write() -> None:
        with open(fifo, "w", encoding="utf-8") as fh:  # returns once the CLI opens it
            fh.write(text)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    p = run_cli("analyze", str(fifo), timeout=60)
    writer.join(timeout=60)
    assert A.SID in p.stdout, (p.stdout, p.stderr)
    assert "not a regular file" not in p.stderr


def test_a_link_back_up_or_to_a_sibling_folder_is_read_once(tmp_path: Path) -> None:
    """`ln -s . self` read self/self/self/... 40 deep until the kernel's link limit, and
    a second link to a session folder analysed that session twice."""
    from doctor.session_readers.detect import analyze_path

    A.write_folder(tmp_path / "a", A.normal_timeline(), meta=False)
    (tmp_path / "self").symlink_to(".")
    (tmp_path / "b").symlink_to("a")
    notes: list[str] = []
    found = analyze_path(str(tmp_path), notes.append)
    assert [f.session_id for f in found] == [A.SID]
    assert not any("self/self" in n or "Too many levels" in n for n in notes), notes
    assert f"{tmp_path / 'b'}: a link to a folder already read; skipped" in notes
