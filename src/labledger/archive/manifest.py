"""Manifests: the list of files of a folder, each a path, a kind, a mode and a blob digest.

Archiving walks a folder without following symlinks: a symlink is recorded as a link with its
target text, so nothing outside the folder is ever read. Restoring checks every path first
(relative, no ``..``, no empty or odd parts) and writes links last, so no manifest, however
crafted, can make labledger write outside the target folder.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from operator import attrgetter
from pathlib import Path, PurePosixPath
from stat import S_IMODE, S_ISDIR, S_ISLNK, S_ISREG
from typing import TYPE_CHECKING, Literal

import msgspec

from labledger.archive.store import BlobStore, check_digest
from labledger.errors import IntegrityError, InvalidInput

if TYPE_CHECKING:
    from labledger.archive.batch import BlobBatch

__all__ = ["FileEntry", "archive_tree", "check_entry_path", "restore_entries", "scan_tree"]

EntryKind = Literal["file", "symlink", "dir"]


class FileEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of a manifest. ``digest`` for files, ``target`` for symlinks.

    A msgspec struct (as the run record holding it): reading a record must not build pydantic
    models. It is checked against its types when a record is read.
    """

    path: str
    kind: EntryKind = "file"
    size: int = 0
    mode: int = 0o644
    digest: str | None = None
    target: str | None = None


def check_entry_path(path: str) -> PurePosixPath:
    """The manifest path ``path`` as a relative POSIX path; raise if it could leave its folder."""
    problem = None
    if not path or "\x00" in path:
        problem = "it is empty or holds a NUL byte"
    else:
        pure = PurePosixPath(path)
        if pure.is_absolute():
            problem = "it is absolute"
        elif any(part in ("", ".", "..") for part in path.split("/")):
            problem = "it has an empty, '.' or '..' part"
    if problem:
        raise IntegrityError(
            f"Manifest path {path!r} was refused because {problem}; "
            "the record may be damaged or crafted (run `labledger verify`)"
        )
    return PurePosixPath(path)


