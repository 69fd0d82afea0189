"""Results (values and files), progress, milestones and resources of an experiment.

File results are uploaded as multipart (field ``file``), streamed into the store while their
BLAKE3 digest is computed, and kept content-addressed (one copy per content). A download
carries the digest in ``X-Content-BLAKE3`` and the ``ETag``, so the receiver can check it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from labledger.core.records import (
    Milestone,
    MilestoneCreate,
    ProgressUpdate,
    ResourceUse,
    ResourceUseCreate,
    Result,
    ResultKind,
    ResultValues,
    check_result_name,
)
from labledger.core.strict import text_problem
from labledger.errors import InvalidInput, NotFound
from labledger.server.deps import Actor, Claim, LabDep
from labledger.server.objects import blob_response
from labledger.server.rendering import JSONBody, experiment_json, json_response
from labledger.server.schemas import ERRORS
from labledger.server.uploads import UPLOAD_BODY, receive_file

__all__ = ["DIGEST_HEADER", "router"]

router = APIRouter(tags=["results"])

#: response header with the BLAKE3 hex digest of a downloaded file
DIGEST_HEADER = "X-Content-BLAKE3"
CHUNK = 1 << 20


def result_wire(r: Result) -> dict[str, Any]:
    """The JSON of one result."""
    return r.model_dump(mode="json")


@router.post("/experiment/{experiment_id}/results", response_model=list[Result], responses=ERRORS)
def add_values(
    experiment_id: str, body: ResultValues, lab: LabDep, actor: Actor, claim: Claim
) -> JSONBody:
    """Attach named values (numbers, text, JSON); a name given again replaces its value."""
    stored = lab.results.add_values(
        experiment_id, body.values, actor=actor, worker_id=body.worker_id, claim=claim
    )
    return json_response([result_wire(r) for r in stored])


@router.get("/experiment/{experiment_id}/results", response_model=list[Result], responses=ERRORS)
def list_results(experiment_id: str, lab: LabDep) -> JSONBody:
    """An experiment's results (values and files), by name."""
    return json_response([result_wire(r) for r in lab.results.list_results(experiment_id)])


@router.get("/experiment/{experiment_id}/results/{name}", response_model=Result, responses=ERRORS)
def get_result(experiment_id: str, name: str, lab: LabDep) -> JSONBody:
    """One named result."""
    return json_response(result_wire(lab.results.get_result(experiment_id, name)))


@router.post(
    "/experiment/{experiment_id}/files/{name}",
    response_model=Result,
    responses=ERRORS,
    status_code=201,
    openapi_extra=UPLOAD_BODY,
)
async def upload_file(
    experiment_id: str,
    name: str,
    request: Request,
    lab: LabDep,
    actor: Actor,
    claim: Claim,
) -> JSONBody:
    """Upload a file result (multipart field ``file``, optional field ``digest``). Streamed into
    the store while it arrives; stored content-addressed; answers its digest and size."""
    try:
        check_result_name(name)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="name") from None
    await anyio.to_thread.run_sync(lab.store.experiments.get, experiment_id)  # 404 before upload
    received = await receive_file(
        request, lab.files, lab.settings.max_upload_bytes, check=_check_fields
    )
    result = await anyio.to_thread.run_sync(
        lambda: lab.results.add_file(
            experiment_id,
            name,
            digest=received.digest,
            size=received.size,
            media_type=received.media_type,
            filename=Path(received.filename or name).name[:1000],
            actor=actor,
            worker_id=received.fields.get("worker_id"),
            claim=claim,
        )
    )
    return JSONBody(result_wire(result), status_code=201)


def _check_fields(fields: dict[str, str]) -> None:
    """Refuse form fields that cannot be stored (checked before the content becomes visible)."""
    worker_id = fields.get("worker_id")
    if worker_id is not None and len(worker_id) > 200:
        raise InvalidInput(
            "worker_id: expected at most 200 characters; nothing was stored", field="worker_id"
        )
    for field, value in fields.items():
        if (why := text_problem(value)) is not None:
            raise InvalidInput(f"{field}: {why}; nothing was stored", field=field)


