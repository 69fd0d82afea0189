"""Storing many files fast: copy in the kernel, flush to disk once at the end.

A :class:`BlobBatch` hashes each file, and when its digest is new copies it to a temp file with
:func:`shutil.copyfile` (``sendfile`` on Linux, no round trip through Python). Leaving the batch
flushes every temp file with ``fsync`` (on a few threads, as fsync mostly waits on the disk),
then renames each to its final name and syncs the folders. Flushing at the end rather than
file by file keeps ``fsync``'s journal commits from stalling the copies (on ext4 they do).

The protocol is the store's: a final name appears only after its content was flushed, so a
crash at any moment leaves at worst stray temp files, never a blob with wrong content. A caller
saves a record referring to the blobs only after the batch is closed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from labledger.archive.store import BlobStore, StoredBlob, hash_file

__all__ = ["BlobBatch"]

#: threads flushing blobs to disk (fsync waits on the disk and releases the GIL)
FLUSH_THREADS = 8
#: threads hashing and copying files
COPY_THREADS = 4


class BlobBatch:
    """Put many files into ``store``; use as a context manager (see the module docstring)."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self._pending: dict[str, Path | None] = {}  # None: being copied by some thread
        self._lock = threading.Lock()

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
        with self._lock:  # reserve the digest, so two threads never copy the same content
            if digest in self._pending or self.store.has(digest):
                return StoredBlob(digest, size, added=False)
            self._pending[digest] = None
        tmp: Path | None = None
        try:
            fd, name = tempfile.mkstemp(dir=self.store.tmp, prefix="blob-")
            os.close(fd)
            tmp = Path(name)
            shutil.copyfile(path, tmp)
            after = path.stat()
            if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns):
                self._pending[digest] = tmp
                return StoredBlob(digest, size, added=True)
        except BaseException:
            with self._lock:
                del self._pending[digest]
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise
        # The file changed while we copied it: what we copied may not match the digest.
        # Store it the slow, always-consistent way (hashing exactly the bytes written).
        with self._lock:
            del self._pending[digest]
        tmp.unlink()
        return self.store.put_file(path)

    def put_many(self, paths: Sequence[Path]) -> list[StoredBlob]:
        """:meth:`put_file` for each path, on a few threads (hashing and copying release the
        GIL); results in the order of ``paths``."""
        if len(paths) < 2:
            return [self.put_file(p) for p in paths]
        with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="labledger-copy") as pool:
            return list(pool.map(self.put_file, paths))

    @staticmethod
    def _flush(tmp: Path) -> None:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.fchmod(fd, 0o444)  # blobs are immutable; a read-only mode guards against slips
        finally:
            os.close(fd)

    def close(self) -> None:
        """Flush every new blob, then give each its final name; raise the first error if any."""
        pending, self._pending = self._pending, {}
        touched: set[Path] = set()
        try:
            if pending:
                with ThreadPoolExecutor(
                    FLUSH_THREADS, thread_name_prefix="labledger-fsync"
                ) as pool:
                    list(pool.map(self._flush, [t for t in pending.values() if t is not None]))
            for digest, tmp in pending.items():
                assert tmp is not None  # every reservation is filled or dropped by put_file
                final = self.store.path_of(digest)
                final.parent.mkdir(exist_ok=True)
                os.replace(tmp, final)
                touched.add(final.parent)
        finally:
            for tmp in pending.values():
                if tmp is not None:
                    tmp.unlink(missing_ok=True)  # only what was not renamed is still there
        # Only the folders this batch renamed into: re-archiving unchanged files syncs nothing.
        self.store.sync_dirs(touched)
