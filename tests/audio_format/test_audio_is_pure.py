"""`doctor/audio/` holds pure cores: no devices, no files, no sockets (ARCHITECTURE.md).

Walks every module's syntax tree, imports inside functions included, so a lazy
`import sounddevice` in a core cannot hide from the test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

AUDIO = Path(__file__).resolve().parents[2] / "doctor" / "audio"

# top-level packages and doctor sub-packages that mean devices, files or the network
FORBIDDEN_IMPORTS = {
    "sounddevice",
    "soundfile",
    "pyaudio",
    "socket",
    "ssl",
    "select",
    "selectors",
    "asyncio",
    "subprocess",
    "websockets",
    "httpx",
    "urllib",
    "http",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "wave",
    "aifc",
    "mmap",
    "doctor.devices",
    "doctor.files",
    "doctor.net",
    "doctor.checks",
    "doctor.commands",
    "doctor.sandbox",
}
# calls that open files or sockets even without an import
FORBIDDEN_CALLS = {"open", "fromfile", "tofile", "load", "save", "savez", "loadtxt", "genfromtxt"}
FORBIDDEN_OS_ATTRS = {"open", "fdopen", "read", "write", "listdir", "scandir", "stat", "remove"}


def _modules() -> list[Path]:
    return sorted(AUDIO.rglob("*.py"))


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IMPORTS)


def test_the_walk_sees_every_module() -> None:
    mods = _modules()
    assert len(mods) >= 20 and any(m.parent.name == "echo" for m in mods)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(AUDIO)))
def test_no_io_in_audio_cores(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    bad = [f"line {ln}: import {name}" for ln, name in _imported(tree) if _forbidden(name)]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in FORBIDDEN_CALLS:
            bad.append(f"line {node.lineno}: {f.id}(...)")
        elif isinstance(f, ast.Attribute):
            owner = f.value.id if isinstance(f.value, ast.Name) else ""
            if owner == "os" and f.attr in FORBIDDEN_OS_ATTRS:
                bad.append(f"line {node.lineno}: os.{f.attr}(...)")
            elif owner in ("np", "numpy") and f.attr in FORBIDDEN_CALLS:
                bad.append(f"line {node.lineno}: np.{f.attr}(...)")
    assert not bad, f"{path.relative_to(AUDIO.parent.parent)} does I/O: " + "; ".join(bad)


def test_the_walker_catches_a_lazy_device_import() -> None:
    """The test's own teeth: an import inside a function and an open() are both seen."""
    src = "def f():\n    import sounddevice as sd\n    from doctor.files import sources\n"
    names = [n for _, n in _imported(ast.parse(src))]
    assert _forbidden("sounddevice") and any(_forbidden(n) for n in names)
    calls = [
        n.func.id
        for n in ast.walk(ast.parse("open('x')"))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    ]
    assert calls == ["open"]
