"""`doctor/devices/` says what it holds."""

from __future__ import annotations

from pathlib import Path

import doctor.devices as pkg


def test_the_devices_package_docstring_names_every_module() -> None:
    """It once called itself only the PortAudio shell while it also ran pactl queries and
    redirected fd 2: every module is named, and so is what it does to the process."""
    folder = Path(pkg.__file__).parent
    doc = pkg.__doc__ or ""
    modules = sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
    assert modules and all(f"`{m}`" in doc for m in modules), modules
    assert "pactl" in doc and "file descriptor 2" in doc
