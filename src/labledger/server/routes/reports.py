"""Reports: an experiment summary and a campaign report as JSON, Markdown or HTML."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Query, Response

from labledger.core.labrecord import lab_report
from labledger.server.deps import LabDep
from labledger.server.rendering import json_response
from labledger.server.report_render import FORMATS, render_report
from labledger.server.routes.lab_records import read_record
from labledger.server.schemas import ERRORS

__all__ = ["router"]

router = APIRouter(tags=["reports"])

Format = Annotated[
    Literal["json", "md", "html"],
    Query(alias="format", description="json (default), md (Markdown) or html"),
]
Download = Annotated[bool, Query(description="Send as an attachment (a file to save)")]

_SUFFIX = {"json": "json", "md": "md", "html": "html"}


def _respond(report: dict[str, object], fmt: str, stem: str, download: bool) -> Response:
    headers = {}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="{stem}.{_SUFFIX[fmt]}"'
    if fmt == "json":
        response: Response = json_response(report)
        response.headers.update(headers)
        return response
    return Response(render_report(report, fmt), media_type=FORMATS[fmt], headers=headers)


@router.get("/experiment/{experiment_id}/report", responses=ERRORS)
async def experiment_report(
    experiment_id: str, lab: LabDep, fmt: Format = "json", download: Download = False
) -> Response:
    """The experiment's summary: status, duration, results, milestones, resources, timeline,
    and with a MADSci lab configured its workflows, data points, resources and events."""
    report = await anyio.to_thread.run_sync(lab.reports.experiment_summary, experiment_id)
    if lab.gateway.any_configured:
        report["lab"] = lab_report(await read_record(lab.gateway, [experiment_id]))
    return _respond(report, fmt, f"experiment-{experiment_id}", download)


@router.get("/campaign/{campaign_id}/report", responses=ERRORS)
async def campaign_report(
    campaign_id: str, lab: LabDep, fmt: Format = "json", download: Download = False
) -> Response:
    """The campaign's report: counts by status, success rate, durations, results, timeline,
    and with a MADSci lab configured its experiments' workflows and data points."""
    report = await anyio.to_thread.run_sync(lab.reports.campaign_report, campaign_id)
    if lab.gateway.any_configured:
        ids = [row["experiment_id"] for row in report["rows"]]
        report["lab"] = lab_report(await read_record(lab.gateway, ids))
    return _respond(report, fmt, f"campaign-{campaign_id}", download)
