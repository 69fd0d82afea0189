"""Where the server keeps file contents: the local folder or an S3-compatible object store.

Both keep each content once, named by its BLAKE3 digest, and both satisfy :class:`ObjectStore`:

- :class:`~labledger.archive.store.BlobStore`, a folder on this machine (the default,
  ``results_dir``);
- :class:`~labledger.archive.s3.S3Store`, a bucket and prefix (``blob_url = s3://bucket/prefix``)
  that several replicas share, so any replica serves any file.

Uploads are received into a temp file in :attr:`ObjectStore.tmp` while they are hashed; only a
file whose digest checked out is handed to :meth:`ObjectStore.adopt`, which makes it visible under
its digest in one step (a rename, or the completion of an S3 upload). A failed or refused upload
therefore leaves nothing under any digest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from labledger.archive.store import BlobStore, StoredBlob, Sweep

__all__ = ["ObjectStore", "Receiver", "Sweep", "open_object_store"]


@runtime_checkable
class Receiver(Protocol):
    """One upload on its way into a store: written in pieces as they arrive, hashed as they
    are written, and visible under its digest only after :meth:`commit`."""

    @property
    def size(self) -> int:
        """Bytes written so far."""
        ...

    def write(self, data: bytes) -> None:
        """Hash and store the next piece."""
        ...

    def digest(self) -> str:
        """The BLAKE3 digest of everything written."""
        ...

    def commit(self) -> StoredBlob:
        """Make the content visible under :meth:`digest` (call once, after checking it)."""
        ...

    def abort(self) -> None:
        """Drop everything written; nothing becomes visible (idempotent)."""
        ...


@runtime_checkable
class ObjectStore(Protocol):
    """A content-addressed store of file contents, local or remote."""

    @property
    def tmp(self) -> Path:
        """A local folder where uploads are received before they are adopted."""
        ...

    @property
    def location(self) -> str:
        """Where the contents are (a folder, or ``s3://bucket/prefix``), for messages."""
        ...

    def create(self) -> None:
        """Make what an empty store needs (idempotent)."""
        ...

    def has(self, digest: str) -> bool:
        """True when the content with ``digest`` is stored."""
        ...

    def size_of(self, digest: str) -> int | None:
        """The stored content's size, or None when it is absent."""
        ...

    def claim(self, digest: str) -> int | None:
        """The stored content's size, marking it as just used so that a collection running now
        keeps it; None when it is absent (then the caller stores it anew)."""
        ...

    def missing(self, digests: list[str]) -> list[str]:
        """Those of ``digests`` that are not stored, in the order given."""
        ...

    def adopt(self, tmp_path: Path, digest: str) -> StoredBlob:
        """Make the file ``tmp_path`` (in :attr:`tmp`, hashed to ``digest``) the content of
        ``digest``, all at once; the temp file is gone afterwards."""
        ...

    def receive(self, expected: str | None = None) -> Receiver:
        """Start receiving an upload; ``expected`` is the digest the sender announced, which
        lets a remote store write the content straight to its final name (still made visible
        only if the content matches)."""
        ...

    def put_file(self, path: Path, *, known_digest: str | None = None) -> StoredBlob:
        """Store a copy of the file ``path`` (left in place)."""
        ...

    def local_path(self, digest: str) -> Path | None:
        """A file on this machine holding the content, or None for a remote store."""
        ...

    def iter_chunks(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The content's bytes ``start`` to ``end`` (inclusive; None: to the end), in chunks."""
        ...

    def copy_to(self, digest: str, dest: Path) -> None:
        """Write the content to the new file ``dest``."""
        ...

    def iter_digests(self) -> Iterator[str]:
        """Every stored digest, in no particular order."""
        ...

    def remove(self, digest: str) -> None:
        """Delete one content (garbage collection)."""
        ...

    def sweep(self, digest: str, unused: Callable[[], bool], grace_s: float) -> tuple[Sweep, int]:
        """Remove the content of ``digest`` unless it was stored or claimed in the last
        ``grace_s`` seconds or ``unused()`` (asked again at the last moment) is False; the
        outcome and the bytes freed."""
        ...


def open_object_store(
    results_path: Path,
    blob_url: str | None = None,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> ObjectStore:
    """The S3 store ``blob_url`` names when given, else the folder ``results_path``.

    Uploads to an S3 store are received in ``results_path/tmp`` first. What is not given of the
    S3 options comes from the AWS_ variables and the usual AWS credential chain.
    """
    local = BlobStore(results_path)
    if not blob_url:
        return local
    from labledger.archive.s3 import S3Store

    return S3Store.from_url(
        blob_url,
        spool=local.tmp,
        endpoint_url=endpoint_url,
        region=region,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
    )
