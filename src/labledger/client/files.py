"""File results over HTTP: hash then stream up (multipart), stream down and check the digest."""

from __future__ import annotations

import contextlib
import mimetypes
import os
import tempfile
from pathlib import Path

import blake3

from labledger.errors import IntegrityError

__all__ = ["DIGEST_HEADER", "DownloadCheck", "file_digest", "guess_type"]

DIGEST_HEADER = "X-Content-BLAKE3"
CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """The BLAKE3 hex digest of a file, read in chunks."""
    hasher = blake3.blake3()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            hasher.update(block)
    return hasher.hexdigest()


def guess_type(path: Path) -> str:
    """The media type of a file from its name (application/octet-stream when unknown)."""
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


class DownloadCheck:
    """Write a download to a temp file beside ``dest``, hash it, and rename it into place only
    when the digest matches the one the server announced."""

    def __init__(self, dest: Path, expected: str | None) -> None:
        self.dest = dest
        self.expected = expected
        self.hasher = blake3.blake3()
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        self.tmp = Path(name)
        self.out = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        """Take the next chunk."""
        self.hasher.update(chunk)
        self.out.write(chunk)

    def commit(self) -> str:
        """Check the digest and move the file into place; returns the digest."""
        self.out.flush()
        os.fsync(self.out.fileno())
        self.out.close()
        got = self.hasher.hexdigest()
        if self.expected is not None and got != self.expected:
            self.abort()
            raise IntegrityError(
                f"Download of {self.dest.name}: BLAKE3 {got} does not match the server's "
                f"{self.expected}; nothing was written"
            )
        os.replace(self.tmp, self.dest)
        return got

    def abort(self) -> None:
        """Drop the partial file."""
        with contextlib.suppress(OSError):
            self.out.close()
        self.tmp.unlink(missing_ok=True)
