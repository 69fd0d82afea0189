"""Content-addressed blob store and per-run manifests (see :mod:`.store` and :mod:`.manifest`)."""

from __future__ import annotations

from labledger.archive.manifest import FileEntry, archive_tree, check_entry_path, restore_entries
from labledger.archive.store import BlobStore, StoredBlob, VerifyReport, hash_file

__all__ = [
    "BlobStore",
    "FileEntry",
    "StoredBlob",
    "VerifyReport",
    "archive_tree",
    "check_entry_path",
    "hash_file",
    "restore_entries",
]
