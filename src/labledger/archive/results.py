"""Copying a store of result files (local or S3) into a backup and back, checking every digest."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from labledger.archive.objects import ObjectStore
from labledger.archive.store import BlobStore, check_digest, hash_file
from labledger.errors import IntegrityError

__all__ = ["FilesCopied", "back_up_files", "restore_files"]


@dataclass(frozen=True)
class FilesCopied:
    """How many files (blobs) and bytes a backup or a restore copied."""

    count: int
    size: int


def back_up_files(store: ObjectStore, dest: Path) -> FilesCopied:
    """Copy every file of ``store`` (a local folder or an object store) into a new blob store
    at ``dest``.

    Files of a remote store are downloaded and hashed: one whose content does not match its
    digest is refused (:class:`IntegrityError`) after the sound ones are copied.
    """
    copy = BlobStore(dest)
    copy.create()
    count = size = 0
    damaged: list[str] = []
    for digest in sorted(store.iter_digests()):
        path = store.local_path(digest)
        if path is not None:
            stored = copy.put_file(path, known_digest=digest)
        else:
            fetched = copy.tmp / f"fetch-{digest}"
            try:
                store.copy_to(digest, fetched)
                if hash_file(fetched)[0] != digest:
                    damaged.append(digest)
                    continue
                stored = copy.adopt(fetched, digest)
            finally:
                with contextlib.suppress(OSError):
                    fetched.unlink()
        count, size = count + 1, size + stored.size
    copy.sync_dirs()
    if damaged:
        raise IntegrityError(
            f"{len(damaged)} files of {store.location} are damaged (their content does not "
            f"match their digest), for example {damaged[0]}; the backup was not finished"
        )
    return FilesCopied(count, size)


def restore_files(source: Path, store: ObjectStore) -> FilesCopied:
    """Copy the blobs of the backup at ``source`` into ``store`` (a local folder or an object
    store), checking every digest.

    Blobs ``store`` holds already are kept as they are. A blob whose content does not match
    its name is refused (:class:`IntegrityError`) after the sound ones are copied.
    """
    backup = BlobStore(source)
    store.create()
    count = size = 0
    damaged: list[str] = []
    for digest in sorted(backup.iter_digests()):
        check_digest(digest)
        path = backup.path_of(digest)
        if hash_file(path)[0] != digest:
            damaged.append(digest)
            continue
        stored = store.put_file(path, known_digest=digest)
        count, size = count + 1, size + stored.size
    if isinstance(store, BlobStore):
        store.sync_dirs()
    if damaged:
        raise IntegrityError(
            f"{len(damaged)} files of the backup at {source} are damaged (their content does not "
            f"match their digest), for example {damaged[0]}; the other {count} were restored"
        )
    return FilesCopied(count, size)
