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
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict

from labledger.archive.batch import BlobBatch
from labledger.archive.store import BlobStore, check_digest
from labledger.errors import IntegrityError, InvalidInput

__all__ = ["FileEntry", "archive_tree", "check_entry_path", "restore_entries", "scan_tree"]

EntryKind = Literal["file", "symlink", "dir"]


class FileEntry(BaseModel):
    """One entry of a manifest. ``digest`` for files, ``target`` for symlinks."""

    model_config = ConfigDict(frozen=True)

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


def archive_tree(
    store: BlobStore, root: Path, *, prefix: str = "", exclude: Iterable[str] = ()
) -> tuple[list[FileEntry], list[str]]:
    """Store every file under ``root``; return its manifest and the paths skipped (sockets, fifos).

    Entry paths are ``prefix`` + the path relative to ``root``. Empty folders are kept as
    ``dir`` entries so a restore gives back the same tree.
    """
    entries: list[FileEntry] = []
    skipped: list[str] = []
    nonempty: set[str] = set()
    dirs: list[tuple[str, int]] = []
    with BlobBatch(store) as batch:
        _walk_into(batch, root, prefix, exclude, entries, skipped, nonempty, dirs)
    for rel, mode in dirs:
        if rel not in nonempty:
            entries.append(FileEntry(path=prefix + rel, kind="dir", mode=mode))
    entries.sort(key=lambda e: e.path)
    return entries, skipped


def _walk_into(
    batch: BlobBatch,
    root: Path,
    prefix: str,
    exclude: Iterable[str],
    entries: list[FileEntry],
    skipped: list[str],
    nonempty: set[str],
    dirs: list[tuple[str, int]],
) -> None:
    files: list[tuple[str, Path, int]] = []
    for rel, entry in scan_tree(root, exclude=exclude):
        if not _is_utf8(rel):
            # A name that is not UTF-8 cannot be written into a JSON record faithfully;
            # it is reported rather than stored under a mangled name.
            skipped.append(
                prefix + rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            )
            continue
        st = entry.stat(follow_symlinks=False)
        parent = rel.rpartition("/")[0]
        nonempty.add(parent)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(entry.path)
            entries.append(FileEntry(path=prefix + rel, kind="symlink", target=target))
        elif stat.S_ISDIR(st.st_mode):
            dirs.append((rel, stat.S_IMODE(st.st_mode)))
        elif stat.S_ISREG(st.st_mode):
            files.append((rel, Path(entry.path), stat.S_IMODE(st.st_mode)))
        else:
            skipped.append(prefix + rel)
    blobs = batch.put_many([path for _, path, _ in files])
    for (rel, _, mode), blob in zip(files, blobs, strict=True):
        entries.append(FileEntry(path=prefix + rel, size=blob.size, mode=mode, digest=blob.digest))


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


def restore_entries(store: BlobStore, entries: Iterable[FileEntry], dest: Path) -> int:
    """Write ``entries`` under ``dest``; return how many were written.

    Every path is checked before anything is written; files and folders come first and
    symlinks last, so no write can pass through a link the manifest itself created.
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
        else:
            target.symlink_to(e.target or "")
        written += 1
    return written
