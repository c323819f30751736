"""Once `all`/`check` has printed its report, the program leaves without the interpreter's
teardown (issue 13: on a busy machine that teardown took 0.2-0.85 s after the verdict),
but still runs its atexit handlers, keeps its exit code, and waits for a live non-daemon
thread; a caller that runs `main([...])` in-process is never exited under it.

The programs are real subprocesses: `main()` as the console script calls it, with an
object whose `__del__` only runs in the teardown, and an atexit handler of their own.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from clirun import assert_valid_report, cli_env

from doctor import cli

PROGRAM = """
import atexit, sys, threading, time
from doctor.cli import main

class Teardown:
    def __del__(self):
        sys.stderr.write("TEARDOWN\\n")

kept = Teardown()  # a module global: freed only by the interpreter's teardown
atexit.register(lambda: sys.stderr.write("ATEXIT\\n"))
if "--with-thread" in sys.argv:
    sys.argv.remove("--with-thread")

    def work():
        # busy until the normal exit begins (it marks the main thread stopped before it
        # joins the others), so it is alive whenever the report comes out
        while threading.main_thread().is_alive():
            time.sleep(0.01)
        sys.stderr.write("THREAD DONE\\n")

    threading.Thread(target=work, daemon=False).start()
sys.argv = ["agent-doctor", *sys.argv[1:]]
main()
"""


def program(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, *args],
        capture_output=True,
        text=True,
        env=cli_env(plugins=True),
        timeout=60,
    )


@pytest.mark.parametrize(("check", "code"), [("fake-pass", 0), ("fake-fail", 1)])
def test_after_the_report_no_teardown_but_atexit_and_the_exit_code(check: str, code: int) -> None:
    proc = program("check", check, "--json")
    assert proc.returncode == code, proc.stderr
    report = assert_valid_report(json.loads(proc.stdout))  # the whole report came out
    assert [c["id"] for c in report["checks"]] == [check]
    assert "ATEXIT" in proc.stderr
    assert "TEARDOWN" not in proc.stderr


def test_a_command_without_a_report_exits_normally() -> None:
    """The same program through `list`: the teardown runs (so the test above can fail)."""
    proc = program("list")
    assert proc.returncode == 0, proc.stderr
    assert "ATEXIT" in proc.stderr and "TEARDOWN" in proc.stderr


def test_a_live_non_daemon_thread_keeps_the_normal_exit() -> None:
    proc = program("--with-thread", "check", "fake-pass", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "THREAD DONE" in proc.stderr and "TEARDOWN" in proc.stderr


def test_main_with_arguments_in_process_raises_system_exit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A caller that runs the CLI in-process gets SystemExit, not os._exit (pytest would
    die here otherwise)."""
    monkeypatch.delenv("ASSEMBLYAI_API_KEY", raising=False)
    with pytest.raises(SystemExit) as exited:
        cli.main(["check", "audio-format", "--json"])
    assert exited.value.code == 0
    report = assert_valid_report(json.loads(capsys.readouterr().out))
    assert report["checks"][0]["id"] == "audio-format"
