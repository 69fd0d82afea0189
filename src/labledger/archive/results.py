"""Copying a store of result files into a backup and back, checking every digest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labledger.archive.store import BlobStore, check_digest
from labledger.errors import IntegrityError

__all__ = ["FilesCopied", "back_up_files", "restore_files"]


@dataclass(frozen=True)
class FilesCopied:
    """How many files (blobs) and bytes a backup or a restore copied."""

    count: int
    size: int


def back_up_files(store: BlobStore, dest: Path) -> FilesCopied:
    """Copy every blob of ``store`` into a new blob store at ``dest``."""
    copy = BlobStore(dest)
    copy.create()
    count = size = 0
    for digest in sorted(store.iter_digests()):
        stored = copy.put_file(store.path_of(digest), known_digest=digest)
        count, size = count + 1, size + stored.size
    copy.sync_dirs()
    return FilesCopied(count, size)


def restore_files(source: Path, store: BlobStore) -> FilesCopied:
    """Copy the blobs of the backup at ``source`` into ``store``, checking every digest.

    Blobs ``store`` holds already are kept as they are. A blob whose content does not match
    its name is refused (:class:`IntegrityError`) after the sound ones are copied.
    """
    backup = BlobStore(source)
    store.create()
    count = size = 0
    damaged: list[str] = []
    for digest in sorted(backup.iter_digests()):
        check_digest(digest)
        stored = store.put_file(backup.path_of(digest))  # hashed again: the digest is checked
        if stored.digest != digest:
            if stored.added:
                store.remove(stored.digest)
            damaged.append(digest)
            continue
        count, size = count + 1, size + stored.size
    store.sync_dirs()
    if damaged:
        raise IntegrityError(
            f"{len(damaged)} files of the backup at {source} are damaged (their content does not "
            f"match their digest), for example {damaged[0]}; the other {count} were restored"
        )
    return FilesCopied(count, size)
