"""The CLI as users run it: exit codes, JSON purity, schema, lazy imports, colour."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import assert_valid_report, cli_env, run_cli
from realparts import need_unshare


@pytest.mark.parametrize(
    ("check", "code"),
    [
        ("fake-pass", 0),
        ("fake-warn", 0),
        ("fake-fail", 1),
        ("fake-crash", 1),
        ("fake-hang", 1),
    ],
)
def test_exit_codes_follow_the_contract(check: str, code: int) -> None:
    proc = run_cli("check", check, "--json", plugins=True)
    assert proc.returncode == code, proc.stderr
    report = assert_valid_report(json.loads(proc.stdout))
    assert report["checks"][0]["id"] == check


@pytest.mark.parametrize(
    "args",
    [
        ["check", "no-such-check"],
        ["all", "--no-such-option"],
        ["all", "--skip", "no-such-check"],
        ["all", "--region", "mars"],
        ["all", "--proxy", "not a url"],
        ["all", "--ca-bundle", "/no/such/file.pem"],
        ["all", "--report", "/no/such/dir/report.json"],
        ["no-such-command"],
    ],
)
def test_bad_usage_exits_2_with_one_line_and_no_traceback(args: list[str]) -> None:
    proc = run_cli(*args, plugins=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agent-doctor: error:"), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_unknown_check_lists_the_valid_ids() -> None:
    proc = run_cli("check", "wat")
    assert "valid ids:" in proc.stderr and "environment" in proc.stderr


def test_crash_is_reported_with_type_and_message() -> None:
    proc = run_cli("check", "fake-crash", "--json", plugins=True)
    check = json.loads(proc.stdout)["checks"][0]
    assert (check["status"], check["cause"]) == ("error", "exception")
    assert check["evidence"]["exception_type"] == "RuntimeError"
    assert check["evidence"]["exception_message"] == "boom"


def test_prerequisite_failure_skips_and_check_pulls_in_needs() -> None:
    proc = run_cli("check", "fake-after-fail", "--json", plugins=True)
    checks = {c["id"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["fake-fail"]["status"] == "fail"
    assert (checks["fake-after-fail"]["status"], checks["fake-after-fail"]["cause"]) == (
        "skip",
        "prerequisite_failed",
    )


def test_json_mode_keeps_stdout_pure_json(tmp_path: Path) -> None:
    report_file = tmp_path / "r.json"
    proc = run_cli(
        "check",
        "fake-pass",
        "fake-warn",
        "fake-fail",
        "--json",
        "--report",
        str(report_file),
        plugins=True,
    )
    on_stdout = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    assert_valid_report(on_stdout)
    in_file = json.loads(report_file.read_text())
    assert in_file["checks"] == on_stdout["checks"]
    assert in_file["report_path"] == str(report_file)


def test_human_report_has_table_fix_blocks_and_verdict(tmp_path: Path) -> None:
    report_file = tmp_path / "r.json"
    proc = run_cli("check", "fake-pass", "fake-fail", "--report", str(report_file), plugins=True)
    out = proc.stdout
    assert proc.returncode == 1
    assert "check" in out.splitlines()[0] and "status" in out.splitlines()[0]
    assert "FAIL" in out and "PASS" in out
    assert "Fix: The WebSocket to the Voice Agent API cannot get through" in out
    assert "#firewall-blocking-websocket-connection" in out
    assert str(report_file) in out  # the support block names the report
    assert out.rstrip().splitlines()[-1].startswith("1 check failed; start with fake-fail")
    assert "\x1b[" not in out  # no colour off a TTY
    assert_valid_report(json.loads(report_file.read_text()))


def _run_on_pty(args: list[str], env: dict[str, str]) -> str:
    main, sub = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "doctor", *args],
        stdout=sub,
        stderr=sub,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(sub)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO once the child has gone
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode()


def test_colour_and_progress_on_a_tty_only_and_no_color_honoured() -> None:
    env = cli_env(plugins=True)
    tty_out = _run_on_pty(["check", "fake-pass", "fake-fail"], env)
    assert "\x1b[32m✔ pass" in tty_out and "\x1b[31m✘ fail" in tty_out
    assert "running: " in tty_out  # live progress line on the terminal
    plain = _run_on_pty(["check", "fake-pass", "fake-fail"], {**env, "NO_COLOR": "1"})
    assert "\x1b[32m" not in plain and "PASS" in plain
    flag = _run_on_pty(["check", "fake-pass", "--no-color"], env)
    assert "\x1b[32m" not in flag


def test_json_on_a_tty_has_no_progress_or_colour() -> None:
    out = _run_on_pty(["check", "fake-pass", "--json"], cli_env(plugins=True))
    assert "running:" not in out and "\x1b[" not in out
    json.loads(out)


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.strip() == "agent-doctor, version 0.1.0"
    help_text = run_cli("--help").stdout
    for command in ("all", "check", "list"):
        assert command in help_text


def test_list_prints_one_line_per_check_with_needs() -> None:
    proc = run_cli("list", plugins=True)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("environment") and "(needs: -)" in lines[0]
    assert any(
        line.startswith("fake-after-fail") and "(needs: fake-fail)" in line for line in lines
    )
    rows = json.loads(run_cli("list", "--json").stdout)
    assert rows[0]["id"] == "environment"


HEAVY = ("sounddevice", "scipy", "numpy", "websockets", "httpx", "tabulate")


@pytest.mark.parametrize("args", [["--help"], ["list"], ["all", "--help"]])
def test_help_and_list_do_not_import_heavy_modules(args: list[str]) -> None:
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['agent-doctor', *{args!r}]\n"
        "try:\n    runpy.run_module('doctor', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=60
    )
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_list_help_and_environment_work_without_network_or_sound() -> None:
    need_unshare()
    env = cli_env({"PULSE_SERVER": "unix:/nonexistent/native"})
    script = (
        "ip link set lo down 2>/dev/null; "
        f"{sys.executable} -m doctor list >/dev/null && "
        f"{sys.executable} -m doctor --help >/dev/null && "
        f"{sys.executable} -m doctor check environment --json"
    )
    proc = subprocess.run(
        ["unshare", "-rn", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode in (0, 1), proc.stderr
    report = assert_valid_report(json.loads(proc.stdout))
    assert report["checks"][0]["id"] == "environment"
    assert report["checks"][0]["status"] in ("pass", "fail")
