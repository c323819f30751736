"""`--report FILE` where FILE is not an ordinary file, or cannot be written, and Ctrl-C
while stdin is being read: the real CLI in a subprocess."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from clirun import cli_env, run_cli

ARGS = ("check", "environment")


def _wav(pcm: bytes, rate: int) -> bytes:
    """A PCM16 mono WAV file of `pcm` whose header says `rate` (any value, broken too)."""
    import struct

    fmt = struct.pack("<HHIIHH", 1, 1, rate, 2 * rate, 2, 16)
    return (
        b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " + struct.pack("<I", 16)
        + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    )  # fmt: skip


def _tone_48k_wav() -> bytes:
    """1 s of a 440 Hz tone at 48 kHz: --fix converts it with certainty."""
    import numpy as np

    t = np.arange(48000) / 48000
    return _wav((8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes(), 48000)


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    proc = run_cli(*ARGS, "--report", str(link), env=cli_env())
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink()
    assert json.loads(target.read_text())["command"] == "check"


def test_a_fifo_gets_the_report_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()  # blocks in open() until the CLI opens the FIFO for writing
    proc = run_cli(*ARGS, "--report", str(fifo), env=cli_env())
    reader.join(30)
    assert proc.returncode == 0, proc.stderr
    assert fifo.is_fifo()
    assert got and json.loads(got[0])["command"] == "check"


def test_dev_stdout_on_a_pipe_gets_the_report() -> None:
    """`--report /dev/stdout | jq`: the up-front check resolved the link to `pipe:[N]`, which is
    no path, and refused it (exit 2); the report goes into the pipe after the text one."""
    proc = run_cli(*ARGS, "--report", "/dev/stdout", env=cli_env())  # stdout is a pipe here
    assert proc.returncode == 0, proc.stderr
    assert '"command": "check"' in proc.stdout, proc.stdout[-500:]


@pytest.mark.parametrize("command", ["check", "validate-audio"])
def test_a_full_device_is_one_line_after_the_report(tmp_path: Path, command: str) -> None:
    """A copy of /dev/full (ENOSPC on every write): mknod needs root, which CI has.
    validate-audio prints its own text report: it too shows it before writing."""
    if os.geteuid() != 0:
        pytest.skip("mknod of a character device needs root (CI runs as root)")
    full = tmp_path / "full"
    os.mknod(full, 0o666 | 0o020000, os.makedev(1, 7))
    pcm = tmp_path / "speech.pcm"
    pcm.write_bytes(bytes(4800))  # 0.1 s of silence, raw PCM16
    args = ARGS if command == "check" else ("validate-audio", str(pcm))
    proc = run_cli(*args, "--report", str(full), env=cli_env())
    assert proc.returncode == 1
    assert f"agent-doctor: error: cannot write the report to {full}: No space left" in proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    assert ("environment" if command == "check" else "speech.pcm") in proc.stdout  # shown first
    assert full.is_char_device()


def _reading_a_pipe(pid: int) -> bool:
    for wchan in glob.glob(f"/proc/{pid}/task/*/wchan"):
        try:
            if "pipe_read" in Path(wchan).read_text():
                return True
        except OSError:
            continue
    return False


def test_ctrl_c_while_stdin_is_read_exits_130_without_an_abort() -> None:
    """A daemon thread blocked reading stdin held its lock at the interpreter's teardown:
    "Fatal Python error: _enter_buffered_busy", SIGABRT (134) instead of 130."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "doctor", "validate-audio", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    try:
        deadline = time.monotonic() + 30
        while not _reading_a_pipe(proc.pid):  # the kernel says the reader is blocked in it
            assert time.monotonic() < deadline, "validate-audio never read its stdin"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err.decode()
    assert b"Fatal Python error" not in err and b"agent-doctor: interrupted" in err


def test_a_refused_fix_is_said_even_when_the_report_cannot_be_written(tmp_path: Path) -> None:
    """The refusal line came after the report write, so a full disk hid why no --fix file
    was written (a reviewer's repro: a WAV header rate of 1 Hz)."""
    if os.geteuid() != 0:
        pytest.skip("mknod of a character device needs root (CI runs as root)")
    full = tmp_path / "full"
    os.mknod(full, 0o666 | 0o020000, os.makedev(1, 7))
    wav = tmp_path / "bad.wav"
    wav.write_bytes(_wav(bytes(4800), 1))  # a header rate of 1 Hz: broken
    proc = run_cli(
        "validate-audio", str(wav), "--fix", str(tmp_path / "x.raw"), "--report", str(full),
        env=cli_env(),
    )  # fmt: skip
    assert proc.returncode == 1
    assert "--fix refused" in proc.stderr and "cannot write the report" in proc.stderr


def test_a_fix_output_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    """--fix wrote a temporary file renamed over its path, like --report did: a link (or
    `--fix /dev/stdout` as root) was replaced by a regular file."""
    wav = tmp_path / "tone48k.wav"
    wav.write_bytes(_tone_48k_wav())
    target = tmp_path / "fixed.raw"
    link = tmp_path / "link.raw"
    link.symlink_to(target)
    proc = run_cli("validate-audio", str(wav), "--fix", str(link), env=cli_env())
    assert link.is_symlink(), proc.stderr
    assert target.stat().st_size == 48000  # 1 s at 24 kHz, PCM16


def test_a_fix_output_linked_to_the_input_never_empties_the_input(tmp_path: Path) -> None:
    """Writing through the link truncated its target, the input, before it was read: the
    input ended at 0 bytes (a reviewer's repro). The target is replaced once converted."""
    wav = tmp_path / "clip.wav"
    wav.write_bytes(_tone_48k_wav())
    link = tmp_path / "link.raw"
    link.symlink_to(wav)
    proc = run_cli("validate-audio", str(wav), "--fix", str(link), env=cli_env())
    assert proc.returncode == 1, proc.stderr  # the input (48 kHz) is not what the API takes
    assert link.is_symlink() and wav.stat().st_size == 48000  # the converted second


@pytest.mark.parametrize("as_json", [False, True])
def test_a_refused_fix_and_a_failed_report_are_both_said(tmp_path: Path, as_json: bool) -> None:
    """With --json, the report write came before the refusal line, and its failure hid the
    refusal (the text mode said both). /dev/full passes the up-front check (a writable
    device) and fails the write itself with ENOSPC, as any user."""
    wav = tmp_path / "bad.wav"
    wav.write_bytes(_wav(bytes(4800), 1))  # a header rate of 1 Hz: broken, --fix refused
    report = "/dev/full"
    proc = run_cli(
        "validate-audio", str(wav), "--fix", str(tmp_path / "x.raw"), "--report", report,
        *(["--json"] if as_json else []), env=cli_env(),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in proc.stderr, lines
    assert lines[0].startswith("agent-doctor: --fix refused: "), lines
    assert lines[1].startswith("agent-doctor: error: cannot write the report to "), lines
    if as_json:
        assert json.loads(proc.stdout)["validation"]["fix"]["refused"]
    assert not (tmp_path / "x.raw").exists()
