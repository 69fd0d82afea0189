"""An experiment's and a campaign's lab record: workflows, data points, resources, events.

Read from the MADSci managers through the lab's gateway (``ServerLab.gateway``). The list
routes answer the managers' own JSON, with headers saying how it was read: ``X-Lab-State``
(``ok``, ``unreachable``, ``absent``), ``X-Lab-Read-At`` and ``X-Lab-Unreachable-Since``.
``/lab`` answers every section with those stamps in the body. A manager that is down or
answers garbage never makes these routes fail: its section is marked unreachable.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import anyio
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from labledger.core.labrecord import LabReader, LabSection, Manager, SectionState, workflow_ids
from labledger.errors import LabUnavailable, NotFound
from labledger.server.deps import LabDep
from labledger.server.rendering import JSONBody
from labledger.server.schemas import ERRORS

__all__ = ["read_record", "router"]

router = APIRouter(tags=["lab"])


async def read_record(gateway: LabReader, experiment_ids: Sequence[str]) -> dict[str, LabSection]:
    """Every section of the lab record of these experiments, the managers asked in parallel."""
    ids = list(experiment_ids)
    workflows, resources, owned = await asyncio.gather(
        gateway.workflows(ids), gateway.resources(ids), _owned_points(gateway, ids)
    )
    wids = workflow_ids(workflows.items)
    # with no workflows, or a Data Manager that did not answer just now, the first read stands
    again = wids and owned.state is not SectionState.UNREACHABLE
    datapoints, events = await asyncio.gather(
        gateway.datapoints(ids, wids) if again else _same(owned),
        gateway.events(ids, wids),
    )
    return {
        "workflows": workflows,
        "datapoints": datapoints,
        "resources": resources,
        "events": events,
    }


async def _owned_points(gateway: LabReader, ids: list[str]) -> LabSection:
    # started beside the workflows: most experiments' points are theirs, not their steps'
    return await gateway.datapoints(ids, [])


async def _same(section: LabSection) -> LabSection:
    return section


def _listing(section: LabSection) -> JSONBody:
    headers = {"X-Lab-State": section.state.value}
    if section.read_at is not None:
        headers["X-Lab-Read-At"] = section.read_at.isoformat()
    if section.unreachable_since is not None:
        headers["X-Lab-Unreachable-Since"] = section.unreachable_since.isoformat()
    return JSONBody(section.items, headers=headers)


def _record_json(sections: dict[str, LabSection]) -> JSONBody:
    return JSONBody({name: section.as_json() for name, section in sections.items()})


async def _experiment_ids(lab: LabDep, experiment_id: str) -> list[str]:
    await anyio.to_thread.run_sync(
        lab.experiments.get_experiment, experiment_id
    )  # 404 when unknown
    return [experiment_id]


async def _campaign_ids(lab: LabDep, campaign_id: str) -> list[str]:
    campaign = await anyio.to_thread.run_sync(lab.experiments.get_campaign, campaign_id)
    return list(campaign.experiment_ids or [])


# ---------------------------------------------------------------------- experiments


@router.get("/experiment/{experiment_id}/workflows", responses=ERRORS)
async def experiment_workflows(experiment_id: str, lab: LabDep) -> JSONBody:
    """The experiment's workflows on the Workcell Manager (active and archived), newest first."""
    ids = await _experiment_ids(lab, experiment_id)
    return _listing(await lab.gateway.workflows(ids))


@router.get("/experiment/{experiment_id}/datapoints", responses=ERRORS)
async def experiment_datapoints(experiment_id: str, lab: LabDep) -> JSONBody:
    """The Data Manager's data points owned by the experiment or made by its workflows' steps."""
    ids = await _experiment_ids(lab, experiment_id)
    return _listing((await read_record(lab.gateway, ids))["datapoints"])


@router.get("/experiment/{experiment_id}/lab/resources", responses=ERRORS)
async def experiment_lab_resources(experiment_id: str, lab: LabDep) -> JSONBody:
    """The Resource Manager's resources owned by the experiment."""
    ids = await _experiment_ids(lab, experiment_id)
    return _listing(await lab.gateway.resources(ids))


@router.get("/experiment/{experiment_id}/lab/events", responses=ERRORS)
async def experiment_lab_events(experiment_id: str, lab: LabDep) -> JSONBody:
    """The Event Manager's events of the experiment and of its workflows, oldest first."""
    ids = await _experiment_ids(lab, experiment_id)
    return _listing((await read_record(lab.gateway, ids))["events"])


@router.get("/experiment/{experiment_id}/lab", responses=ERRORS)
async def experiment_lab(experiment_id: str, lab: LabDep) -> JSONBody:
    """The whole lab record, each section stamped with when it was read (or since when its
    manager has been unreachable)."""
    ids = await _experiment_ids(lab, experiment_id)
    return _record_json(await read_record(lab.gateway, ids))


@router.get("/experiment/{experiment_id}/datapoints/{datapoint_id}/value", responses=ERRORS)
async def experiment_datapoint_value(
    experiment_id: str, datapoint_id: str, lab: LabDep
) -> StreamingResponse:
    """Download a file data point of the experiment from the Data Manager."""
    ids = await _experiment_ids(lab, experiment_id)
    section = (await read_record(lab.gateway, ids))["datapoints"]
    point = next((p for p in section.items if str(p.get("_id")) == datapoint_id), None)
    if point is None:
        if section.error:
            raise LabUnavailable(section.error, manager=Manager.DATA.value)
        raise NotFound(
            f"data point {datapoint_id} is not one of experiment {experiment_id}'s",
            field="datapoint_id",
        )
    upstream = await lab.gateway.datapoint_value(datapoint_id)
    name = str(point.get("path") or point.get("label") or datapoint_id).rsplit("/", 1)[-1]

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_bytes():
                yield chunk
        finally:
            await upstream.aclose()

    return StreamingResponse(
        body(),
        media_type=upstream.headers.get("content-type", "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# ---------------------------------------------------------------------- campaigns


@router.get("/campaign/{campaign_id}/workflows", responses=ERRORS)
async def campaign_workflows(campaign_id: str, lab: LabDep) -> JSONBody:
    """The workflows of every experiment of the campaign, newest first."""
    ids = await _campaign_ids(lab, campaign_id)
    return _listing(await lab.gateway.workflows(ids))


@router.get("/campaign/{campaign_id}/datapoints", responses=ERRORS)
async def campaign_datapoints(campaign_id: str, lab: LabDep) -> JSONBody:
    """The data points of every experiment of the campaign and of their workflows."""
    ids = await _campaign_ids(lab, campaign_id)
    return _listing((await read_record(lab.gateway, ids))["datapoints"])


@router.get("/campaign/{campaign_id}/lab", responses=ERRORS)
async def campaign_lab(campaign_id: str, lab: LabDep) -> JSONBody:
    """The lab record of every experiment of the campaign, each section stamped."""
    ids = await _campaign_ids(lab, campaign_id)
    return _record_json(await read_record(lab.gateway, ids))
