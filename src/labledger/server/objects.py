"""Answering downloads from the server's object store.

A local store answers with :class:`~labledger.server.rendering.Download` (sendfile, ``Range`` and
multipart ranges). A remote store is streamed chunk by chunk; a single ``Range`` is asked of the
store as such, so a resumed download of a large file reads only what is missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from labledger.archive.objects import ObjectStore
from labledger.errors import InvalidInput, RangeNotSatisfiable
from labledger.server.rendering import Download

__all__ = ["blob_response"]

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def blob_response(
    store: ObjectStore,
    digest: str,
    size: int,
    request: Request,
    *,
    media_type: str,
    filename: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The content of ``digest`` (``size`` bytes) as the answer to ``request``."""
    extra = dict(headers or {})
    path = store.local_path(digest)
    if path is not None:
        return Download(path, media_type=media_type, filename=filename, headers=extra)
    if filename is not None:
        extra["Content-Disposition"] = f"attachment; filename*=utf-8''{quote(filename)}"
    extra["Accept-Ranges"] = "bytes"
    wanted = _single_range(request.headers.get("range"), size)
    if wanted == "unsatisfiable":
        raise RangeNotSatisfiable(
            f"Range: {request.headers.get('range')!r} starts at or after the end of the file "
            f"({size} bytes)",
            size=size,
        )
    if isinstance(wanted, str):
        raise InvalidInput(
            "Range: expected bytes=START-END with START below END (e.g. bytes=0-1023), "
            f"got {request.headers.get('range')!r}",
            field="Range",
        )
    if wanted is None or size == 0:
        extra["Content-Length"] = str(size)
        return StreamingResponse(store.iter_chunks(digest), media_type=media_type, headers=extra)
    start, end = wanted
    extra["Content-Length"] = str(end - start + 1)
    extra["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(
        store.iter_chunks(digest, start, end),
        status_code=206,
        media_type=media_type,
        headers=extra,
    )


def _single_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end) of one satisfiable byte range; None to send everything (no header, or
    several ranges, which a server may ignore); "malformed" for 422, "unsatisfiable" for 416
    (as :class:`~labledger.server.rendering.Download` answers for a local file)."""
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None if "," in header else "malformed"
    first, last = match.groups()
    if not first and not last:
        return "malformed"
    if not first:  # the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return "malformed"
    if start >= size:
        return "unsatisfiable"
    return start, end