@router.get(
    "/experiment/{experiment_id}/files/{name}",
    responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}},
)
def download_file(experiment_id: str, name: str, request: Request, lab: LabDep) -> Response:
    """Download a file result; its BLAKE3 digest is in ``X-Content-BLAKE3`` and the ETag.

    ``Range`` is honoured (206), so an interrupted download of a large file can resume.
    """
    result = lab.results.get_result(experiment_id, name)
    if result.kind is not ResultKind.FILE or result.digest is None:
        raise InvalidInput(
            f"name: result {name!r} of experiment {experiment_id} is a value, not a file; "
            f"read it at /experiment/{experiment_id}/results/{name}",
            field="name",
        )
    size = lab.files.size_of(result.digest)
    if size is None:
        raise NotFound(
            f"The content of file result {name!r} (blake3 {result.digest}) is missing from "
            f"the result store at {lab.files.location}",
            experiment_id=experiment_id,
            name=name,
        )
    return blob_response(
        lab.files,
        result.digest,
        size,
        request,
        media_type=result.media_type or "application/octet-stream",
        filename=result.filename or name,
        headers={DIGEST_HEADER: result.digest, "ETag": f'"{result.digest}"'},
    )


# ---------------------------------------------------------------- progress and milestones


@router.post("/experiment/{experiment_id}/progress", responses=ERRORS)
def set_progress(experiment_id: str, body: ProgressUpdate, lab: LabDep, actor: Actor) -> JSONBody:
    """Record how far the experiment has got (0 to 1), with an optional message."""
    return experiment_json(lab.results.set_progress(experiment_id, body, actor=actor))


@router.post(
    "/experiment/{experiment_id}/milestones",
    response_model=Milestone,
    responses=ERRORS,
    status_code=201,
)
def add_milestone(
    experiment_id: str, body: MilestoneCreate, lab: LabDep, actor: Actor, claim: Claim
) -> JSONBody:
    """Record a checkpoint: a name, the time, optional progress and the data to resume from."""
    milestone = lab.results.add_milestone(experiment_id, body, actor=actor, claim=claim)
    return JSONBody(milestone.model_dump(mode="json"), status_code=201)


@router.get(
    "/experiment/{experiment_id}/milestones", response_model=list[Milestone], responses=ERRORS
)
def list_milestones(experiment_id: str, lab: LabDep) -> JSONBody:
    """An experiment's milestones, oldest first (the last one is where to resume)."""
    return json_response(
        [m.model_dump(mode="json") for m in lab.results.list_milestones(experiment_id)]
    )


# ---------------------------------------------------------------- resources


@router.post(
    "/experiment/{experiment_id}/resources",
    response_model=list[ResourceUse],
    responses=ERRORS,
    status_code=201,
)
def add_resources(
    experiment_id: str, body: list[ResourceUseCreate], lab: LabDep, actor: Actor
) -> JSONBody:
    """Record samples, consumables or instruments the experiment used."""
    uses = lab.results.add_resources(experiment_id, body, actor=actor)
    return JSONBody([u.model_dump(mode="json") for u in uses], status_code=201)


@router.get(
    "/experiment/{experiment_id}/resources", response_model=list[ResourceUse], responses=ERRORS
)
def list_resources(experiment_id: str, lab: LabDep) -> JSONBody:
    """What the experiment used."""
    return json_response(
        [u.model_dump(mode="json") for u in lab.results.list_resources(experiment_id)]
    )


@router.get("/resources/{resource_id}/experiments", responses=ERRORS)
def experiments_using(
    resource_id: str,
    lab: LabDep,
    number: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> JSONBody:
    """Which experiments used this resource (e.g. a sample), with each use."""
    uses = lab.results.uses_of(resource_id, limit=number)
    return json_response(
        {
            "resource_id": resource_id,
            "experiment_ids": list(dict.fromkeys(u.experiment_id for u in uses)),
            "uses": [u.model_dump(mode="json") for u in uses],
        }
    )
