"""Writing small files all-or-nothing. Standard library only, so light commands stay fast."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["EXPERIMENT_FILE", "RUN_FILE", "write_json_atomic"]

#: the experiment's config file, at the top of its folder
EXPERIMENT_FILE = "labledger.toml"
#: the open run's config file, next to it
RUN_FILE = "run.toml"


def write_json_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file, fsync and rename: all or nothing.

    The folder is synced too, so the rename itself survives a power cut.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; records are meant to be shared and synced
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
