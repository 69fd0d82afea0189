"""Storing many files fast: copy in the kernel, flush to disk once at the end.

A :class:`BlobBatch` opens each file once, hashes it, and when its digest is new copies it to a
temp file with ``sendfile`` (no round trip through Python), on a few threads. Leaving the batch
flushes every temp file to disk (one ``syncfs`` for many files on Linux, else an ``fsync`` each
on a few threads), then renames each to its final name and syncs the folders. Flushing at the
end rather than file by file keeps ``fsync``'s journal commits from stalling the copies.

The protocol is the store's: a final name appears only after its content was flushed, so a
crash at any moment leaves at worst stray temp files, never a blob with wrong content. A caller
saves a record referring to the blobs only after the batch is closed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from labledger.archive.store import CHUNK, BlobStore, StoredBlob, hash_fd

__all__ = ["BlobBatch"]

#: threads flushing blobs to disk (fsync waits on the disk and releases the GIL)
FLUSH_THREADS = 8
#: threads hashing and copying files
COPY_THREADS = 4
#: from this many new blobs (or folders) on, one syncfs() replaces an fsync each (Linux)
SYNCFS_FROM = 64


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
        # One open of the source serves hashing, copying and both change checks: on a busy
        # disk, per-file system calls are what an archive of many small files costs.
        src = os.open(path, os.O_RDONLY)
        try:
            before = os.fstat(src)
            digest, size = hash_fd(src)
            with self._lock:  # reserve the digest, so two threads never copy the same content
                if digest in self._pending or self.store.has(digest):
                    return StoredBlob(digest, size, added=False)
                self._pending[digest] = None
            tmp: Path | None = None
            try:
                out, name = tempfile.mkstemp(dir=self.store.tmp, prefix="blob-")
                tmp = Path(name)
                try:
                    _copy_fd(src, out, size)
                finally:
                    os.close(out)
                after = os.fstat(src)
                if (before.st_size, before.st_mtime_ns) == (after.st_size, after.st_mtime_ns):
                    self._pending[digest] = tmp
                    return StoredBlob(digest, size, added=True)
            except BaseException:
                with self._lock:
                    del self._pending[digest]
                if tmp is not None:
                    tmp.unlink(missing_ok=True)
                raise
        finally:
            os.close(src)
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
        finally:
            os.close(fd)

    def _flush_all(self, temps: list[Path]) -> None:
        # Many small files: one syncfs() flushes them all, where an fsync each would cost a
        # journal commit each (milliseconds on ext4). Elsewhere, fsync each on a few threads.
        if len(temps) >= SYNCFS_FROM and _syncfs(self.store.tmp):
            return
        with ThreadPoolExecutor(FLUSH_THREADS, thread_name_prefix="labledger-fsync") as pool:
            list(pool.map(self._flush, temps))

    def close(self) -> None:
        """Flush every new blob, then give each its final name; raise the first error if any."""
        pending, self._pending = self._pending, {}
        touched: set[Path] = set()
        try:
            temps = [t for t in pending.values() if t is not None]
            if temps:
                self._flush_all(temps)
            for digest, tmp in pending.items():
                assert tmp is not None  # every reservation is filled or dropped by put_file
                tmp.chmod(0o444)  # blobs are immutable; a read-only mode guards against slips
                final = self.store.path_of(digest)
                final.parent.mkdir(exist_ok=True)
                os.replace(tmp, final)
                touched.add(final.parent)
        finally:
            for tmp in pending.values():
                if tmp is not None:
                    tmp.unlink(missing_ok=True)  # only what was not renamed is still there
        # Only the folders this batch renamed into: re-archiving unchanged files syncs nothing.
        if len(touched) >= SYNCFS_FROM and _syncfs(self.store.objects):
            return
        self.store.sync_dirs(touched)


def _copy_fd(src: int, out: int, size: int) -> None:
    """Copy ``size`` bytes from the start of ``src`` to ``out`` inside the kernel."""
    offset = 0
    while offset < size:
        try:
            sent = os.sendfile(out, src, offset, min(size - offset, 1 << 30))
        except OSError:  # no sendfile between these files: copy through a buffer
            os.lseek(src, offset, os.SEEK_SET)
            while chunk := os.read(src, CHUNK):
                os.write(out, chunk)
            return
        if sent == 0:
            return  # the file shrank; the caller's change check notices
        offset += sent


def _syncfs(folder: Path) -> bool:
    """Flush the whole file system holding ``folder`` (Linux ``syncfs``); False if unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(folder, os.O_RDONLY)
    try:
        return bool(syncfs(fd) == 0)
    finally:
        os.close(fd)
