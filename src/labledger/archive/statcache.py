"""What each archived file hashed to, keyed by its path and stat, so unchanged files are not read.

Re-archiving a folder whose files did not change should cost a ``stat`` per file, not a read of
every byte. The cache remembers, per absolute path, the device, inode, size, modification and
change times (in nanoseconds) the file had when it was hashed, the digest, and when the hash
was taken. A file is trusted unchanged only when all of these still match **and** the hash was
taken long enough after the file's last modification or change: a write landing in the same
timestamp tick as the hash would leave the times unchanged, so a file modified that close to its
hashing is read and hashed again. How long is enough depends on the file system's tick. Linux's
local file systems stamp nanoseconds from the kernel's coarse clock, which ticks every few
milliseconds: there :data:`SETTLED_NS` (100 ms) is ample. A file system that stamps whole
seconds (FAT counts in two) shows times without a fraction of a second: there
:data:`SETTLED_COARSE_NS` (2 s) applies. Outputs archived a moment after a run wrote them are
trusted by the next archive, not only by the one after it. Any write also moves the change
time, which ``touch`` and ``utime`` cannot set back, so restoring an old modification time does
not fool the cache.

The cache is a hint, never the truth: it lives in one SQLite file beside the blobs, a digest is
used only when its blob is still in the store, and a missing or unreadable cache is simply
rebuilt by hashing.

A cache opened for one folder (its ``scope``) reads only that folder's entries and, when saved,
checks only those for files that are gone: a store holding the outputs of many runs would
otherwise make every archive pay for all of them. Entries of other folders whose files were
deleted are swept once in a while (:data:`SWEEP_EVERY_NS`), so the cache does not grow without
bound.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "SETTLED_COARSE_NS",
    "SETTLED_NS",
    "SWEEP_EVERY_NS",
    "StatCache",
    "settling_time",
    "stat_key",
]

#: a hash taken less than this long after the file's last change is not trusted later, on a
#: file system whose times have fractions of a second
SETTLED_NS = 100_000_000
#: the same, on a file system whose times are whole seconds
SETTLED_COARSE_NS = 2_000_000_000
_SECOND_NS = 1_000_000_000
#: a scoped cache's save also forgets the gone files of every other folder when its last such
#: sweep is older than this (a day): rare enough to cost nothing per archive
SWEEP_EVERY_NS = 86_400 * _SECOND_NS

StatKey = tuple[int, int, int, int, int]
#: a row of the cache as SQLite gives it: path, the stat key's five parts, digest, hashed_at_ns
#: (kept as read: building other tuples from every row would cost more than the read itself)
Row = tuple[str, int, int, int, int, int, str, int]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL,
    hashed_at_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sweeps (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at_ns INTEGER NOT NULL
);
"""
_COLUMNS = "path, dev, ino, size, mtime_ns, ctime_ns, digest, hashed_at_ns"


def _under(folder: str) -> tuple[str, str]:
    """The bounds of the paths under ``folder``: from "folder/" up to, not including, "folder0"
    ("0" follows "/"), a range the primary key's index answers without a full scan. SQLite
    compares text as UTF-8 bytes, in the same order as Python compares strings."""
    folder = folder.rstrip(os.sep)
    return f"{folder}{os.sep}", f"{folder}{chr(ord(os.sep) + 1)}"


def settling_time(st: os.stat_result) -> int:
    """How long after its last change a file must be hashed for its times to vouch for it."""
    if st.st_mtime_ns % _SECOND_NS or st.st_ctime_ns % _SECOND_NS:
        return SETTLED_NS  # the file system stamps fractions of a second
    return SETTLED_COARSE_NS


