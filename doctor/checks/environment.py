"""`environment`: the Python, packages and PortAudio library that everything else needs."""

from __future__ import annotations

import importlib
import platform
import sys
from importlib import metadata
from typing import Any

from doctor import guide
from doctor.context import Context
from doctor.registry import check
from doctor.report.build import RUNTIME_PACKAGES
from doctor.result import Result, Status, passed, problem
from doctor.runner import run_blocking

MIN_PYTHON = (3, 10)


def portaudio_install_command(system: str | None = None) -> str:
    system = system or platform.system()
    if system == "Darwin":
        return "brew install portaudio"
    if system == "Windows":
        return "python -m pip install --force-reinstall sounddevice  # the wheel bundles PortAudio"
    return "sudo apt-get install libportaudio2  # Fedora: sudo dnf install portaudio"


def _probe_packages() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name in RUNTIME_PACKAGES:
        if name == "sounddevice":  # imported below, where its OSError means PortAudio
            continue
        try:
            importlib.import_module(name)
            found[name] = {"version": metadata.version(name), "ok": True}
        except Exception as exc:
            found[name] = {"version": None, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return found


def _probe_portaudio() -> dict[str, Any]:
    try:
        import sounddevice as sd
    except ImportError as exc:
        return {"sounddevice": None, "error": f"ImportError: {exc}", "kind": "package"}
    except OSError as exc:  # raised by sounddevice when libportaudio cannot be loaded
        return {
            "sounddevice": metadata.version("sounddevice"),
            "error": str(exc),
            "kind": "library",
        }
    return {"sounddevice": sd.__version__, "portaudio_version": sd.get_portaudio_version()[1]}


@check("environment", "Python, packages and PortAudio", timeout=60.0)
async def environment(ctx: Context) -> Result:
    """Python version, runtime packages importable, PortAudio library loadable."""
    from doctor.devices.serverprobe import server_unresponsive, unresponsive_once

    # Loading PortAudio enumerates through the sound server: a frozen one hangs it (60 s).
    frozen = await run_blocking(unresponsive_once)
    if frozen is not None:
        return server_unresponsive(
            frozen, {"python_version": platform.python_version(), "os": platform.system()}
        )
    packages = await run_blocking(_probe_packages)
    pa = await run_blocking(_probe_portaudio)
    evidence: dict[str, Any] = {
        "python_version": platform.python_version(),
        "python_executable": sys.executable,
        "os": platform.system(),
        "os_release": platform.release(),
        "architecture": platform.machine(),
        "packages": {name: info["version"] for name, info in packages.items()},
        "sounddevice_version": pa.get("sounddevice"),
        "portaudio_version": pa.get("portaudio_version"),
    }
    if sys.version_info < MIN_PYTHON:
        return problem(
            Status.FAIL,
            "python_too_old",
            f"Python {platform.python_version()} is older than 3.10",
            evidence,
            guide.fix("python_env", detail="install Python 3.10 or newer"),
        )
    missing = [n for n, info in packages.items() if not info["ok"]]
    if pa.get("kind") == "package":
        missing.append("sounddevice")
    if missing:
        evidence["package_errors"] = {n: packages[n].get("error") for n in missing if n in packages}
        return problem(
            Status.FAIL,
            "package_missing",
            f"missing or broken Python package(s): {', '.join(missing)}",
            evidence,
            guide.fix("python_env", detail=f"`python3 -m pip install {' '.join(missing)}`"),
        )
    if pa.get("error"):
        evidence["portaudio_error"] = pa["error"]
        return problem(
            Status.FAIL,
            "portaudio_missing",
            f"the PortAudio library cannot be loaded ({pa['error']})",
            evidence,
            guide.fix("portaudio", detail=portaudio_install_command()),
        )
    return passed(
        f"Python {platform.python_version()}, {len(packages) + 1} packages, "
        f"{pa['portaudio_version']}",
        evidence,
    )
