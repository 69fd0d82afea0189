"""Storing many files fast: read each once, copy in the kernel, flush to disk once at the end.

A :class:`BlobBatch` stores large files on a few threads (copying and hashing them release the
GIL) and small files on the calling thread meanwhile (threads storing small files would mostly
wait on each other for the GIL). A small file is read whole once: its bytes are hashed and,
when the digest is new, written to a temp file, so what is stored always matches its digest.
A large file is copied to a temp file inside the kernel (``copy_file_range``, which shares the
blocks on file systems that can, else ``sendfile``), and the copy (our own file, which nobody
else writes) is hashed through a read-only mapping: the stored bytes are the hashed bytes, read
from memory once. A copy whose content is stored already is dropped. With a :class:`StatCache`,
a file whose stat is unchanged since it was last hashed is not read at all.

Leaving the batch flushes every temp file to disk (one ``syncfs`` for many files on Linux, else
an ``fsync`` each on a few threads), then renames each to its final name and syncs the folders.
Flushing at the end rather than file by file keeps ``fsync``'s journal commits from stalling the
copies. Meanwhile the disk gets a head start (each large copy's writeback is started once it
is hashed; a thread runs ``syncfs`` every quarter second while many small files are stored),
so that flush finds little left to write; it proves nothing by itself, the flush at the end
does. The protocol is the store's: a final name appears only after its content was flushed,
so a crash at any moment leaves at worst stray temp files, never a blob with wrong content. A
caller saves a record referring to the blobs only after the batch is closed.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import mmap
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import blake3

from labledger.archive.statcache import StatCache
from labledger.archive.store import (
    CHUNK,
    LIST_BYTES_PER_DIGEST,
    BlobStore,
    StoredBlob,
    _write_all,
)

__all__ = ["BlobBatch"]

#: threads flushing blobs to disk (fsync waits on the disk and releases the GIL)
FLUSH_THREADS = 8
#: threads hashing and copying files
COPY_THREADS = 4
#: from this many new blobs (or folders) on, one syncfs() replaces an fsync each (Linux)
SYNCFS_FROM = 64
#: while many small files are stored, the file system is flushed this often (seconds) on a
#: thread: a head start for the batch's own flush (see _head_start)
HEAD_START_EVERY_S = 0.25
#: files up to this size are read whole once; larger ones are hashed, then copied in the kernel
SMALL_FILE = CHUNK
#: the stat of a file the cache does not know (it needs none: the cache has nothing to compare)
_NO_STAT = os.stat_result((0,) * 10)


class BlobBatch:
    """Put many files into ``store``; use as a context manager (see the module docstring).

    ``cache``, when given, lets unchanged files skip hashing; it is saved when the batch
    closes, after the blobs it names are durable.
    """

    def __init__(self, store: BlobStore, cache: StatCache | None = None) -> None:
        self.store = store
        self.cache = cache
        self._pending: dict[str, str | None] = {}  # temp file; None: being copied by a thread
        self._lock = threading.Lock()
        self._shards: set[str] = set()
        self._names = itertools.count()  # next() on it is atomic: no two threads share a name
        self._temp_prefix = f"{store.tmp}{os.sep}blob-{os.getpid()}-{id(self):x}-"
        # The names in each shard folder when it was first asked about (None: too many to
        # list), and how many digests a folder is expected to be asked about (see _stored).
        self._listed: dict[str, frozenset[str] | None] = {}
        self._asks_per_shard = 1

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
            if digest in self._pending or self._stored(digest):
                return False
            self._pending[digest] = None
            return True

    def _stored(self, digest: str) -> bool:
        """:meth:`BlobStore.has`, mostly without a system call (call with the lock held).

        A first archive asks about every file's digest and mostly finds nothing: a stat per
        file, on a store where a stat costs as much as a tenth of storing a small file. So a
        shard folder is listed once, when first asked about (a folder absent is empty), and
        a digest missing from that listing counts as not stored: at worst a blob stored
        meanwhile by another process is written again, under the same name with the same
        content. A digest found in the listing is confirmed with ``has`` (it may have been
        collected since), so no blob is ever taken for stored that is not. A folder too
        large for what is asked of it (as in :meth:`BlobStore.present`) is not listed.
        """
        shard = digest[:2]
        try:
            names = self._listed[shard]
        except KeyError:
            names = self._listed[shard] = self._list_shard(shard)
        if names is not None and digest[2:] not in names:
            return False
        return self.store.has(digest)

    def _list_shard(self, shard: str) -> frozenset[str] | None:
        folder = f"{self.store.objects}{os.sep}{shard}"
        try:
            size = os.stat(folder).st_size
        except FileNotFoundError:
            return frozenset()
        if size > LIST_BYTES_PER_DIGEST * self._asks_per_shard:
            return None
        try:
            return frozenset(os.listdir(folder))
        except FileNotFoundError:
            return frozenset()

    def _release(self, digest: str) -> None:
        with self._lock:
            del self._pending[digest]

    def _temp(self) -> tuple[int, str]:
        # Created read-only (blobs are immutable; the mode guards against slips) under a name
        # unique to this batch: cheaper than mkstemp's random names, and O_EXCL still
        # refuses a name that a crashed process with the same pid left behind.
        name = f"{self._temp_prefix}{next(self._names)}"
        try:
            return os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o444), name
        except FileExistsError:
            out, other = tempfile.mkstemp(dir=self.store.tmp, prefix="blob-")  # read-write
            os.fchmod(out, 0o444)
            return out, other

    def _cached(self, path: str, st: os.stat_result | None = None) -> StoredBlob | None:
        """The stored blob of ``path`` when the cache vouches it is unchanged, else None.

        ``st`` is the file's ``lstat`` when the caller has it (a folder walk does).
        """
        if self.cache is None or path not in self.cache:
            return None
        if st is None:
            st = os.lstat(path)
        digest = self.cache.lookup(path, st)
        if digest is not None and self.store.has(digest):
            return StoredBlob(digest, st.st_size, added=False)
        return None

    def _all_cached(
        self, keys: list[str], stats: Sequence[os.stat_result] | None
    ) -> list[tuple[str, int] | None]:
        """The ``(digest, size)`` of each of ``keys`` that the cache vouches for (as
        :meth:`_cached`), else None, asking the store about all their blobs at once (a listing
        of its shard folders, not a stat per blob, when there are many)."""
        cache = self.cache
        if cache is None:
            return [None] * len(keys)
        if stats is None:
            stats = [os.lstat(key) if key in cache else _NO_STAT for key in keys]
        digests = cache.lookup_many(keys, stats)
        stored = self.store.present({d for d in digests if d is not None})
        return [
            None if digest is None or digest not in stored else (digest, st.st_size)
            for digest, st in zip(digests, stats, strict=True)
        ]

    def put_file(self, path: Path) -> StoredBlob:
        """Store the regular file ``path`` (unless its content is stored already)."""
        key = str(path)
        return self._cached(key) or self._put_file(key)

    def _put_file(self, key: str) -> StoredBlob:
        # ``key`` is the file's path (absolute when it comes from archive_tree)
        # One open of the source serves hashing, copying and both change checks: on a busy
        # disk, per-file system calls are what an archive of many small files costs.
        hashed_at = time.time_ns()
        src = os.open(key, os.O_RDONLY)
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
                # The disk starts writing the copy now, while the other files are stored,
                # rather than when the batch closes: the flush then finds less to wait for.
                _start_writeback(out)
            finally:
                os.close(out)
            if size == before.st_size and _same_file(before, os.fstat(src)):
                if not self._reserve(digest):
                    os.unlink(tmp)
                    self._remember(key, before, src, digest, hashed_at, size)
                    return StoredBlob(digest, size, added=False)
                self._pending[digest] = tmp
                self._remember(key, before, src, digest, hashed_at, size)
                return StoredBlob(digest, size, added=True)
        except BaseException:
            _unlink(tmp)
            raise
        # The file changed while we copied it, or the kernel copied less than all of it (a
        # full tmpfs does that without an error). Store it the slow, always-consistent way
        # (hashing exactly the bytes written), which also raises the real error when the
        # disk is full.
        os.unlink(tmp)
        return self.store.put_file(Path(key))

    def _put_small(self, key: str, src: int, before: os.stat_result, hashed_at: int) -> StoredBlob:
        # The bytes hashed are the bytes written, so the blob always matches its digest even
        # if the file changes meanwhile.
        data = _read_all(src, before.st_size)
        digest = blake3.blake3(data).hexdigest()
        added = self._reserve(digest)
        if added:
            self._write_temp(digest, data)
        self._remember(key, before, src, digest, hashed_at, len(data))
        return StoredBlob(digest, len(data), added=added)

    def _put_small_walked(self, key: str, st: os.stat_result) -> StoredBlob:
        """:meth:`_put_small` of a file whose ``lstat`` a folder walk took: two ``fstat`` calls
        fewer per file, which is what many small files cost besides creating their blobs.

        The walk's stat, taken before ``hashed_at`` and so before the read, vouches for the
        bytes read as the open file's own stat would: a write after ``hashed_at`` moves the
        change time past the one recorded (the settling rule keeps a file changed within
        :data:`~labledger.archive.statcache.SETTLED_NS` of its hashing out of the cache), and
        a write between the walk and the read moves it past the one recorded too, so the cache
        simply does not vouch for that file next time. A file that grew or shrank since the
        walk is stored as read and not remembered; one that grew is stored as by
        :meth:`put_file`, which looks at its size again.
        """
        hashed_at = time.time_ns()
        src = os.open(key, os.O_RDONLY)
        try:
            data = os.read(src, st.st_size + 1)  # a byte more: finds the end, or that it grew
            if len(data) < st.st_size:  # it shrank, or a short read: read to the end
                data = b"".join([data, *iter(partial(os.read, src, CHUNK), b"")])
        finally:
            os.close(src)
        if len(data) > st.st_size:  # it grew since the walk, maybe by far: store it anew
            return self._put_file(key)
        digest = blake3.blake3(data).hexdigest()
        added = self._reserve(digest)
        if added:
            self._write_temp(digest, data)
        if self.cache is not None and len(data) == st.st_size:
            self.cache.record(key, st, digest, hashed_at)
        return StoredBlob(digest, len(data), added=added)

    def _write_temp(self, digest: str, data: bytes) -> None:
        """Write ``data`` to a new temp file, pending under ``digest`` (reserved already)."""
        tmp: str | None = None
        try:
            out, tmp = self._temp()
            try:
                _write_all(out, data)
            finally:
                os.close(out)
        except BaseException:
            self._release(digest)
            if tmp is not None:
                _unlink(tmp)
            raise
        self._pending[digest] = tmp

    def _remember(
        self, key: str, before: os.stat_result, src: int, digest: str, hashed_at: int, size: int
    ) -> None:
        # Only a file that did not change while it was read, and was read whole, is worth
        # remembering (a file that shrank or grew is stored as read, and hashed next time).
        if self.cache is not None and size == before.st_size and _same_file(before, os.fstat(src)):
            self.cache.record(key, before, digest, hashed_at)

    def put_many(
        self, paths: Sequence[Path | str], stats: Sequence[os.stat_result] | None = None
    ) -> list[StoredBlob]:
        """:meth:`put_file` for each path, on a few threads (hashing and copying release the
        GIL); results in the order of ``paths``. ``stats``, when given, are the files'
        ``lstat`` results (taken by a folder walk), which spares the cache a stat per file."""
        keys = [str(p) for p in paths]
        found = self._all_cached(keys, stats)
        stored = self._put_rest(keys, stats, found)
        return [
            StoredBlob(cached[0], cached[1], added=False) if cached is not None else stored[i]
            for i, cached in enumerate(found)
        ]

    def put_files(self, keys: list[str], stats: Sequence[os.stat_result]) -> list[tuple[str, int]]:
        """The ``(digest, size)`` of each file of ``keys`` (absolute paths, with their ``lstat``
        in ``stats``), stored as by :meth:`put_many`: for a folder walk, which needs no
        result object per file (a re-archive of unchanged files is little else)."""
        found = self._all_cached(keys, stats)
        stored = self._put_rest(keys, stats, found)
        return [
            cached if cached is not None else (stored[i].digest, stored[i].size)
            for i, cached in enumerate(found)
        ]

    def _put_rest(
        self,
        keys: list[str],
        stats: Sequence[os.stat_result] | None,
        found: list[tuple[str, int] | None],
    ) -> dict[int, StoredBlob]:
        """Store each file of ``keys`` that ``found`` has no blob for; by index in ``keys``."""
        todo = [i for i, cached in enumerate(found) if cached is None]
        if not todo:
            return {}
        # Their digests spread evenly over the 256 shard folders.
        self._asks_per_shard = max(self._asks_per_shard, len(todo) // 256)
        # Large files go to the threads, which spend their time in the kernel's copy and in
        # BLAKE3 with the GIL released; small files are stored here, one after the other,
        # meanwhile: a small file costs a few system calls and a little Python, so threads
        # storing small files would mostly wait on each other for the GIL.
        small = [] if stats is None else [i for i in todo if stats[i].st_size <= SMALL_FILE]
        large = [i for i in todo if stats is None or stats[i].st_size > SMALL_FILE]
        results: dict[int, StoredBlob] = {}
        with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="labledger-copy") as pool:
            copies = [pool.submit(self._put_file, keys[i]) for i in large]
            assert stats is not None or not small
            with _head_start(self.store.tmp, len(small) >= SYNCFS_FROM):
                for i in small:
                    results[i] = self._put_small_walked(keys[i], stats[i])  # type: ignore[index]
            for i, copy in zip(large, copies, strict=True):
                results[i] = copy.result()
        return results

    @staticmethod
    def _flush(tmp: str) -> None:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _flush_all(self, temps: list[str]) -> None:
        # Many small files: one syncfs() flushes them all, where an fsync each would cost a
        # journal commit each (milliseconds on ext4). Elsewhere, fsync each on a few threads.
        if len(temps) >= SYNCFS_FROM and _syncfs(self.store.tmp):
            return
        with ThreadPoolExecutor(FLUSH_THREADS, thread_name_prefix="labledger-fsync") as pool:
            list(pool.map(self._flush, temps))

    def close(self) -> None:
        """Flush every new blob, then give each its final name; raise the first error if any."""
        pending, self._pending = self._pending, {}
        touched: set[str] = set()
        renamed = 0
        objects = f"{self.store.objects}{os.sep}"
        try:
            temps = [t for t in pending.values() if t is not None]
            if temps:
                self._flush_all(temps)
            for digest, tmp in pending.items():
                assert tmp is not None  # every reservation is filled or dropped by put_file
                shard = f"{objects}{digest[:2]}"
                if shard not in self._shards:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(shard)
                    self._shards.add(shard)
                os.replace(tmp, f"{shard}{os.sep}{digest[2:]}")
                touched.add(shard)
                renamed += 1
        finally:
            # Only what was not renamed is still there (pending keeps its order).
            for tmp in itertools.islice(pending.values(), renamed, None):
                if tmp is not None:
                    _unlink(tmp)
        # Only the folders this batch renamed into: re-archiving unchanged files syncs nothing.
        if len(touched) >= SYNCFS_FROM and _syncfs(self.store.objects):
            return
        self.store.sync_dirs({Path(t) for t in touched})


@contextlib.contextmanager
def _head_start(folder: Path, wanted: bool) -> Iterator[None]:
    """While the block runs, flush the file system holding ``folder`` every
    :data:`HEAD_START_EVERY_S` on a thread (``syncfs``, Linux; elsewhere nothing).

    Only a head start: the disk writes the small files' temp files while more are stored,
    instead of all at once when the batch closes, so its flush finds less to wait for. It
    proves nothing about durability: the batch's own flush still runs before any rename.
    """
    if not wanted or not sys.platform.startswith("linux"):
        yield
        return
    stop = threading.Event()

    def flush() -> None:
        while not stop.wait(HEAD_START_EVERY_S):
            try:
                if not _syncfs(folder):
                    return
            except OSError:  # e.g. the store was removed meanwhile: the batch will say so
                return

    flusher = threading.Thread(target=flush, name="labledger-head-start", daemon=True)
    flusher.start()
    try:
        yield
    finally:
        stop.set()
        flusher.join()


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


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
    """Everything ``fd`` holds (``size`` is its length by ``fstat``; a grown file is read whole).

    One read asking for a byte more than ``size`` that returns exactly ``size`` bytes found
    the end: a file that grows later changes its stat, so the stat cache does not vouch for it.
    """
    chunk = os.read(fd, size + 1)  # no bigger: a buffer of a MiB costs an mmap per file
    if len(chunk) == size:
        return chunk
    parts = [chunk]
    while chunk := os.read(fd, CHUNK):
        parts.append(chunk)
    return b"".join(parts)


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ctime_ns) == (b.st_size, b.st_mtime_ns, b.st_ctime_ns)


@functools.cache
def _linux_call(name: str) -> Any | None:
    """The C library's function ``name`` on Linux (a call Python has no binding for), else
    None."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None


def _syncfs(folder: Path) -> bool:
    """Flush the whole file system holding ``folder`` (Linux ``syncfs``); False if unavailable."""
    syncfs = _linux_call("syncfs")
    if syncfs is None:
        return False
    fd = os.open(folder, os.O_RDONLY)
    try:
        return bool(syncfs(fd) == 0)
    finally:
        os.close(fd)


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``sync_file_range``, its argument types set, else None."""
    call = _linux_call("sync_file_range")
    if call is None:
        return None
    import ctypes

    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return cast("Callable[[int, int, int, int], int]", call)


#: sync_file_range: start writing the dirty pages of the range, without waiting for it
_SYNC_FILE_RANGE_WRITE = 2


def _start_writeback(fd: int) -> None:
    """Have the kernel start writing ``fd``'s dirty pages to disk, without waiting.

    Only a head start: it proves nothing about durability (the batch's flush still does).
    """
    call = _sync_file_range()
    if call is not None:
        call(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)  # an error only loses the head start


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
