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
    "importlib",  # import_module("sounddevice") would hide a device import from this walk
    "doctor.devices",
    "doctor.files",
    "doctor.net",
    "doctor.checks",
    "doctor.commands",
    "doctor.sandbox",
}
# calls that open files or sockets even without an import
FORBIDDEN_CALLS = {
    "__import__",
    "open",
    "fromfile",
    "tofile",
    "load",
    "save",
    "savez",
    "loadtxt",
    "genfromtxt",
}
FORBIDDEN_OS_ATTRS = {"open", "fdopen", "read", "write", "listdir", "scandir", "stat", "remove"}


def _modules() -> list[Path]:
    return sorted(AUDIO.rglob("*.py"))


def _package(path: Path) -> str:
    """The dotted package a module's relative imports start from."""
    parts = list(path.relative_to(AUDIO.parent.parent).with_suffix("").parts)
    return ".".join(parts[:-1])


def _imported(tree: ast.AST, package: str = "") -> list[tuple[int, str]]:
    """Every module a file imports, absolute names; `from ..files import x` is resolved
    against `package` (the importing module's package)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, *([node.module] if node.module else [])])
            if node.module or node.level:
                out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return out


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IMPORTS)


def test_the_walk_sees_every_module() -> None:
    mods = _modules()
    assert len(mods) >= 20 and any(m.parent.name == "echo" for m in mods)


def _violations(tree: ast.AST, package: str) -> list[str]:
    """Forbidden imports and I/O calls in one module's syntax tree."""
    imported = _imported(tree, package)
    bad = [f"line {ln}: import {name}" for ln, name in imported if _forbidden(name)]
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
    return bad


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(AUDIO)))
def test_no_io_in_audio_cores(path: Path) -> None:
    bad = _violations(ast.parse(path.read_text(), str(path)), _package(path))
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


@pytest.mark.parametrize(
    "src,package",
    [
        ("from ...devices import portaudio\n", "doctor.audio.format"),
        ("from ..files.sources import open_chunks\n", "doctor.audio"),
        ("def f():\n    from ... import files\n", "doctor.audio.echo"),
        ("import importlib\nimportlib.import_module('sounddevice')\n", "doctor.audio"),
        ("from importlib import import_module\n", "doctor.audio.rate"),
        ("__import__('sounddevice')\n", "doctor.audio"),
    ],
)
def test_the_walker_catches_relative_and_dynamic_imports(src: str, package: str) -> None:
    """Relative imports resolve against the module's package (to doctor.devices or
    doctor.files here); importlib and __import__ are refused outright."""
    assert _violations(ast.parse(src), package)


def test_relative_imports_resolve_from_the_modules_package() -> None:
    init = AUDIO / "format" / "__init__.py"
    mod = AUDIO / "format" / "analyze.py"
    assert _package(mod) == _package(init) == "doctor.audio.format"
    tree = ast.parse("from .levels import x\nfrom ..rate import estimate\n")
    assert [n for _, n in _imported(tree, "doctor.audio.format")] == [
        "doctor.audio.format.levels",
        "doctor.audio.format.levels.x",
        "doctor.audio.rate",
        "doctor.audio.rate.estimate",
    ]
