"""A content-addressed blob store: every file kept once, named by its BLAKE3 digest.

Layout under the store root::

    objects/ab/cdef...   one blob per digest (64 hex chars, split 2 + 62 so no folder grows huge)
    tmp/                 blobs being written; anything left here after a crash is garbage

A blob is written to ``tmp/``, flushed to disk with ``fsync`` and only then renamed to its final
name, so a name under ``objects/`` always points at complete content. Files are streamed in
chunks and never read whole into memory.
"""

from __future__ import annotations

import contextlib
import enum
import io
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import blake3

from labledger.errors import IntegrityError, NotFound, StorageFull, is_disk_full

__all__ = [
    "CHUNK",
    "DIGEST_LEN",
    "LIST_BYTES_PER_DIGEST",
    "LIST_FROM",
    "UPLOAD_NOT_STORED",
    "BlobStore",
    "LocalReceiver",
    "StoredBlob",
    "Sweep",
    "VerifyReport",
    "hash_fd",
    "hash_file",
    "no_space_is_storage_full",
]

#: read and write in chunks of this size (large enough for BLAKE3 to use several cores)
CHUNK = 1 << 20
#: length of a digest in hex characters
DIGEST_LEN = 64
_HEX = frozenset("0123456789abcdef")
#: many digests joined, checked in one pass (a regex scans text faster than a set per character)
_ALL_HEX = re.compile("[0-9a-f]*")


#: what a server says when an upload found its disk full
UPLOAD_NOT_STORED = "the upload was not stored; free space on that disk, then send it again"


@contextlib.contextmanager
def no_space_is_storage_full(where: Path, then: str) -> Iterator[None]:
    """Turn a full disk's OSError inside the block into :class:`StorageFull` naming ``where``."""
    try:
        yield
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        raise StorageFull.on_disk(where, then) from exc


#: :meth:`BlobStore.present` lists a shard folder from this many digests asked of it on (below,
#: a stat per blob is cheaper than listing the folder)
LIST_FROM = 8
#: ... and only while the folder's size (bytes, as ``stat`` gives it) is at most this much per
#: digest asked: listing a name costs a tenth of a stat or less, and an ext4 entry of a blob
#: takes 72 bytes, so a folder of a huge store is not read whole to find a few blobs
LIST_BYTES_PER_DIGEST = 1024

#: files at least this large are hashed on several threads (smaller ones lose to the overhead)
_THREADED_FROM = 16 * CHUNK


def _new_hasher(size: int = 0) -> blake3.blake3:
    # AUTO lets BLAKE3 hash big chunks on several threads; it releases the GIL while it does.
    if size >= _THREADED_FROM:
        return blake3.blake3(max_threads=blake3.blake3.AUTO)
    return blake3.blake3()


def hash_file(path: Path) -> tuple[str, int]:
    """The BLAKE3 hex digest and size of the file at ``path``, streamed in chunks."""
    with path.open("rb", buffering=0) as src:
        return hash_fd(src.fileno())


def hash_fd(fd: int) -> tuple[str, int]:
    """The BLAKE3 hex digest and size of what can be read from the open file ``fd``."""
    size = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with io.FileIO(fd, "rb", closefd=False) as src:
        hasher = _new_hasher(os.fstat(fd).st_size)
        while n := src.readinto(buf):
            hasher.update(view[:n])
            size += n
    return hasher.hexdigest(), size


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is 64 lowercase hex characters, else raise IntegrityError."""
    if len(digest) != DIGEST_LEN or not _HEX.issuperset(digest):
        raise IntegrityError(f"Not a BLAKE3 digest (64 lowercase hex characters): {digest!r}")
    return digest


@dataclass(frozen=True)
class StoredBlob:
    """The result of putting content: its digest, its size and whether it was new."""

    digest: str
    size: int
    added: bool


class Sweep(enum.Enum):
    """What garbage collection did with one unreferenced content."""

    REMOVED = "removed"
    KEPT = "kept"  # stored or claimed within the grace period, or referenced meanwhile
    GONE = "gone"  # absent already


@dataclass
class VerifyReport:
    """What :meth:`BlobStore.verify` found: blobs checked and the names of damaged ones."""

    checked: int = 0
    bytes_checked: int = 0
    damaged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is damaged or missing."""
        return not self.damaged and not self.missing