def scan_tree(root: Path, *, exclude: Iterable[str] = ()) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Yield ``(relative posix path, DirEntry)`` for everything under ``root``, sorted.

    Symlinks are yielded, never followed.

    ``exclude`` holds relative paths (files or folders) to leave out.
    """
    skip = set(exclude)

    def walk(folder: Path, prefix: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            if rel in skip:
                continue
            yield rel, entry
            if entry.is_dir(follow_symlinks=False):
                yield from walk(Path(entry.path), rel + "/")

    if root.is_dir():
        yield from walk(root, "")


def _listings(root: Path, skip: set[str]) -> Iterator[tuple[str, list[os.DirEntry[str]]]]:
    """``(relative posix path of the folder + "/", or "" for root; its entries sorted by name)``
    for each folder under ``root``, leaving out the relative paths in ``skip``. Symlinks are
    listed, never followed."""
    pending = [(str(root), "")]
    while pending:
        folder, rel_folder = pending.pop()
        with os.scandir(folder) as it:
            entries = sorted(it, key=_entry_name)
        if skip:
            entries = [e for e in entries if rel_folder + e.name not in skip]
        yield rel_folder, entries
        pending.extend(
            (e.path, f"{rel_folder}{e.name}/")
            for e in reversed(entries)
            if e.is_dir(follow_symlinks=False)
        )


_entry_name = attrgetter("name")
_entry_path = attrgetter("path")


#: the stat cache's file under a store's root (see :mod:`labledger.archive.statcache`)
STAT_CACHE = "statcache.sqlite"


def archive_tree(
    store: BlobStore,
    root: Path,
    *,
    prefix: str = "",
    exclude: Iterable[str] = (),
    notes: list[str] | None = None,
) -> tuple[list[FileEntry], list[str]]:
    """Store every file under ``root``; return its manifest and the paths skipped (sockets, fifos).

    Entry paths are ``prefix`` + the path relative to ``root``. Empty folders are kept as
    ``dir`` entries so a restore gives back the same tree. Files unchanged since an earlier
    archive into the same store are not read again (the store's stat cache).

    A symlink that stays inside ``root`` is kept as a link (made relative, so a restored copy
    points into itself). One that leads outside is what the user meant to keep: the file or
    folder it points to is archived under the link's name, and ``notes`` (when given) says so.
    A link that leads nowhere is skipped, and ``notes`` says that too.
    """
    if _empty(root):
        return [], []  # nothing to archive: no batch threads, no stat cache to open
    # Imported here: reading records needs FileEntry, not the threads and SQLite of archiving.
    from labledger.archive.batch import BlobBatch
    from labledger.archive.statcache import StatCache

    entries: list[FileEntry] = []
    skipped: list[str] = []
    nonempty: set[str] = set()
    dirs: list[tuple[str, int]] = []
    walk = _Walk(Path(os.path.realpath(root)), entries, skipped, nonempty, dirs, notes)
    top = root.absolute()
    # The cache of this folder's files only: a store of many runs' outputs would otherwise
    # make each archive read (and check) the entries of all of them. Files reached through a
    # link leading out of the folder are outside it: hashed again each time, still correct.
    with BlobBatch(store, StatCache(store.root / STAT_CACHE, scope=str(top))) as batch:
        walk.into(batch, top, prefix, exclude, seen=frozenset({walk.real_root}))
    for path, mode in dirs:
        if path not in nonempty:
            entries.append(FileEntry(path=path, kind="dir", mode=mode))
    entries.sort(key=_entry_path)
    return entries, skipped


def _empty(folder: Path) -> bool:
    """True when ``folder`` holds nothing (or is not a folder)."""
    try:
        with os.scandir(folder) as it:
            return next(it, None) is None
    except (FileNotFoundError, NotADirectoryError):
        return True


class _Walk:
    """One archive walk: what it found so far (shared by the folders a link leads to)."""

    def __init__(
        self,
        real_root: Path,
        entries: list[FileEntry],
        skipped: list[str],
        nonempty: set[str],
        dirs: list[tuple[str, int]],
        notes: list[str] | None,
    ) -> None:
        self.real_root = real_root
        self.entries, self.skipped, self.nonempty, self.dirs = entries, skipped, nonempty, dirs
        self.notes = notes if notes is not None else []

    def into(
        self,
        batch: BlobBatch,
        root: Path,
        prefix: str,
        exclude: Iterable[str],
        *,
        seen: frozenset[Path],
    ) -> None:
        files: list[tuple[str, str, int]] = []
        stats: list[os.stat_result] = []
        # Folder by folder: the per-file work (a re-archive of unchanged files is little else)
        # is one lstat and a few appends, with what is the same for a whole folder done once.
        for rel_folder, entries in _listings(root, set(exclude)):
            base = prefix + rel_folder
            utf8_folder = rel_folder.isascii() or _is_utf8(rel_folder)  # isascii: no copy made
            any_kept = False
            for entry in entries:
                name = entry.name
                if not (utf8_folder and (name.isascii() or _is_utf8(name))):
                    # A name that is not UTF-8 cannot be written into a JSON record faithfully;
                    # it is reported rather than stored under a mangled name.
                    rel = rel_folder + name
                    self.skipped.append(
                        prefix + rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                    )
                    continue
                any_kept = True
                path = base + name
                st = entry.stat(follow_symlinks=False)
                mode = st.st_mode
                if S_ISREG(mode):
                    files.append((path, entry.path, S_IMODE(mode)))
                    stats.append(st)
                elif S_ISDIR(mode):
                    self.dirs.append((path, S_IMODE(mode)))
                elif S_ISLNK(mode):
                    followed = self._link(batch, Path(entry.path), path, seen)
                    if followed is not None:
                        files.append(followed[0])
                        stats.append(followed[1])
                else:
                    self.skipped.append(path)
            if any_kept:
                self.nonempty.add(base[:-1])  # the folder's own manifest path
        # The walk's stats spare the stat cache a stat per file.
        blobs = batch.put_files([file for _, file, _ in files], stats)
        entries_out = self.entries
        for (path, _, mode), (digest, size) in zip(files, blobs, strict=True):
            entries_out.append(FileEntry(path=path, size=size, mode=mode, digest=digest))

    def _link(
        self, batch: BlobBatch, link: Path, path: str, seen: frozenset[Path]
    ) -> tuple[tuple[str, str, int], os.stat_result] | None:
        """Keep a link inside as a link; follow one leading out (a file to store, or a folder)."""
        target = os.readlink(link)
        real = Path(os.path.realpath(link))
        if real.is_relative_to(self.real_root):
            relative = os.path.relpath(real, os.path.realpath(link.parent))
            self.entries.append(FileEntry(path=path, kind="symlink", target=relative))
            return None
        try:
            st = real.stat()
        except OSError:
            st = None
        if st is not None and batch.cache is not None:
            batch.cache.load_more(str(real))  # outside the folder the cache was opened for
        if st is not None and stat.S_ISREG(st.st_mode):
            self.notes.append(
                f"{path} is a link to {target}, outside the folder: archived the file it points to"
            )
            return (path, str(real), stat.S_IMODE(st.st_mode)), st
        if (
            st is not None
            and stat.S_ISDIR(st.st_mode)
            and not any(real == s or real in s.parents for s in seen)
        ):
            self.notes.append(
                f"{path} is a link to {target}, outside the folder: archived the folder it "
                "points to"
            )
            self.dirs.append((path, stat.S_IMODE(st.st_mode)))
            self.into(batch, real, path + "/", (), seen=seen | {real})
            return None
        why = "it leads nowhere" if st is None else "it loops back into a folder being archived"
        if st is not None and not stat.S_ISDIR(st.st_mode):
            why = "it points to something that is neither a file nor a folder"
        self.notes.append(f"{path} is a link to {target} and was not kept: {why}")
        self.skipped.append(path)
        return None


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _safe_parent(dest: Path, rel: PurePosixPath) -> Path:
    """Create the parent folders of ``dest/rel``, refusing to pass through any symlink."""
    current = dest
    for part in rel.parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise IntegrityError(
                f"Refusing to write {rel}: {current} is a symlink and could lead outside {dest}"
            )
        if current.exists() and not current.is_dir():
            raise IntegrityError(
                f"Refusing to write {rel}: {current} is a file, not a folder; the manifest "
                "names it as both (the record may be damaged or crafted)"
            )
        current.mkdir(exist_ok=True)
    target = dest / Path(*rel.parts)
    if target.is_symlink() or target.exists():
        raise InvalidInput(f"Refusing to overwrite {target}: restore into an empty folder")
    return target


def leads_out(path: PurePosixPath, target: str) -> bool:
    """True when a link at ``path`` (relative to its folder) pointing at ``target`` leaves it."""
    if not target or target.startswith("/"):
        return True
    depth = len(path.parts) - 1  # folders between the folder's root and the link
    for part in PurePosixPath(target).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part != ".":
            depth += 1
    return False


def restore_entries(
    store: BlobStore,
    entries: Iterable[FileEntry],
    dest: Path,
    *,
    refused: list[str] | None = None,
) -> int:
    """Write ``entries`` under ``dest``; return how many were written.

    Every path is checked before anything is written; files and folders come first and
    symlinks last, so no write can pass through a link the manifest itself created. A link
    that would lead out of ``dest`` (absolute, or climbing above it) is never created: it is
    named in ``refused`` (when given) instead.
    """
    items = [(check_entry_path(e.path), e) for e in entries]
    for _, e in items:
        if e.kind == "file":
            check_digest(e.digest or "")
    dest.mkdir(parents=True, exist_ok=True)
    order = {"dir": 0, "file": 1, "symlink": 2}
    written = 0
    for rel, e in sorted(items, key=lambda item: (order[item[1].kind], item[1].path)):
        target = _safe_parent(dest, rel)
        if e.kind == "dir":
            target.mkdir()
            target.chmod(e.mode & 0o777 | 0o700)
        elif e.kind == "file":
            assert e.digest is not None
            store.copy_to(e.digest, target)
            target.chmod(e.mode & 0o777)
        elif leads_out(rel, e.target or ""):
            if refused is not None:
                refused.append(f"{e.path} -> {e.target}")
            continue
        else:
            target.symlink_to(e.target or "")
        written += 1
    return written
