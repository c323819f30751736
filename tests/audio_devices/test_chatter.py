"""C-library messages on fd 2 are counted into evidence, never shown; other lines pass on.

Real file descriptors in a child process (pytest captures fd 2 in this one): the child
writes with os.write(2, ...), exactly as ALSA's error handler does from C.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from doctor.devices.chatter import Chatter, is_library_line, split_library_line

UNDERRUN = "ALSA lib pcm.c:8570:(snd_pcm_recover) underrun occurred"


def _child(body: str) -> subprocess.CompletedProcess[str]:
    src = "import json, os, sys, threading\nfrom doctor.devices.chatter import quiet_libraries\n"
    return subprocess.run(
        [sys.executable, "-c", src + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_library_lines_are_counted_and_other_lines_pass_through() -> None:
    r = _child(
        f"""
        with quiet_libraries() as c:
            for _ in range(3):
                os.write(2, b"{UNDERRUN}\\n")
            os.write(2, b"Expression 'ret' failed in 'src/hostapi/alsa/pa_linux_alsa.c'\\n")
            sys.stderr.write("echo: playing a 7 s test sound\\n"); sys.stderr.flush()
            os.write(2, b"ALSA lib confmisc.c:767:(parse_card) cannot find card '0'")  # no newline
        os.write(2, b"after the block\\n")
        print(json.dumps(c.evidence()))
        """
    )
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert ev["library_messages"] == 5 and ev["alsa_underruns"] == 3
    assert ev["library_message_samples"][0] == UNDERRUN
    assert "ALSA lib" not in r.stderr and "Expression" not in r.stderr
    assert r.stderr.splitlines() == ["echo: playing a 7 s test sound", "after the block"]


def _child_bytes(body: str) -> subprocess.CompletedProcess[bytes]:
    """As _child, but stderr as bytes: text mode would turn the progress line's \\r into \\n."""
    src = "import json, os, sys, threading\nfrom doctor.devices.chatter import quiet_libraries\n"
    return subprocess.run(
        [sys.executable, "-c", src + textwrap.dedent(body)], capture_output=True, timeout=60
    )


def test_a_library_line_glued_onto_a_progress_line_is_counted_not_shown() -> None:
    """LiveProgress redraws `\\r\\x1b[2Krunning: ...` with no newline; the next ALSA line
    lands on the same line of the pipe and must still be caught, the progress kept."""
    r = _child_bytes(
        f"""
        with quiet_libraries() as c:
            sys.stderr.write("\\r\\x1b[2Krunning: echo, token"); sys.stderr.flush()
            os.write(2, b"{UNDERRUN}\\n")
            os.write(2, b"{UNDERRUN}\\n")
            sys.stderr.write("\\r\\x1b[2K"); sys.stderr.flush()
            os.write(2, b"ALSA lib pcm.c:1:(x) three\\n")
        os.write(2, b"after the block\\n")
        print(json.dumps(c.evidence()))
        """
    )
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert ev["library_messages"] == 3 and ev["alsa_underruns"] == 2
    assert UNDERRUN in ev["library_message_samples"]
    assert b"ALSA" not in r.stderr
    assert r.stderr == b"\r\x1b[2Krunning: echo, token\r\x1b[2Kafter the block\n"


def test_an_unended_progress_line_at_the_end_gets_no_newline_added() -> None:
    r = _child_bytes(
        """
        with quiet_libraries() as c:
            sys.stderr.write("\\r\\x1b[2Krunning: echo"); sys.stderr.flush()
        sys.stderr.write("\\r\\x1b[2Kdone\\n")
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stderr == b"\r\x1b[2Krunning: echo\r\x1b[2Kdone\n"


def test_nested_and_concurrent_blocks_share_one_redirection() -> None:
    r = _child(
        f"""
        seen = {{}}
        def worker(name, n):
            with quiet_libraries() as c:
                for _ in range(n):
                    os.write(2, b"{UNDERRUN}\\n")
            seen[name] = c.lines  # read after the block: it has seen all it caused
        with quiet_libraries() as outer:
            with quiet_libraries() as inner:
                os.write(2, b"ALSA lib one\\n")
            ts = [threading.Thread(target=worker, args=(i, 2)) for i in range(4)]
            [t.start() for t in ts]; [t.join() for t in ts]
            os.write(2, b"ALSA lib two\\n")
        os.write(2, b"plain\\n")
        print(json.dumps([inner.lines, outer.lines, sorted(seen.values())]))
        """
    )
    assert r.returncode == 0, r.stderr
    inner, outer, workers = json.loads(r.stdout)
    assert inner == 1 and outer == 10
    # each saw its own two, and any a concurrent block wrote while it was open
    assert min(workers) >= 2 and max(workers) <= 8
    assert r.stderr.splitlines() == ["plain"]


def test_classifier() -> None:
    assert is_library_line(UNDERRUN)
    assert is_library_line("Cannot connect to server socket err = No such file or directory")
    assert not is_library_line("echo: playing a 7 s test sound on 'default'")
    assert not is_library_line("agent-doctor: ALSA lib is fine")
    assert split_library_line("agent-doctor: ALSA lib is fine") == (
        "agent-doctor: ALSA lib is fine",
        "",
    )
    assert split_library_line("\r\x1b[2Kstep 1ALSA lib a.c:1:(f) x ") == (
        "\r\x1b[2Kstep 1",
        "ALSA lib a.c:1:(f) x",
    )
    assert split_library_line("\r\x1b[2Kchecking the ALSA mixer") == (
        "\r\x1b[2Kchecking the ALSA mixer",
        "",
    )
    c = Chatter()
    c.add(UNDERRUN)
    c.add(UNDERRUN)
    assert c.evidence() == {
        "library_messages": 2,
        "alsa_underruns": 2,
        "library_message_samples": [UNDERRUN],
    }
