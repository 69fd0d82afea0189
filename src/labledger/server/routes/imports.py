"""Receiving runs recorded elsewhere (``labledger push``): blobs by digest, then the record.

A push is idempotent end to end: ``POST /blobs/missing`` says which digests the server lacks,
``PUT /blobs/{digest}`` stores one (verified against its digest, stored once), and
``PUT /experiment/{id}/import`` keeps the run under its own id, changing nothing on a repeat.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, Field

from labledger.archive.objects import Receiver
from labledger.archive.store import UPLOAD_NOT_STORED, no_space_is_storage_full
from labledger.core.models import Event, Experiment, ExperimentPublic
from labledger.errors import InvalidInput, NotFound
from labledger.server.deps import Actor, Claim, LabDep
from labledger.server.limits import too_large
from labledger.server.objects import blob_response
from labledger.server.rendering import JSONBody, experiment_json, json_response
from labledger.server.schemas import ERRORS
from labledger.server.uploads import PIECE

__all__ = ["router"]

router = APIRouter(tags=["push"])

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
Digest = Annotated[
    str, PathParam(pattern=r"^[0-9a-f]{64}$", description="BLAKE3 hex digest (64 characters)")
]


class MissingQuery(BaseModel):
    """Digests a pusher holds."""

    digests: list[str] = Field(max_length=100_000)


class MissingAnswer(BaseModel):
    """The digests the server does not hold yet."""

    missing: list[str]


class BlobAnswer(BaseModel):
    """A stored blob."""

    digest: str
    size: int
    added: bool


class ExperimentImport(BaseModel):
    """A run recorded elsewhere: the experiment, its events and the recorder's record."""

    experiment: Experiment
    events: list[Event] = Field(default_factory=list, max_length=100_000)
    recorder: dict[str, Any] = Field(
        default_factory=dict,
        description="What the recorder adds (hypothesis, observations, phases, code, files).",
    )


@router.post("/blobs/missing", response_model=MissingAnswer, responses=ERRORS)
def missing_blobs(query: MissingQuery, lab: LabDep) -> JSONBody:
    """Which of these digests the server lacks (so a push uploads only those)."""
    bad = next((d for d in query.digests if not _DIGEST.match(d)), None)
    if bad is not None:
        raise InvalidInput(
            f"digests: expected 64-character lowercase hex BLAKE3 digests, got {bad!r}",
            field="digests",
        )
    return json_response({"missing": lab.files.missing(list(dict.fromkeys(query.digests)))})


@router.put(
    "/blobs/{digest}",
    response_model=BlobAnswer,
    responses={**ERRORS, 201: {"model": BlobAnswer, "description": "Stored (it was new)"}},
)
async def put_blob(digest: Digest, request: Request, lab: LabDep) -> JSONBody:
    """Store the request body under its BLAKE3 digest; a mismatch stores nothing (422)."""
    known = await anyio.to_thread.run_sync(lab.files.claim, digest)
    if known is not None:
        return json_response({"digest": digest, "size": known, "added": False})
    limit = lab.settings.max_upload_bytes
    receiver: Receiver | None = None
    try:
        with no_space_is_storage_full(lab.files.tmp, UPLOAD_NOT_STORED):
            await anyio.to_thread.run_sync(lab.files.create)
            receiver = await anyio.to_thread.run_sync(lab.files.receive, digest)
            buffer = bytearray()
            async for chunk in request.stream():
                buffer += chunk
                if receiver.size + len(buffer) > limit:
                    raise too_large("The uploaded blob", limit, "max_upload_bytes")
                if len(buffer) >= PIECE:
                    await anyio.to_thread.run_sync(receiver.write, bytes(buffer))
                    buffer.clear()
            await anyio.to_thread.run_sync(receiver.write, bytes(buffer))
            got = receiver.digest()
            if got != digest:
                raise InvalidInput(
                    f"digest: the body's BLAKE3 is {got}, not {digest}; nothing was stored",
                    field="digest",
                )
            stored = await anyio.to_thread.run_sync(receiver.commit)
    except BaseException:
        if receiver is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(receiver.abort)
        raise
    return json_response(
        {"digest": digest, "size": stored.size, "added": stored.added},
        status_code=201 if stored.added else 200,
    )


@router.get(
    "/blobs/{digest}",
    responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}},
)
def get_blob(digest: Digest, request: Request, lab: LabDep) -> Response:
    """A stored blob's bytes (logs, scripts and outputs of pushed runs); ``Range`` honoured."""
    size = lab.files.size_of(digest)
    if size is None:
        raise NotFound(f"No blob {digest} on this server", digest=digest)
    return blob_response(
        lab.files,
        digest,
        size,
        request,
        media_type="application/octet-stream",
        headers={"ETag": f'"{digest}"'},
    )


@router.put(
    "/experiment/{experiment_id}/import",
    response_model=ExperimentPublic,
    responses={
        **ERRORS,
        201: {"model": ExperimentPublic, "description": "Imported (the first time)"},
    },
)
def import_experiment(
    experiment_id: str, body: ExperimentImport, lab: LabDep, actor: Actor, claim: Claim
) -> JSONBody:
    """Keep a run recorded elsewhere under its own id (201 first, 200 after); safe to repeat."""
    if body.experiment.experiment_id != experiment_id:
        raise InvalidInput(
            f"experiment._id: the body is for {body.experiment.experiment_id}, "
            f"the path for {experiment_id}",
            field="experiment._id",
        )
    stored, changed = lab.experiments.import_experiment(
        body.experiment, body.events, recorder=body.recorder, actor=actor, claim=claim
    )
    first = changed and stored.version == 1
    return experiment_json(stored, status_code=201 if first else 200)
