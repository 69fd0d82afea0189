"""Storing many files fast: copy in the kernel, flush to disk in the background.

A :class:`BlobBatch` hashes each file, and when its digest is new copies it to a temp file with
:func:`shutil.copyfile` (``sendfile`` on Linux, no round trip through Python). A pool of threads
then ``fsync``\\s each temp file and renames it to its final name, while the main thread goes on
with the next file. Leaving the batch waits for every blob to be durable, so a caller saves a
record that refers to the blobs only once they are safely on disk.

The protocol is the store's: a final name appears only after its content was flushed, so a
crash at any moment leaves at worst a stray temp file, never a blob with wrong content.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from labledger.archive.store import BlobStore, StoredBlob, hash_file

__all__ = ["BlobBatch"]

#: threads flushing blobs to disk (fsync waits on the disk and releases the GIL)
FLUSH_THREADS = 4


class BlobBatch:
    """Put many files into ``store``; use as a context manager (see the module docstring)."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(FLUSH_THREADS, thread_name_prefix="labledger-flush")
        self._pending: dict[str, Future[None]] = {}
        self._touched: set[Path] = set()

    def __enter__(self) -> BlobBatch:
        self.store.create()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def put_file(self, path: Path) -> StoredBlob:
        """Store the regular file ``path`` (unless its content is stored already)."""
        before = path.stat()
        digest, size = hash_file(path)
        if digest in self._pending or self.store.has(digest):
            return StoredBlob(digest, size, added=False)
        fd, name = tempfile.mkstemp(dir=self.store.tmp, prefix="blob-")
        os.close(fd)
        tmp = Path(name)
        try:
            shutil.copyfile(path, tmp)
            after = path.stat()
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            # The file changed while we copied it: what we copied may not match the digest.
            # Store it the slow, always-consistent way (hashing exactly the bytes written).
            tmp.unlink()
            return self.store.put_file(path)
        self._pending[digest] = self._pool.submit(self._commit, tmp, digest)
        return StoredBlob(digest, size, added=True)

    def _commit(self, tmp: Path, digest: str) -> None:
        try:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.fchmod(fd, 0o444)
            finally:
                os.close(fd)
            final = self.store.path_of(digest)
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

    def close(self) -> None:
        """Wait until every blob of the batch is on disk; raise the first error if any."""
        try:
            for future in self._pending.values():
                future.result()
        finally:
            self._pool.shutdown(wait=True)
            self._pending.clear()
        self.store.sync_dirs()
