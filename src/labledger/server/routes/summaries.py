"""Views across experiments: side-by-side comparison and counts by status (JSON twins of pages)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from labledger.core.lab import Lab
from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import Experiment, ExperimentQuery
from labledger.core.records import Result
from labledger.core.reports import result_cell
from labledger.core.service import ExperimentService
from labledger.errors import InvalidInput
from labledger.server.deps import LabDep
from labledger.server.rendering import JSONBody, json_response
from labledger.server.routes.experiments import experiment_query
from labledger.server.schemas import ERRORS
from labledger.server.ui.views import compare

__all__ = ["MAX_COMPARE", "parse_ids", "router", "status_counts"]

router = APIRouter(tags=["views"])

#: the most experiments one comparison takes
MAX_COMPARE = 50


def parse_ids(raw: list[str] | None) -> list[str]:
    """Experiment ids from ``?ids=a,b`` or ``?ids=a&ids=b``, in order, without repeats."""
    ids: list[str] = []
    for item in raw or []:
        ids.extend(part.strip() for part in item.split(",") if part.strip())
    ids = list(dict.fromkeys(ids))
    if len(ids) < 2:
        raise InvalidInput(
            f"ids: give at least two experiment ids to compare (comma-separated), got {len(ids)}",
            field="ids",
        )
    if len(ids) > MAX_COMPARE:
        raise InvalidInput(
            f"ids: at most {MAX_COMPARE} experiments can be compared, got {len(ids)}", field="ids"
        )
    return ids


def load_runs(lab: Lab, ids: list[str]) -> dict[str, tuple[Experiment, list[Result]]]:
    """Each experiment of ``ids`` with its results (404 naming the first one that does not
    exist), read once for everything a page shows of them."""
    loaded = {}
    for i in ids:
        experiment = lab.experiments.get_experiment(i)
        loaded[i] = (experiment, lab.results.list_results(experiment.experiment_id))
    return loaded


def comparison(
    lab: Lab, ids: list[str], loaded: dict[str, tuple[Experiment, list[Result]]] | None = None
) -> dict[str, Any]:
    """The comparison of the experiments ``ids`` with their results (404 naming the first one
    that does not exist); ``loaded`` is :func:`load_runs` of them when already read."""
    runs = loaded if loaded is not None else load_runs(lab, ids)
    experiments = [runs[i][0] for i in ids]
    results = [{r.name: result_cell(r) for r in runs[i][1]} for i in ids]
    return compare(experiments, results)


def status_counts(experiments: ExperimentService, query: ExperimentQuery) -> dict[str, int]:
    """How many experiments matching ``query`` are in each status (every status, zeros too)."""
    wanted = query.statuses or list(ExperimentStatus)
    counts = {s.value: 0 for s in ExperimentStatus}
    for status in wanted:
        counts[status.value] = experiments.count_experiments(
            query.model_copy(update={"statuses": [status]})
        )
    return counts


@router.get("/experiments/compare", responses=ERRORS, summary="Compare experiments side by side")
def compare_experiments(
    lab: LabDep,
    ids: Annotated[
        list[str] | None,
        Query(description="Two or more experiment ids, comma-separated or repeated"),
    ] = None,
) -> JSONBody:
    """Every field of the experiments (state, times, parameters, results, metadata) side by side.

    ``fields`` lists ``{"key", "values", "differs"}`` in the experiments' order; ``differing``
    names the keys whose values are not all equal.
    """
    return json_response(comparison(lab, parse_ids(ids)))


@router.get(
    "/experiments/status-counts",
    responses=ERRORS,
    summary="Count experiments by status (same filters as GET /experiments)",
)
def count_by_status(
    lab: LabDep, query: Annotated[ExperimentQuery, Depends(experiment_query)]
) -> JSONBody:
    """``{"counts": {status: n, ...}, "total": n}`` for the experiments matching the filters."""
    counts = status_counts(lab.experiments, query)
    return json_response({"counts": counts, "total": sum(counts.values())})