class BlobStore:
    """Blobs under ``root``; see the module docstring for the layout and the write protocol."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self.tmp = root / "tmp"
        self._objects_prefix = f"{self.objects}{os.sep}"  # has() runs per file: no Path objects

    def create(self) -> None:
        """Make the folders of an empty store (idempotent)."""
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path_of(self, digest: str) -> Path:
        """Where the blob with ``digest`` lives (whether or not it exists)."""
        check_digest(digest)
        return self.objects / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        """True when the blob is stored."""
        check_digest(digest)
        blob = f"{self._objects_prefix}{digest[:2]}{os.sep}{digest[2:]}"
        return os.path.isfile(blob)  # noqa: PTH113  # runs per archived file: no Path object

    @property
    def location(self) -> str:
        """Where the blobs are, for messages."""
        return str(self.objects)

    def size_of(self, digest: str) -> int | None:
        """The size of the stored blob, or None when it is absent."""
        try:
            return self.path_of(digest).stat().st_size
        except FileNotFoundError:
            return None

    def present(self, digests: Iterable[str]) -> set[str]:
        """Those of ``digests`` whose blob is stored (a regular file, as for :meth:`has`).

        Asked about many digests at once (a re-archive checks every file's), a shard folder
        holding several of them is listed once instead of stat-ing each blob: a few hundred
        listings rather than tens of thousands of stats. A folder much larger than what is
        asked of it (a store of millions of blobs) has its blobs stat-ed as before.
        """
        asked = list(digests)
        # Checked all at once (one pass over their joined text), as each would be by has():
        # a damaged digest must not name a path outside the store.
        if any(len(d) != DIGEST_LEN for d in asked) or not _ALL_HEX.fullmatch("".join(asked)):
            for digest in asked:
                check_digest(digest)  # raises, naming the first bad one
        by_shard: dict[str, list[str]] = {}
        for digest in asked:
            by_shard.setdefault(digest[:2], []).append(digest)
        found: set[str] = set()
        for shard, wanted in by_shard.items():
            folder = f"{self._objects_prefix}{shard}"
            if len(wanted) >= LIST_FROM:
                try:
                    size = os.stat(folder).st_size  # noqa: PTH116  # no Path objects here
                    listable = size <= LIST_BYTES_PER_DIGEST * len(wanted)
                except FileNotFoundError:
                    continue  # no blob of this shard is stored
                if listable:
                    with os.scandir(folder) as it:
                        # is_file() follows a symlink as isfile() does, and uses the listing's
                        # type where the file system gives one (no stat)
                        names = {entry.name for entry in it if entry.is_file()}
                    found.update(d for d in wanted if d[2:] in names)
                    continue
            found.update(
                d
                for d in wanted
                if os.path.isfile(f"{folder}{os.sep}{d[2:]}")  # noqa: PTH113  # per blob
            )
        return found

    def missing(self, digests: list[str]) -> list[str]:
        """Those of ``digests`` that are not stored, in the order given."""
        stored = self.present(digests)
        return [d for d in digests if d not in stored]

    def local_path(self, digest: str) -> Path | None:
        """The file holding the blob (a local store serves downloads straight from it)."""
        return self.path_of(digest)

    def iter_chunks(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The blob's bytes from ``start`` to ``end`` (inclusive; None: to the end), in chunks."""
        with self.open(digest) as src:
            src.seek(start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                chunk = src.read(CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    # ------------------------------------------------------------------ writing

    def put_file(self, path: Path, *, known_digest: str | None = None) -> StoredBlob:
        """Store the content of the regular file ``path``; return its digest.

        The file is hashed first and copied only when its digest is not stored yet, so
        archiving unchanged files reads them once and writes nothing. ``known_digest`` skips
        that first pass when the caller hashed the file already.
        """
        if known_digest is not None:
            digest, size = known_digest, path.stat().st_size
        else:
            digest, size = hash_file(path)
        if self.has(digest):
            return StoredBlob(digest, size, added=False)
        with path.open("rb", buffering=0) as src:
            return self._write_stream(src)

    def adopt(self, tmp_path: Path, digest: str) -> StoredBlob:
        """Move ``tmp_path`` (in :attr:`tmp`, already hashed to ``digest``) into the store.

        For uploads that were hashed while they were received: the file is fsynced and renamed
        into place rather than copied again. It is removed when the blob is stored already.
        """
        check_digest(digest)
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            stored = self._commit(fd, tmp_path, digest, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        tmp_path.unlink(missing_ok=True)
        return stored

    def receive(self, expected: str | None = None) -> LocalReceiver:
        """Receive an upload into a temp file, hashing it; :meth:`LocalReceiver.commit` renames
        it into place (``expected`` is not needed: nothing is visible before that)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="upload-")
        return LocalReceiver(self, fd, Path(name))

    def put_bytes(self, data: bytes) -> StoredBlob:
        """Store ``data``; return its digest."""
        digest = blake3.blake3(data).hexdigest()
        if self.has(digest):
            return StoredBlob(digest, len(data), added=False)
        with self._temp() as (fd, tmp_path):
            _write_all(fd, data)
            return self._commit(fd, tmp_path, digest, len(data))

    def _write_stream(self, src: io.RawIOBase) -> StoredBlob:
        # The digest is taken of the bytes actually written, so a file changing under us is
        # stored under the digest of what was read, never under a digest it does not match.
        hasher = _new_hasher()
        size = 0
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        with self._temp() as (fd, tmp_path):
            while n := src.readinto(buf):
                hasher.update(view[:n])
                _write_all(fd, view[:n])
                size += n
            return self._commit(fd, tmp_path, hasher.hexdigest(), size)

    @contextlib.contextmanager
    def _temp(self) -> Iterator[tuple[int, Path]]:
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
        tmp_path = Path(name)
        try:
            yield fd, tmp_path
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)
            # After a successful commit the temp name is gone; after a failure, drop the rest.
            tmp_path.unlink(missing_ok=True)

    def touch(self, digest: str) -> bool:
        """Mark the blob as just used (its mtime); False if it is not stored.

        Garbage collection keeps blobs used recently, so a writer that finds its content
        stored already can rely on it until it has recorded its reference.
        """
        try:
            os.utime(self.path_of(digest))
        except FileNotFoundError:
            return False
        return True

    def claim(self, digest: str) -> int | None:
        """The blob's size, touching it (see :meth:`touch`); None when it is not stored."""
        try:
            path = self.path_of(digest)
            os.utime(path)
            return path.stat().st_size
        except FileNotFoundError:
            return None

    def _commit(self, fd: int, tmp_path: Path, digest: str, size: int) -> StoredBlob:
        final = self.path_of(digest)
        if self.touch(digest):
            return StoredBlob(digest, size, added=False)
        os.fsync(fd)
        os.fchmod(fd, 0o444)  # blobs are immutable; a read-only mode guards against slips
        final.parent.mkdir(exist_ok=True)
        os.replace(tmp_path, final)
        return StoredBlob(digest, size, added=True)

    def sync_dirs(self, folders: set[Path] | None = None) -> None:
        """fsync blob folders (default: all) so that completed renames survive a power cut."""
        if folders is None:
            folders = {p for p in self.objects.iterdir() if p.is_dir()}
        if not folders:
            return
        for folder in sorted(folders):
            _fsync_dir(folder)
        _fsync_dir(self.objects)  # a shard folder made by this batch is an entry here

    # ------------------------------------------------------------------ reading

    def open(self, digest: str) -> BinaryIO:
        """Open the blob for reading; raise NotFound naming the digest if it is absent."""
        try:
            return self.path_of(digest).open("rb")
        except FileNotFoundError:
            raise NotFound(
                f"Blob {digest} is missing from the store at {self.objects}; "
                "run `labledger verify` to list every damaged run"
            ) from None

    def get(self, digest: str) -> bytes:
        """The whole content of a blob (for small blobs such as logs and configs)."""
        with self.open(digest) as fh:
            return fh.read()

    def copy_to(self, digest: str, dest: Path) -> None:
        """Write the blob's content to the new file ``dest`` (which must not exist)."""
        with self.open(digest) as src, dest.open("xb") as out:
            while chunk := src.read(CHUNK):
                out.write(chunk)

    def iter_digests(self) -> Iterator[str]:
        """Every stored digest, in no particular order."""
        if not self.objects.is_dir():
            return
        for shard in self.objects.iterdir():
            if shard.is_dir() and len(shard.name) == 2:
                for blob in shard.iterdir():
                    yield shard.name + blob.name

    def size_on_disk(self) -> int:
        """Total size in bytes of the stored blobs."""
        return sum(self.path_of(d).stat().st_size for d in self.iter_digests())

    # ------------------------------------------------------------------ upkeep

    def verify(self, expected: set[str] | None = None) -> VerifyReport:
        """Re-hash every blob; name the damaged ones, and the ``expected`` ones that are missing."""
        report = VerifyReport()
        present: set[str] = set()
        for digest in self.iter_digests():
            present.add(digest)
            try:
                actual, size = hash_file(self.path_of(digest))
            except (OSError, IntegrityError):
                report.damaged.append(digest)
                continue
            report.checked += 1
            report.bytes_checked += size
            if actual != digest:
                report.damaged.append(digest)
        if expected is not None:
            report.missing = sorted(expected - present)
        report.damaged.sort()
        return report

    def remove(self, digest: str) -> None:
        """Delete one blob (used by gc and to drop a damaged copy)."""
        self.path_of(digest).unlink(missing_ok=True)

    def sweep(self, digest: str, unused: Callable[[], bool], grace_s: float) -> tuple[Sweep, int]:
        """Remove the blob unless it was written or touched in the last ``grace_s`` seconds or
        ``unused()`` is False.

        The blob is first moved aside, so an upload looking for it from then on stores it
        anew; then its age and ``unused()`` are checked, and it is put back if either says so.
        """
        self.create()
        path = self.path_of(digest)
        aside = self.tmp / f"gc-{digest}"
        try:
            os.replace(path, aside)
        except FileNotFoundError:
            return Sweep.GONE, 0
        stat = aside.stat()
        if time.time() - stat.st_mtime < grace_s or not unused():
            with contextlib.suppress(OSError):
                os.replace(aside, path)
            return Sweep.KEPT, 0
        aside.unlink()
        return Sweep.REMOVED, stat.st_size

    def gc(self, referenced: set[str]) -> tuple[int, int]:
        """Delete blobs not in ``referenced`` and stale temp files; return (blobs, bytes) freed."""
        count = freed = 0
        for digest in list(self.iter_digests()):
            if digest not in referenced:
                path = self.path_of(digest)
                freed += path.stat().st_size
                path.unlink()
                count += 1
        if self.tmp.is_dir():
            for leftover in self.tmp.iterdir():
                leftover.unlink(missing_ok=True)
        return count, freed


class LocalReceiver:
    """An upload being written to a temp file of a :class:`BlobStore` (see :meth:`receive`)."""

    def __init__(self, store: BlobStore, fd: int, path: Path) -> None:
        self._store, self._fd, self._path = store, fd, path
        self._hasher = _new_hasher(_THREADED_FROM)
        self.size = 0

    def write(self, data: bytes) -> None:
        """Hash and append ``data``."""
        self._hasher.update(data)
        _write_all(self._fd, data)
        self.size += len(data)

    def digest(self) -> str:
        """The BLAKE3 digest of what was written."""
        return str(self._hasher.hexdigest())

    def commit(self) -> StoredBlob:
        """fsync and rename the temp file to its digest's name."""
        try:
            return self._store._commit(self._fd, self._path, self.digest(), self.size)
        finally:
            self.abort()

    def abort(self) -> None:
        """Close and remove the temp file (gone already after a commit)."""
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._path.unlink(missing_ok=True)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
