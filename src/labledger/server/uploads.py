"""Receiving a multipart file upload straight into the object store, as it arrives.

The request body is parsed as it streams in (``python-multipart``'s push parser); the bytes of
the part named ``file`` go to the store's :class:`~labledger.archive.objects.Receiver` in pieces
of :data:`PIECE` bytes, which hashes them and writes them (the local folder: a temp file; S3: the
parts of a multipart upload). The content becomes visible under its digest only after the whole
body arrived and the digest the client sent in the field ``digest`` (before or after the file)
matched; any failure, refusal or disconnect aborts the receiver, so nothing is half-written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from labledger.archive.objects import ObjectStore, Receiver
from labledger.archive.store import DIGEST_LEN, UPLOAD_NOT_STORED, no_space_is_storage_full
from labledger.errors import InvalidInput
from labledger.server.limits import too_large

__all__ = ["PIECE", "UPLOAD_BODY", "ReceivedFile", "receive_file"]

#: bytes handed to the store at a time
PIECE = 1 << 20

#: the OpenAPI description of the body :func:`receive_file` reads
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The file (multipart field 'file').",
                        },
                        "worker_id": {
                            "type": "string",
                            "maxLength": 200,
                            "description": "A worker reporting: it must still hold the "
                            "experiment (else 409 lease_lost).",
                        },
                        "digest": {
                            "type": "string",
                            "description": "Expected BLAKE3 hex digest; a mismatch stores "
                            "nothing (422). Sent before the file, it also lets an object "
                            "store write the content straight to its final name.",
                        },
                    },
                }
            }
        },
    }
}


@dataclass(frozen=True)
class ReceivedFile:
    """A stored upload: its digest and size, and what the client said about it."""

    digest: str
    size: int
    media_type: str | None
    filename: str | None
    fields: dict[str, str] = field(default_factory=dict)


class _Part:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.name: str | None = None
        self.filename: str | None = None

    def named(self) -> None:
        """Read the field name and file name from the part's Content-Disposition."""
        _, disp = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.name = disp.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in disp:
            self.filename = disp[b"filename"].decode("utf-8", "replace")


#: the small form fields kept besides the file (at most this many bytes each)
FIELDS = ("digest", "worker_id")
_FIELD_MAX = 1000


async def receive_file(
    request: Request,
    blobs: ObjectStore,
    limit: int,
    *,
    check: Callable[[dict[str, str]], None] | None = None,
) -> ReceivedFile:
    """Store the ``file`` part of the multipart ``request`` (at most ``limit`` bytes).

    ``check`` is called with the form fields of :data:`FIELDS` (and ``file.filename``) that
    arrived before the file, and again with all of them before the content is committed; it
    refuses bad ones by raising."""
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidInput(
            "file: expected a multipart/form-data body with the file in the field 'file'",
            field="file",
        )
    events: list[tuple[str, Any]] = []
    # a header's name and value, gathered across the body's chunks until its end
    header_name, header_value = bytearray(), bytearray()

    def header_end() -> None:
        events.append(("header", (bytes(header_name).lower(), bytes(header_value))))
        header_name.clear()
        header_value.clear()

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": lambda: events.append(("begin", None)),
            "on_header_field": lambda d, s, e: header_name.extend(d[s:e]),
            "on_header_value": lambda d, s, e: header_value.extend(d[s:e]),
            "on_header_end": header_end,
            "on_headers_finished": lambda: events.append(("headers", None)),
            "on_part_data": lambda d, s, e: events.append(("data", bytes(d[s:e]))),
            "on_part_end": lambda: events.append(("end", None)),
        },
    )
    receiver: Receiver | None = None
    part = _Part()
    expected: str | None = None
    small: dict[str, bytearray] = {}
    file_part: _Part | None = None
    buffer = bytearray()
    done = False

    async def flush() -> None:
        if receiver is not None and buffer:
            piece = bytes(buffer)
            buffer.clear()
            await anyio.to_thread.run_sync(receiver.write, piece)

    try:
        with no_space_is_storage_full(blobs.tmp, UPLOAD_NOT_STORED):
            await anyio.to_thread.run_sync(blobs.create)
            async for chunk in request.stream():
                parser.write(chunk)
                for event, data in events:
                    if event == "begin":
                        part = _Part()
                    elif event == "header":
                        part.headers[data[0]] = data[1]
                    elif event == "headers":
                        part.named()
                        if part.name == "file" and file_part is None:
                            file_part = part
                            if check is not None:
                                check(_fields(small, part))
                            expected = _digest_field(small.get("digest", bytearray()))
                            receiver = await anyio.to_thread.run_sync(blobs.receive, expected)
                    elif event == "data":
                        if part is file_part and not done:
                            buffer += data
                            if receiver is not None and receiver.size + len(buffer) > limit:
                                raise too_large("The uploaded file", limit, "max_upload_bytes")
                            if len(buffer) >= PIECE:
                                await flush()
                        elif part.name in FIELDS:
                            kept = small.setdefault(part.name, bytearray())
                            if len(kept) <= _FIELD_MAX:
                                kept += data
                    elif event == "end" and part is file_part:
                        done = True
                        await flush()
                events.clear()
            parser.finalize()
            if receiver is None or file_part is None:
                raise InvalidInput(
                    "file: the multipart body has no field 'file'; send the file in it",
                    field="file",
                )
            await flush()
            got = receiver.digest()
            said = _digest_field(small.get("digest", bytearray()))
            if said is not None and said != got:
                raise InvalidInput(
                    f"digest: the upload's BLAKE3 is {got}, the client said {said}; "
                    "the file was corrupted in transit and was not recorded",
                    field="digest",
                )
            fields = _fields(small, file_part)
            if check is not None:
                check(fields)
            stored = await anyio.to_thread.run_sync(receiver.commit)
    except BaseException:
        if receiver is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(receiver.abort)
        raise
    media_type = file_part.headers.get(b"content-type")
    return ReceivedFile(
        stored.digest,
        stored.size,
        media_type.decode("latin-1") if media_type else None,
        file_part.filename,
        {k: v for k, v in fields.items() if k in FIELDS},
    )


def _fields(small: dict[str, bytearray], file_part: _Part) -> dict[str, str]:
    fields = {name: bytes(value).decode("utf-8", "replace") for name, value in small.items()}
    if file_part.filename is not None:
        fields["file.filename"] = file_part.filename
    return fields


def _digest_field(raw: bytearray) -> str | None:
    """The digest the client sent (None if it sent none); refused unless 64 hex characters."""
    text = raw.decode("utf-8", "replace").strip().lower()
    if not text:
        return None
    if len(text) != DIGEST_LEN or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInput(
            f"digest: expected a BLAKE3 hex digest (64 hex characters), got {text[:80]!r}",
            field="digest",
        )
    return text
