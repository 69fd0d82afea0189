"""File contents in an S3-compatible object store (AWS S3, MinIO, Ceph, Garage, moto ...).

Layout: ``s3://bucket/prefix/objects/ab/cdef...``, one object per BLAKE3 digest (the same names
as the local store), with the digest also in the object's metadata (``x-amz-meta-blake3``).

An upload that finds its content stored already leaves a claim, an empty object
``prefix/claims/<digest>``, before it relies on it. Garbage collection never touches or renames
an object: it keeps objects stored or claimed within the grace period, and removes the others by
copying each to ``prefix/gc/<digest>``, deleting it, and then checking the claim and the
references once more, copying it back when either appeared meanwhile.

An object becomes visible only when its upload completes: boto3's transfer manager sends a large
file as a multipart upload and aborts it on any failure, and S3 shows nothing of an upload that
was not completed. Uploads arrive here as local temp files already hashed and checked, so an
object under a digest always holds that digest's content. Downloads are streamed in chunks and
ask the store for just the byte range wanted.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from labledger.archive.store import CHUNK, StoredBlob, Sweep, check_digest, hash_file
from labledger.errors import (
    ConfigError,
    IntegrityError,
    MissingDependency,
    NotFound,
    StorageError,
)

__all__ = ["S3Receiver", "S3Store"]

#: parts of a multipart upload (and the size from which one is used); 8 parts in flight
_PART = 16 << 20
_CONCURRENCY = 8
#: parts of an upload received by the server, and how many may be in flight (server memory)
_RECEIVED_PART = 8 << 20
_RECEIVED_IN_FLIGHT = 2


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise MissingDependency("boto3", "s3") from None
    return boto3


class S3Store:
    """Contents under ``s3://bucket/prefix``; uploads are received in the local folder ``spool``."""

    def __init__(self, client: Any, bucket: str, prefix: str, spool: Path) -> None:
        from boto3.s3.transfer import TransferConfig

        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.tmp = spool
        self._transfer = TransferConfig(
            multipart_threshold=_PART,
            multipart_chunksize=_PART,
            max_concurrency=_CONCURRENCY,
            io_chunksize=CHUNK,
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        spool: Path,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> S3Store:
        """A store for ``s3://bucket/prefix``; what is not given comes from the AWS_ variables
        and the usual AWS credential chain."""
        if not url.startswith("s3://") or len(url) <= len("s3://"):
            raise ConfigError(
                f"blob_url: expected s3://bucket/prefix, got {url!r}", field="blob_url"
            )
        bucket, _, prefix = url[len("s3://") :].partition("/")
        boto3 = _boto3()
        from botocore.config import Config

        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
            region_name=region or "us-east-1",
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                max_pool_connections=32,
            ),
        )
        return cls(client, bucket, prefix, spool)

    # ------------------------------------------------------------------ names

    @property
    def location(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    @property
    def objects_prefix(self) -> str:
        """The key prefix under which every object lives (``prefix/objects/``)."""
        return f"{self.prefix}/objects/" if self.prefix else "objects/"

    def key_of(self, digest: str) -> str:
        """The object key of ``digest``."""
        check_digest(digest)
        return f"{self.objects_prefix}{digest[:2]}/{digest[2:]}"

    def _side_key(self, folder: str, digest: str) -> str:
        check_digest(digest)
        return f"{self.prefix}/{folder}/{digest}" if self.prefix else f"{folder}/{digest}"

    def create(self) -> None:
        """Make the local spool folder (the bucket itself is the operator's to create)."""
        self.tmp.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ reading

    def _head(self, digest: str, key: str | None = None) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            with _translated(self):
                head: dict[str, Any] = self.client.head_object(
                    Bucket=self.bucket, Key=key or self.key_of(digest)
                )
                return head
        except ClientError as exc:
            if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise _unavailable(self, exc) from exc

    def has(self, digest: str) -> bool:
        """True when the object exists."""
        return self._head(digest) is not None

    def size_of(self, digest: str) -> int | None:
        """The object's size, or None when it is absent."""
        head = self._head(digest)
        return None if head is None else int(head["ContentLength"])

    def claim(self, digest: str) -> int | None:
        """Leave a claim on ``digest``, then give the object's size (None when absent).

        The claim is written first: a collection that deletes the object after this call
        finds the claim when it checks again and puts the object back. When the object is
        absent the claim is taken back (an object stored after that is within its grace
        period anyway).
        """
        key = self._side_key("claims", digest)
        with _translated(self):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=b"")
        size = self.size_of(digest)
        if size is None:
            self._delete(key)
        return size

    def missing(self, digests: list[str]) -> list[str]:
        """Those of ``digests`` that are not stored, asked of the store in parallel (a push of a
        run with many files asks about each of them)."""
        from concurrent.futures import ThreadPoolExecutor

        if len(digests) < 2:
            return [d for d in digests if not self.has(d)]
        with ThreadPoolExecutor(max_workers=min(16, len(digests))) as pool:
            present = list(pool.map(self.has, digests))
        return [d for d, here in zip(digests, present, strict=True) if not here]

    def local_path(self, digest: str) -> Path | None:
        """None: the contents are not on this machine."""
        return None

    def iter_chunks(self, digest: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The object's bytes from ``start`` to ``end`` (inclusive), streamed."""
        from botocore.exceptions import ClientError

        # no Range for the whole object: an empty object has no satisfiable range
        last = "" if end is None else str(end)
        ranged = {} if start == 0 and end is None else {"Range": f"bytes={start}-{last}"}
        try:
            with _translated(self):
                answer = self.client.get_object(
                    Bucket=self.bucket, Key=self.key_of(digest), **ranged
                )
        except ClientError as exc:
            if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
                raise NotFound(f"Blob {digest} is missing from {self.location}") from None
            raise _unavailable(self, exc) from exc
        body = answer["Body"]
        try:
            with _translated(self):
                yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def copy_to(self, digest: str, dest: Path) -> None:
        """Download the object to the new file ``dest``."""
        with dest.open("xb") as out:
            for chunk in self.iter_chunks(digest):
                out.write(chunk)

    def iter_digests(self) -> Iterator[str]:
        """Every digest stored under the prefix."""
        start = self.objects_prefix
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start
        )
        with _translated(self):
            for page in pages:
                for item in page.get("Contents", []):
                    shard, _, rest = item["Key"][len(start) :].partition("/")
                    digest = shard + rest
                    if len(shard) == 2 and len(digest) == 64:
                        yield digest

    # ------------------------------------------------------------------ writing

    def _upload(self, path: Path, digest: str) -> None:
        with _translated(self):
            self.client.upload_file(
                str(path),
                self.bucket,
                self.key_of(digest),
                ExtraArgs={
                    "Metadata": {"blake3": digest},
                    "ContentType": "application/octet-stream",
                },
                Config=self._transfer,
            )

    def adopt(self, tmp_path: Path, digest: str) -> StoredBlob:
        """Upload the checked temp file as the object of ``digest``, then delete it."""
        try:
            size = tmp_path.stat().st_size
            if self.claim(digest) is not None:
                return StoredBlob(digest, size, added=False)
            self._upload(tmp_path, digest)
            return StoredBlob(digest, size, added=True)
        finally:
            tmp_path.unlink(missing_ok=True)

    def receive(self, expected: str | None = None) -> S3Receiver:
        """Receive an upload as a multipart upload sent while it arrives (see
        :class:`S3Receiver`)."""
        return S3Receiver(self, expected)

    def put_file(self, path: Path, *, known_digest: str | None = None) -> StoredBlob:
        """Upload a copy of ``path`` (hashed first unless ``known_digest`` is given)."""
        if known_digest is not None:
            digest, size = check_digest(known_digest), path.stat().st_size
        else:
            digest, size = hash_file(path)
        if self.has(digest):
            return StoredBlob(digest, size, added=False)
        self._upload(path, digest)
        return StoredBlob(digest, size, added=True)

    def remove(self, digest: str) -> None:
        """Delete the object of ``digest`` and its claim (absent is fine)."""
        self._delete(self.key_of(digest))
        self._delete(self._side_key("claims", digest))

    # ------------------------------------------------------------------ collection

    def _age_s(self, digest: str, key: str) -> float | None:
        """Seconds since the object ``key`` was written, by the store's clock; None if absent."""
        head = self._head(digest, key)
        if head is None:
            return None
        now = parsedate_to_datetime(head["ResponseMetadata"]["HTTPHeaders"]["date"])
        written: datetime = head["LastModified"]
        return (now - written).total_seconds()

    def _recent(self, digest: str, key: str, grace_s: float) -> bool:
        age = self._age_s(digest, key)
        return age is not None and age < grace_s

    def _copy(self, source: str, dest: str) -> None:
        with _translated(self):
            self.client.copy(
                {"Bucket": self.bucket, "Key": source}, self.bucket, dest, Config=self._transfer
            )

    def _delete(self, key: str) -> None:
        with _translated(self):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def sweep(self, digest: str, unused: Callable[[], bool], grace_s: float) -> tuple[Sweep, int]:
        """Remove the object unless it was written or claimed in the last ``grace_s`` seconds
        or ``unused()`` is False (see the module docstring for the order of the steps)."""
        key, claim, aside = (
            self.key_of(digest),
            self._side_key("claims", digest),
            self._side_key("gc", digest),
        )
        head = self._head(digest)
        if head is None:
            return Sweep.GONE, 0
        if self._recent(digest, key, grace_s) or self._recent(digest, claim, grace_s):
            return Sweep.KEPT, 0
        self._copy(key, aside)
        self._delete(key)
        # From here an upload finding nothing stores the content anew; one that found it
        # before the delete left its claim first, so it is seen now.
        if not unused() or self._recent(digest, claim, grace_s):
            if self._head(digest) is None:
                self._copy(aside, key)
            self._delete(aside)
            return Sweep.KEPT, 0
        self._delete(aside)
        self._delete(claim)
        return Sweep.REMOVED, int(head["ContentLength"])


