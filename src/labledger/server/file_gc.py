"""Removing result files no record refers to (after a purge, or on ``labledger db gc``).

Files are content-addressed, so one file can belong to many experiments: a file is removed only
when no record refers to it. An upload stores (or finds) its file before it commits the record
that refers to it, so a file written or found by an upload in the last :data:`GRACE_S` seconds
is kept too (finding it touches it). A file being removed is first moved aside, checked again,
and put back if an upload touched it meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Engine

from labledger.archive.store import BlobStore
from labledger.storage.file_refs import referenced_digests

__all__ = ["GRACE_S", "FilesCollected", "collect_files"]

#: files written or found by an upload this recently are never removed (seconds)
GRACE_S = 600.0


@dataclass(frozen=True)
class FilesCollected:
    """What a collection removed."""

    removed: int
    freed: int
    kept_recent: int


def collect_files(
    engine: Engine,
    blobs: BlobStore,
    *,
    candidates: Collection[str] | None = None,
    grace_s: float = GRACE_S,
) -> FilesCollected:
    """Remove the files (of ``candidates``, or all) that no record refers to."""
    digests = set(blobs.iter_digests()) if candidates is None else set(candidates)
    unreferenced = digests - referenced_digests(engine, digests)
    removed = freed = recent = 0
    blobs.create()
    for digest in sorted(unreferenced):
        path = blobs.path_of(digest)
        aside = blobs.tmp / f"gc-{digest}"
        try:
            os.replace(path, aside)  # from now on an upload finding it stores it anew
        except FileNotFoundError:
            continue
        stat = aside.stat()
        if time.time() - stat.st_mtime < grace_s or referenced_digests(engine, [digest]):
            with contextlib.suppress(OSError):
                os.replace(aside, path)
            recent += 1
            continue
        aside.unlink()
        removed, freed = removed + 1, freed + stat.st_size
    return FilesCollected(removed, freed, recent)
