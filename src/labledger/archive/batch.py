"""Storing many files fast: read each once, copy in the kernel, flush to disk once at the end.

A :class:`BlobBatch` stores files on a few threads (hashing and copying release the GIL). A
small file is read whole once: its bytes are hashed and, when the digest is new, written to a
temp file, so what is stored always matches its digest. A large file is copied to a temp file
inside the kernel (``copy_file_range``, which shares the blocks on file systems that can, else
``sendfile``), and the copy (our own file, which nobody else writes) is hashed through a
read-only mapping: the stored bytes are the hashed bytes, read from memory once. A copy whose
content is stored already is dropped. With a :class:`StatCache`, a file whose stat is
unchanged since it was last hashed is not read at all.

Leaving the batch flushes every temp file to disk (one ``syncfs`` for many files on Linux, else
an ``fsync`` each on a few threads), then renames each to its final name and syncs the folders.
Flushing at the end rather than file by file keeps ``fsync``'s journal commits from stalling the
copies. The protocol is the store's: a final name appears only after its content was flushed,
so a crash at any moment leaves at worst stray temp files, never a blob with wrong content. A
caller saves a record referring to the blobs only after the batch is closed.
"""

from __future__ import annotations

import itertools
import mmap
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import blake3

from labledger.archive.statcache import StatCache
from labledger.archive.store import CHUNK, BlobStore, StoredBlob, _write_all

__all__ = ["BlobBatch"]

#: threads flushing blobs to disk (fsync waits on the disk and releases the GIL)
FLUSH_THREADS = 8
#: threads hashing and copying files
COPY_THREADS = 4
#: from this many new blobs (or folders) on, one syncfs() replaces an fsync each (Linux)
SYNCFS_FROM = 64
#: files up to this size are read whole once; larger ones are hashed, then copied in the kernel
SMALL_FILE = CHUNK


