"""Removing result files no record refers to (after a purge, or on ``labledger db gc``).

Files are content-addressed, so one file can belong to many experiments: a file is removed only
when no record refers to it. An upload stores (or finds) its file before it commits the record
that refers to it, so a file written or found by an upload in the last :data:`GRACE_S` seconds
is kept too (finding it claims it). Each store removes a file in its own safe way
(:meth:`~labledger.archive.objects.ObjectStore.sweep`): the local folder moves it aside, checks
again and puts it back if an upload touched it meanwhile; an S3 store does the same with a
copy and the claims uploads leave next to the objects.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Engine

from labledger.archive.objects import ObjectStore, Sweep
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
    blobs: ObjectStore,
    *,
    candidates: Collection[str] | None = None,
    grace_s: float = GRACE_S,
) -> FilesCollected:
    """Remove the files (of ``candidates``, or all) that no record refers to."""
    digests = set(blobs.iter_digests()) if candidates is None else set(candidates)
    unreferenced = digests - referenced_digests(engine, digests)
    removed = freed = recent = 0
    for digest in sorted(unreferenced):
        outcome, size = blobs.sweep(digest, functools.partial(_unused, engine, digest), grace_s)
        if outcome is Sweep.REMOVED:
            removed, freed = removed + 1, freed + size
        elif outcome is Sweep.KEPT:
            recent += 1
    return FilesCollected(removed, freed, recent)


def _unused(engine: Engine, digest: str) -> bool:
    return not referenced_digests(engine, [digest])
