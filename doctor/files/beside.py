"""The temporary file a whole-or-nothing write renames over its target.

`tempfile.mkstemp` creates it 0600, so every report and `--fix` output came out private
whatever the user's umask: a new file must get what `open(path, "w")` gives (0666 less the
umask, applied by the kernel), and a file replaced keeps its own permission bits."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def create_beside(path: str, prefix: str = ".agent-doctor-") -> tuple[int, str]:
    """(fd, name) of a new empty file in `path`'s folder with the mode `path` should have."""
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode) & 0o777  # no set-id bits
    except FileNotFoundError:
        mode = None
    directory = os.path.dirname(path) or "."
    for _ in range(100):
        tmp = os.path.join(directory, f"{prefix}{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, _FLAGS, 0o666)  # the umask applies, as for open(path, "w")
        except FileExistsError:
            continue
        if mode is not None:
            with contextlib.suppress(OSError):  # a file system without modes (FAT) keeps its own
                os.fchmod(fd, mode)
        return fd, tmp
    raise FileExistsError(f"no free temporary name in {directory}")