class BlobBatch:
    """Put many files into ``store``; use as a context manager (see the module docstring).

    ``cache``, when given, lets unchanged files skip hashing; it is saved when the batch
    closes, after the blobs it names are durable.
    """

    def __init__(self, store: BlobStore, cache: StatCache | None = None) -> None:
        self.store = store
        self.cache = cache
        self._pending: dict[str, Path | None] = {}  # None: being copied by some thread
        self._lock = threading.Lock()
        self._shards: set[Path] = set()
        self._names = itertools.count()  # next() on it is atomic: no two threads share a name

    def __enter__(self) -> BlobBatch:
        self.store.create()
        if self.cache is not None:
            self.cache.load()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        if exc_type is None and self.cache is not None:
            self.cache.save()

    def _reserve(self, digest: str) -> bool:
        """Claim ``digest`` for this thread to copy; False when stored or claimed already."""
        with self._lock:
            if digest in self._pending or self.store.has(digest):
                return False
            self._pending[digest] = None
            return True

    def _release(self, digest: str) -> None:
        with self._lock:
            del self._pending[digest]

    def _temp(self) -> tuple[int, Path]:
        # Created read-only (blobs are immutable; the mode guards against slips) under a name
        # unique to this batch: cheaper than mkstemp's random names, and O_EXCL still
        # refuses a name that a crashed process with the same pid left behind.
        name = self.store.tmp / f"blob-{os.getpid()}-{id(self):x}-{next(self._names)}"
        try:
            return os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o444), name
        except FileExistsError:
            out, other = tempfile.mkstemp(dir=self.store.tmp, prefix="blob-")  # read-write
            os.fchmod(out, 0o444)
            return out, Path(other)

    def _cached(self, path: Path) -> StoredBlob | None:
        """The stored blob of ``path`` when the cache vouches it is unchanged, else None."""
        if self.cache is None:
            return None
        st = os.lstat(path)
        digest = self.cache.lookup(str(path), st)
        if digest is not None and self.store.has(digest):
            return StoredBlob(digest, st.st_size, added=False)
        return None

    def put_file(self, path: Path) -> StoredBlob:
        """Store the regular file ``path`` (unless its content is stored already)."""
        return self._cached(path) or self._put_file(path)

    def _put_file(self, path: Path) -> StoredBlob:
        key = str(path)  # absolute when it comes from archive_tree
        # One open of the source serves hashing, copying and both change checks: on a busy
        # disk, per-file system calls are what an archive of many small files costs.
        hashed_at = time.time_ns()
        src = os.open(path, os.O_RDONLY)
        try:
            before = os.fstat(src)
            if before.st_size <= SMALL_FILE:
                return self._put_small(key, src, before, hashed_at)
            return self._put_large(key, src, before, hashed_at)
        finally:
            os.close(src)

    def _put_large(self, key: str, src: int, before: os.stat_result, hashed_at: int) -> StoredBlob:
        # Copied first, inside the kernel, then the copy is hashed: what is stored always
        # matches its digest, and the bytes are read from the page cache once (the copy's
        # pages, mapped) instead of once per pass.
        out, tmp = self._temp()
        try:
            try:
                _copy_fd(src, out, before.st_size)
                digest, size = _hash_own_file(out)
            finally:
                os.close(out)
            if size == before.st_size and _same_file(before, os.fstat(src)):
                if not self._reserve(digest):
                    tmp.unlink()
                    self._remember(key, before, src, digest, hashed_at, size)
                    return StoredBlob(digest, size, added=False)
                self._pending[digest] = tmp
                self._remember(key, before, src, digest, hashed_at, size)
                return StoredBlob(digest, size, added=True)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        # The file changed while we copied it, or the kernel copied less than all of it (a
        # full tmpfs does that without an error). Store it the slow, always-consistent way
        # (hashing exactly the bytes written), which also raises the real error when the
        # disk is full.
        tmp.unlink()
        return self.store.put_file(Path(key))

    def _put_small(self, key: str, src: int, before: os.stat_result, hashed_at: int) -> StoredBlob:
        # The bytes hashed are the bytes written, so the blob always matches its digest even
        # if the file changes meanwhile.
        data = _read_all(src, before.st_size)
        digest = blake3.blake3(data).hexdigest()
        if self._reserve(digest):
            tmp: Path | None = None
            try:
                out, tmp = self._temp()
                try:
                    _write_all(out, data)
                finally:
                    os.close(out)
            except BaseException:
                self._release(digest)
                if tmp is not None:
                    tmp.unlink(missing_ok=True)
                raise
            self._pending[digest] = tmp
            added = True
        else:
            added = False
        self._remember(key, before, src, digest, hashed_at, len(data))
        return StoredBlob(digest, len(data), added=added)

    def _remember(
        self, key: str, before: os.stat_result, src: int, digest: str, hashed_at: int, size: int
    ) -> None:
        # Only a file that did not change while it was read, and was read whole, is worth
        # remembering (a file that shrank or grew is stored as read, and hashed next time).
        if self.cache is not None and size == before.st_size and _same_file(before, os.fstat(src)):
            self.cache.record(key, before, digest, hashed_at)

    def put_many(self, paths: Sequence[Path]) -> list[StoredBlob]:
        """:meth:`put_file` for each path, on a few threads (hashing and copying release the
        GIL); results in the order of ``paths``."""
        # Files the cache vouches for cost a stat each: check them here, and hand only the
        # rest to the threads (a task costs more than such a check).
        results = [self._cached(p) for p in paths]
        todo = [i for i, found in enumerate(results) if found is None]
        if len(todo) < 2:
            for i in todo:
                results[i] = self._put_file(paths[i])
        else:
            with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="labledger-copy") as pool:
                for i, stored in zip(
                    todo, pool.map(self._put_file, [paths[i] for i in todo]), strict=True
                ):
                    results[i] = stored
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]  # every None was filled above

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
                final = self.store.path_of(digest)
                if final.parent not in self._shards:
                    final.parent.mkdir(exist_ok=True)
                    self._shards.add(final.parent)
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
    use_range = hasattr(os, "copy_file_range")
    while offset < size:
        try:
            if use_range:
                # copy_file_range lets the file system share blocks (reflink) where it can.
                sent = os.copy_file_range(src, out, min(size - offset, 1 << 30), offset, offset)
            else:
                sent = os.sendfile(out, src, offset, min(size - offset, 1 << 30))
        except OSError:
            if use_range:  # e.g. across file systems on an old kernel: try sendfile
                use_range = False
                continue
            # no sendfile between these files either: copy through a buffer
            os.lseek(src, offset, os.SEEK_SET)
            os.lseek(out, offset, os.SEEK_SET)
            while chunk := os.read(src, CHUNK):
                _write_all(out, chunk)
            return
        if sent == 0:
            # The file shrank, or the kernel copied nothing for another reason (a full tmpfs
            # answers 0 rather than ENOSPC): copy the rest through a buffer, which either
            # finishes, finds the end of a shrunk file (the caller's change check notices),
            # or raises the real error.
            os.lseek(src, offset, os.SEEK_SET)
            os.lseek(out, offset, os.SEEK_SET)
            while chunk := os.read(src, CHUNK):
                _write_all(out, chunk)
            return
        offset += sent


def _read_all(fd: int, size: int) -> bytes:
    """Everything ``fd`` holds (``size`` is the expected length; a grown file is read whole)."""
    parts = []
    while chunk := os.read(fd, max(size, CHUNK) + 1):
        parts.append(chunk)
    return b"".join(parts) if len(parts) != 1 else parts[0]


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ctime_ns) == (b.st_size, b.st_mtime_ns, b.st_ctime_ns)


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


def _hash_own_file(fd: int) -> tuple[str, int]:
    """The digest and size of our own temp file ``fd`` (open for reading), through a mapping.

    Only a file nobody else writes is mapped: a source file truncated by another process
    while mapped would kill this one with SIGBUS.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return blake3.blake3().hexdigest(), 0
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as view:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)  # releases the GIL
        hasher.update(view)
        return hasher.hexdigest(), size