class S3Receiver:
    """An upload sent to the store part by part as it arrives, hashed on the way.

    With the digest announced by the sender, the parts go to a multipart upload under that
    digest's key, completed only when the content matches (else aborted, so nothing shows);
    content that is stored already is only hashed. Without it, they go to a temporary key
    ``prefix/uploads/<random>``, copied to the digest's key once known and then deleted. An
    upload smaller than one part is sent in one request after it is checked. At most
    :data:`_RECEIVED_IN_FLIGHT` parts are held in memory.
    """

    def __init__(self, store: S3Store, expected: str | None) -> None:
        import blake3

        self._store = store
        self._expected = check_digest(expected) if expected else None
        self._known = self._expected is not None and store.claim(self._expected) is not None
        if self._expected is not None:
            self._key = store.key_of(self._expected)
        else:
            base = f"{store.prefix}/uploads/" if store.prefix else "uploads/"
            self._key = base + os.urandom(16).hex()
        self._hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        self._part: mmap.mmap | None = None
        self._filled = 0
        self._upload_id: str | None = None
        self._parts: list[Any] = []
        self._pool: Any = None
        self.size = 0

    def write(self, data: bytes) -> None:
        """Hash ``data`` and send every full part."""
        self._hasher.update(data)
        self.size += len(data)
        if self._known:
            return
        with memoryview(data) as view:
            while view:
                if self._part is None:
                    self._part, self._filled = mmap.mmap(-1, _RECEIVED_PART), 0
                taken = min(len(view), _RECEIVED_PART - self._filled)
                self._part[self._filled : self._filled + taken] = view[:taken]
                self._filled += taken
                view = view[taken:]
                if self._filled == _RECEIVED_PART:
                    part, self._part = self._part, None
                    self._send(part)

    def _rest(self) -> bytes:
        """What was written after the last full part (and releases its buffer)."""
        if self._part is None:
            return b""
        rest = self._part[: self._filled]
        self._part.close()
        self._part = None
        return rest

    def digest(self) -> str:
        """The BLAKE3 digest of what was written."""
        return str(self._hasher.hexdigest())

    def _extra(self) -> dict[str, Any]:
        meta = {"Metadata": {"blake3": self._expected}} if self._expected else {}
        return {"ContentType": "application/octet-stream", **meta}

    def _send(self, part: mmap.mmap | bytes) -> None:
        """Send ``part`` as the next part; a full part is an anonymous memory map, handed back
        to the system as soon as it is sent (large ``bytes`` freed by the upload threads stay
        in the allocator's arenas and would grow the server with every upload)."""
        from concurrent.futures import ThreadPoolExecutor

        client, bucket = self._store.client, self._store.bucket
        if self._upload_id is None:
            with _translated(self._store):
                started = client.create_multipart_upload(
                    Bucket=bucket, Key=self._key, **self._extra()
                )
            self._upload_id = started["UploadId"]
            self._pool = ThreadPoolExecutor(_RECEIVED_IN_FLIGHT)
        pending = [f for f in self._parts if not f.done()]
        if len(pending) >= _RECEIVED_IN_FLIGHT:
            pending[0].result()
        number = len(self._parts) + 1

        def upload() -> dict[str, Any]:
            try:
                with _translated(self._store):
                    sent = client.upload_part(
                        Bucket=bucket,
                        Key=self._key,
                        UploadId=self._upload_id,
                        PartNumber=number,
                        Body=part,
                    )
            finally:
                if isinstance(part, mmap.mmap):
                    part.close()
            return {"PartNumber": number, "ETag": sent["ETag"]}

        self._parts.append(self._pool.submit(upload))

    def commit(self) -> StoredBlob:
        """Complete the upload under its digest (checked against the announced one)."""
        store, digest = self._store, self.digest()
        if self._expected is not None and digest != self._expected:
            self.abort()
            raise IntegrityError(f"The upload's BLAKE3 is {digest}, not {self._expected}")
        if self._known:
            return StoredBlob(digest, self.size, added=False)
        if self._upload_id is None:  # smaller than a part: one request, already checked
            if self._expected is None and store.claim(digest) is not None:
                return StoredBlob(digest, self.size, added=False)
            with _translated(store):
                store.client.put_object(
                    Bucket=store.bucket,
                    Key=store.key_of(digest),
                    Body=self._rest(),
                    ContentType="application/octet-stream",
                    Metadata={"blake3": digest},
                )
            return StoredBlob(digest, self.size, added=True)
        try:
            rest = self._rest()
            if rest or not self._parts:
                self._send(rest)
            parts = [f.result() for f in self._parts]
            with _translated(store):
                store.client.complete_multipart_upload(
                    Bucket=store.bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            self.abort()
            raise
        self._upload_id = None
        self._pool.shutdown()
        if self._expected is not None:
            return StoredBlob(digest, self.size, added=True)
        try:
            if store.claim(digest) is not None:
                return StoredBlob(digest, self.size, added=False)
            with _translated(store):
                store.client.copy(
                    {"Bucket": store.bucket, "Key": self._key},
                    store.bucket,
                    store.key_of(digest),
                    ExtraArgs={
                        "Metadata": {"blake3": digest},
                        "MetadataDirective": "REPLACE",
                        "ContentType": "application/octet-stream",
                    },
                    Config=store._transfer,
                )
            return StoredBlob(digest, self.size, added=True)
        finally:
            store._delete(self._key)

    def abort(self) -> None:
        """Abort the multipart upload, if one was started; nothing of it becomes visible."""
        self._rest()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            with contextlib.suppress(Exception):
                self._store.client.abort_multipart_upload(
                    Bucket=self._store.bucket, Key=self._key, UploadId=upload_id
                )


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _unavailable(store: S3Store, exc: BaseException) -> StorageError:
    return StorageError(f"The object store {store.location} failed: {exc}")


@contextlib.contextmanager
def _translated(store: S3Store) -> Iterator[None]:
    """Network and credential failures become StorageError (503) naming the store."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
            raise
        raise _unavailable(store, exc) from exc
    except BotoCoreError as exc:
        raise _unavailable(store, exc) from exc
    except Exception as exc:
        # the transfer manager wraps failures of its threads in its own classes
        if type(exc).__module__.startswith(("s3transfer", "boto3")):
            raise _unavailable(store, exc) from exc
        raise
