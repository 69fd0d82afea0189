"""Content-addressed blob store and per-run manifests (see :mod:`.store` and :mod:`.manifest`).

Names are imported lazily: the store needs only blake3, and commands that only read the store
import nothing more.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labledger.archive.batch import BlobBatch
    from labledger.archive.manifest import (
        FileEntry,
        archive_tree,
        check_entry_path,
        restore_entries,
    )
    from labledger.archive.store import BlobStore, StoredBlob, VerifyReport, hash_file

__all__ = [
    "BlobBatch",
    "BlobStore",
    "FileEntry",
    "StoredBlob",
    "VerifyReport",
    "archive_tree",
    "check_entry_path",
    "hash_file",
    "restore_entries",
]

_WHERE = {
    "BlobBatch": "labledger.archive.batch",
    "BlobStore": "labledger.archive.store",
    "StoredBlob": "labledger.archive.store",
    "VerifyReport": "labledger.archive.store",
    "hash_file": "labledger.archive.store",
    "FileEntry": "labledger.archive.manifest",
    "archive_tree": "labledger.archive.manifest",
    "check_entry_path": "labledger.archive.manifest",
    "restore_entries": "labledger.archive.manifest",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'labledger.archive' has no attribute {name!r}")
