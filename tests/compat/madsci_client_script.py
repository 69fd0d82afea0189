"""Drive a server with the official MADSci 0.8.1 ``ExperimentClient``; write what came back as JSON.

This runs INSIDE the separate venv that holds ``madsci-client==0.8.1`` (see the ``madsci_python``
fixture), never in labledger's own venv, and imports nothing of labledger::

    python madsci_client_script.py URL --out report.json [--get ID ...]

Every call goes through the client's public methods, sync and ``async_``, exactly as a MADSci user
would make them. A call that raises is written under ``errors`` (with the HTTP status and body when
there was one) and the script carries on, so one report shows every incompatibility at once.
The report is plain data; ``test_madsci_client.py`` makes the assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from madsci.client.experiment_client import ExperimentClient
from madsci.common.types.auth_types import OwnershipInfo
from madsci.common.types.condition_types import ResourceInLocationCondition
from madsci.common.types.experiment_types import (
    Experiment,
    ExperimentalCampaign,
    ExperimentDesign,
    ExperimentStatus,
)
from ulid import ULID

T = TypeVar("T")

USER_ID = str(ULID())
PROJECT_ID = str(ULID())


class Report:
    """What the client got: one entry per call, and the errors by call name."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {"errors": {}, "user_id": USER_ID, "project_id": PROJECT_ID}

    def error(self, name: str, exc: BaseException) -> None:
        entry: dict[str, Any] = {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(limit=6),
        }
        if isinstance(exc, httpx.HTTPStatusError):
            entry["status_code"] = exc.response.status_code
            entry["body"] = exc.response.text[:2000]
        self.data["errors"][name] = entry

    def call(self, name: str, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except Exception as exc:
            self.error(name, exc)
            return None

    async def acall(self, name: str, fn: Callable[[], Awaitable[T]]) -> T | None:
        try:
            return await fn()
        except Exception as exc:
            self.error(name, exc)
            return None


def experiment_facts(exp: Experiment | None) -> dict[str, Any] | None:
    """The fields of an Experiment the test looks at, as the client's model holds them."""
    if exp is None:
        return None
    design = exp.experiment_design
    return {
        "id": exp.experiment_id,
        "status": exp.status.value,
        "run_name": exp.run_name,
        "run_description": exp.run_description,
        "started_at_set": exp.started_at is not None,
        "ended_at_set": exp.ended_at is not None,
        "experiment_name": design.experiment_name if design else None,
        "condition_types": [c.condition_type.value for c in design.resource_conditions]
        if design
        else [],
        "condition_locations": [
            getattr(c, "location_name", None) for c in design.resource_conditions
        ]
        if design
        else [],
        "ownership_user_id": exp.ownership_info.user_id,
        "ownership_project_id": exp.ownership_info.project_id,
    }


def campaign_facts(campaign: ExperimentalCampaign | None) -> dict[str, Any] | None:
    if campaign is None:
        return None
    return {
        "id": campaign.campaign_id,
        "name": campaign.campaign_name,
        "description": campaign.campaign_description,
        "experiment_ids": campaign.experiment_ids,
    }


def design(name: str) -> ExperimentDesign:
    return ExperimentDesign(
        experiment_name=name,
        experiment_description=f"{name}: driven by the official MADSci client",
        resource_conditions=[ResourceInLocationCondition(location_name="deck1", key=0)],
        ownership_info=OwnershipInfo(user_id=USER_ID, project_id=PROJECT_ID),
    )


def run_sync(client: ExperimentClient, report: Report, get_ids: list[str]) -> None:
    out: dict[str, Any] = {}
    report.data["sync"] = out

    started = report.call(
        "sync.start_experiment",
        lambda: client.start_experiment(design("compat sync"), run_name="r1", run_description="rd"),
    )
    out["started"] = experiment_facts(started)
    if started is not None:
        exp_id = started.experiment_id
        out["got"] = experiment_facts(
            report.call("sync.get_experiment", lambda: client.get_experiment(exp_id))
        )
        out["paused"] = experiment_facts(
            report.call("sync.pause_experiment", lambda: client.pause_experiment(exp_id))
        )
        out["continued"] = experiment_facts(
            report.call("sync.continue_experiment", lambda: client.continue_experiment(exp_id))
        )
        out["cancelled"] = experiment_facts(
            report.call("sync.cancel_experiment", lambda: client.cancel_experiment(exp_id))
        )

    ended = report.call("sync.start_experiment[end]", lambda: client.start_experiment(design("e")))
    if ended is not None:
        out["ended"] = experiment_facts(
            report.call("sync.end_experiment", lambda: client.end_experiment(ended.experiment_id))
        )

    failed = report.call(
        "sync.start_experiment[fail]", lambda: client.start_experiment(design("f"))
    )
    if failed is not None:
        failed_id = failed.experiment_id
        out["ended_failed"] = experiment_facts(
            report.call(
                "sync.end_experiment[FAILED]",
                lambda: client.end_experiment(failed_id, status=ExperimentStatus.FAILED),
            )
        )
        out["failed_reread"] = experiment_facts(
            report.call("sync.get_experiment[failed]", lambda: client.get_experiment(failed_id))
        )

    listed = report.call("sync.get_experiments", lambda: client.get_experiments(number=50))
    out["listed"] = [experiment_facts(e) for e in listed] if listed is not None else None
    out["listed_5"] = [
        e.experiment_id
        for e in report.call("sync.get_experiments[5]", lambda: client.get_experiments(number=5))
        or []
    ]
    out["got_extra"] = {
        i: experiment_facts(
            report.call(f"sync.get_experiment[{i}]", functools.partial(client.get_experiment, i))
        )
        for i in get_ids
    }

    linked = [e.experiment_id for e in (ended, failed) if e is not None]
    campaign = ExperimentalCampaign(
        campaign_name="compat campaign sync",
        campaign_description="made by the official client",
        experiment_ids=linked,
    )
    out["campaign_sent_id"] = campaign.campaign_id
    out["campaign_linked"] = linked
    registered = report.call("sync.register_campaign", lambda: client.register_campaign(campaign))
    out["campaign_registered"] = campaign_facts(registered)
    if registered is not None:
        out["campaign_got"] = campaign_facts(
            report.call("sync.get_campaign", lambda: client.get_campaign(registered.campaign_id))
        )
    campaigns = report.call("sync.get_campaigns", client.get_campaigns)
    out["campaigns_listed"] = [c.campaign_id for c in campaigns] if campaigns is not None else None


async def run_async(client: ExperimentClient, report: Report, get_ids: list[str]) -> None:
    out: dict[str, Any] = {}
    report.data["async"] = out

    started = await report.acall(
        "async.start_experiment",
        lambda: client.async_start_experiment(
            design("compat async"), run_name="r1", run_description="rd"
        ),
    )
    out["started"] = experiment_facts(started)
    if started is not None:
        exp_id = started.experiment_id
        out["got"] = experiment_facts(
            await report.acall("async.get_experiment", lambda: client.async_get_experiment(exp_id))
        )
        out["paused"] = experiment_facts(
            await report.acall(
                "async.pause_experiment", lambda: client.async_pause_experiment(exp_id)
            )
        )
        out["continued"] = experiment_facts(
            await report.acall(
                "async.continue_experiment", lambda: client.async_continue_experiment(exp_id)
            )
        )
        out["cancelled"] = experiment_facts(
            await report.acall(
                "async.cancel_experiment", lambda: client.async_cancel_experiment(exp_id)
            )
        )

    ended = await report.acall(
        "async.start_experiment[end]", lambda: client.async_start_experiment(design("ae"))
    )
    if ended is not None:
        out["ended"] = experiment_facts(
            await report.acall(
                "async.end_experiment", lambda: client.async_end_experiment(ended.experiment_id)
            )
        )

    failed = await report.acall(
        "async.start_experiment[fail]", lambda: client.async_start_experiment(design("af"))
    )
    if failed is not None:
        failed_id = failed.experiment_id
        out["ended_failed"] = experiment_facts(
            await report.acall(
                "async.end_experiment[FAILED]",
                lambda: client.async_end_experiment(failed_id, status=ExperimentStatus.FAILED),
            )
        )
        out["failed_reread"] = experiment_facts(
            await report.acall(
                "async.get_experiment[failed]", lambda: client.async_get_experiment(failed_id)
            )
        )

    listed = await report.acall(
        "async.get_experiments", lambda: client.async_get_experiments(number=50)
    )
    out["listed"] = [experiment_facts(e) for e in listed] if listed is not None else None
    out["got_extra"] = {}
    for i in get_ids:
        got = await report.acall(
            f"async.get_experiment[{i}]", functools.partial(client.async_get_experiment, i)
        )
        out["got_extra"][i] = experiment_facts(got)

    linked = [e.experiment_id for e in (ended, failed) if e is not None]
    campaign = ExperimentalCampaign(campaign_name="compat campaign async", experiment_ids=linked)
    out["campaign_sent_id"] = campaign.campaign_id
    out["campaign_linked"] = linked
    registered = await report.acall(
        "async.register_campaign", lambda: client.async_register_campaign(campaign)
    )
    out["campaign_registered"] = campaign_facts(registered)
    if registered is not None:
        out["campaign_got"] = campaign_facts(
            await report.acall(
                "async.get_campaign", lambda: client.async_get_campaign(registered.campaign_id)
            )
        )
    campaigns = await report.acall("async.get_campaigns", client.async_get_campaigns)
    out["campaigns_listed"] = [c.campaign_id for c in campaigns] if campaigns is not None else None


def raw_keys(url: str, experiment_id: str) -> list[str]:
    """The JSON keys of one experiment as the server sends them (to see ``_id`` on the wire)."""
    response = httpx.get(f"{url}experiment/{experiment_id}", timeout=10)
    response.raise_for_status()
    return sorted(response.json())


async def amain(args: argparse.Namespace) -> Report:
    report = Report()
    with ExperimentClient(experiment_server_url=args.url) as client:
        run_sync(client, report, args.get)
        await run_async(client, report, args.get)
        await client.aclose()
    started = report.data["sync"].get("started")
    if started is not None:
        report.data["raw_keys"] = report.call(
            "raw.get_experiment", lambda: raw_keys(args.url, started["id"])
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="base URL of the server, ending with '/'")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON report")
    parser.add_argument("--get", action="append", default=[], help="also get this experiment id")
    args = parser.parse_args()
    report = asyncio.run(amain(args))
    args.out.write_text(json.dumps(report.data, indent=2, default=str))


if __name__ == "__main__":
    main()