def stat_key(st: os.stat_result) -> StatKey:
    """The parts of a stat that any change of the file's content moves."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class StatCache:
    """The cache in the SQLite file ``path``; :meth:`load` it, look up, record, :meth:`save`.

    ``scope``, when given, is a folder: only the entries of files under it are loaded (and
    checked for deletion when saved); files elsewhere are simply not known (hashed again).
    """

    def __init__(self, path: Path, scope: str | None = None) -> None:
        self.path = path
        self._range = None if scope is None else _under(scope)
        self._known: dict[str, Row] = {}
        self._new: dict[str, Row] = {}
        self._seen: set[str] = set()  # paths looked up: they exist, save() need not check them
        self._sweep_wanted = False  # set by load() when other folders' entries are due a sweep

    def load(self) -> None:
        """Read every entry (of the scope); an unreadable cache is dropped (it is only a hint)."""
        if not self.path.exists():
            return
        try:
            with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn:
                if self._range is None:
                    rows = conn.execute(f"SELECT {_COLUMNS} FROM files").fetchall()
                else:
                    rows = conn.execute(
                        f"SELECT {_COLUMNS} FROM files WHERE path >= ? AND path < ?",
                        self._range,
                    ).fetchall()
                    self._sweep_wanted = self._sweep_due(conn)
        except sqlite3.DatabaseError:
            self._drop()
            return
        self._known = {row[0]: row for row in rows}

    def load_more(self, path: str) -> None:
        """Also read the entries of ``path`` and of the files under it (a scoped cache learns
        of a file or folder outside its scope, reached through a link, as the walk finds it)."""
        if self._range is None or not self.path.exists():
            return  # an unscoped cache has every entry loaded already
        bounds = (path.rstrip(os.sep), *_under(path))
        try:
            with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM files WHERE path = ? OR (path >= ? AND path < ?)",
                    bounds,
                ).fetchall()
        except sqlite3.DatabaseError:
            return  # only a hint: those files are hashed again, and save() finds out
        for row in rows:
            self._known.setdefault(row[0], row)

    def __contains__(self, path: str) -> bool:
        """True when an entry for ``path`` was loaded (a file the cache knows nothing of needs
        no stat to be looked up)."""
        return path in self._known

    def lookup(self, path: str, st: os.stat_result) -> str | None:
        """The digest recorded for ``path`` if its stat is unchanged and its hash settled."""
        found = self._known.get(path)
        if found is None:
            return None
        self._seen.add(path)
        _, dev, ino, size, mtime_ns, ctime_ns, digest, hashed_at = found
        if (dev, ino, size, mtime_ns, ctime_ns) != stat_key(st):
            return None
        if hashed_at - max(mtime_ns, ctime_ns) < settling_time(st):
            return None  # changed too close to its hashing for the times to prove anything
        return digest

    def lookup_many(
        self, paths: Sequence[str], stats: Sequence[os.stat_result]
    ) -> list[str | None]:
        """:meth:`lookup` of each of ``paths`` (with its stat in ``stats``), in one loop.

        A re-archive asks about every file of a folder: per file, one dictionary look-up and
        one comparison of raw values, with no call in between.
        """
        known = self._known
        found: list[str | None] = []
        append = found.append
        for path, st in zip(paths, stats, strict=True):
            row = known.get(path)
            if row is None:
                append(None)
                continue
            mtime_ns, ctime_ns = st.st_mtime_ns, st.st_ctime_ns
            if row[1:6] != (st.st_dev, st.st_ino, st.st_size, mtime_ns, ctime_ns):
                append(None)
                continue
            # settling_time(), inline: a file system stamping fractions of a second settles
            # sooner than one stamping whole seconds
            settle = (
                SETTLED_NS if mtime_ns % _SECOND_NS or ctime_ns % _SECOND_NS else SETTLED_COARSE_NS
            )
            append(row[6] if row[7] - max(row[4], row[5]) >= settle else None)
        self._seen.update(paths)
        return found

    def record(self, path: str, st: os.stat_result, digest: str, hashed_at_ns: int) -> None:
        """Remember that ``path`` with stat ``st`` (taken before reading) hashed to ``digest``."""
        self._new[path] = (path, *stat_key(st), digest, hashed_at_ns)

    def save(self) -> None:
        """Write what was recorded (call once the blobs it names are durable), and forget the
        entries of files that no longer exist, so the cache does not grow without bound."""
        unseen = self._known.keys() - self._new.keys() - self._seen
        gone = [(p,) for p in unseen if not os.path.lexists(p)]
        self._seen = set()
        sweep, self._sweep_wanted = self._sweep_wanted, False
        if not self._new and not gone and not sweep:
            return
        rows = list(self._new.values())
        try:
            with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.executescript(_SCHEMA)
                with conn:
                    conn.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?,?)", rows)
                    conn.executemany("DELETE FROM files WHERE path = ?", gone)
                    if sweep:
                        self._sweep(conn)
        except sqlite3.DatabaseError:
            self._drop()
            return
        for (path,) in gone:
            del self._known[path]
        self._known.update(self._new)
        self._new = {}

    @staticmethod
    def _sweep_due(conn: sqlite3.Connection) -> bool:
        """True when the other folders' entries were last swept :data:`SWEEP_EVERY_NS` ago or
        more, or never."""
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sweeps'").fetchone():
            return True  # a cache written before sweeps were recorded
        last = conn.execute("SELECT at_ns FROM sweeps").fetchone()
        return last is None or time.time_ns() - last[0] >= SWEEP_EVERY_NS

    def _sweep(self, conn: sqlite3.Connection) -> None:
        """Forget the entries outside the scope whose files no longer exist."""
        assert self._range is not None
        low, high = self._range
        others = conn.execute("SELECT path FROM files WHERE path < ? OR path >= ?", (low, high))
        gone = [(p,) for (p,) in others.fetchall() if not os.path.lexists(p)]
        conn.executemany("DELETE FROM files WHERE path = ?", gone)
        conn.execute("INSERT OR REPLACE INTO sweeps VALUES (1, ?)", (time.time_ns(),))

    def _drop(self) -> None:
        self._known = {}
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
