"""The web UI's pages, under ``/ui`` (``/`` redirects there). Not part of the OpenAPI schema.

Each page is rendered from the same service calls as its JSON twin, which the page names (a
"JSON" link) and which its script polls for live updates. Errors render as HTML pages with the
status code and message the JSON API would give.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from labledger.core.lab import Lab
from labledger.core.labrecord import datapoint_columns
from labledger.core.lifecycle import ExperimentStatus, parse_status
from labledger.core.models import SORT_KEYS, Experiment, ExperimentQuery
from labledger.core.records import Result
from labledger.core.where import parse_field, parse_field_sort, parse_where
from labledger.errors import CampaignNotFound, InvalidInput, LabledgerError
from labledger.server.deps import LabDep
from labledger.server.routes.experiments import MAX_OFFSET
from labledger.server.routes.summaries import (
    MAX_COMPARE,
    comparison,
    load_runs,
    parse_ids,
    status_counts,
)
from labledger.server.ui import STATIC_DIR, charts
from labledger.server.ui.labview import lab_context, read_record_from_thread
from labledger.server.ui.metric_views import compare_charts, metric_charts, metrics_fragment
from labledger.server.ui.multivariate import (
    choose_axes,
    group_scatter,
    parallel_chart,
    scatter_of,
)
from labledger.server.ui.pages import campaign_context, experiment_context, queue_context
from labledger.server.ui.templating import templates
from labledger.server.ui.views import status_bars, status_spans, timeline_end

__all__ = ["MAX_COMPARE", "PAGE_SIZES", "api_params", "experiments_filters", "router"]

router = APIRouter(include_in_schema=False)
router.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")

#: rows per page the experiments table offers
PAGE_SIZES = (25, 50, 100, 200)
SVG = "image/svg+xml"


def _render(
    request: Request, template: str, build: Callable[[], dict[str, Any]], status_code: int = 200
) -> HTMLResponse:
    """Render ``template`` with what ``build`` returns; a domain error renders the error page."""
    try:
        context = build()
    except LabledgerError as exc:
        return templates.TemplateResponse(
            request,
            "error.html",
            {"code": exc.status_code, "message": exc.message, "error_code": exc.code},
            status_code=exc.status_code,
        )
    return templates.TemplateResponse(request, template, context, status_code=status_code)


@router.get("/")
def root() -> RedirectResponse:
    """The UI's home."""
    return RedirectResponse("/ui/experiments", status_code=307)


@router.get("/ui")
@router.get("/ui/")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/experiments", status_code=307)


# ---------------------------------------------------------------------------- experiments


def _day_or_time(raw: str, field: str, *, end_of_day: bool = False) -> datetime:
    """A date (``2026-01-31``, whole UTC day) or an ISO time with zone."""
    raw = raw.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start.replace(hour=23, minute=59, second=59) if end_of_day else start
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{field}: expected a date like 2026-01-31 or a time with zone, got {raw!r}",
            field=field,
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def experiments_filters(params: Any) -> tuple[ExperimentQuery, dict[str, Any]]:
    """The page's query string as an :class:`ExperimentQuery` and the form's values.

    Raises :class:`InvalidInput` naming the field for a bad value.
    """
    statuses: list[ExperimentStatus] = []
    for item in params.getlist("status"):
        statuses.extend(parse_status(s) for s in item.split(",") if s.strip())
    form: dict[str, Any] = {
        "status": [s.value for s in statuses],
        "campaign_id": params.get("campaign_id", "").strip(),
        "owner": params.get("owner", "").strip(),
        "text": params.get("text", "").strip(),
        "since": params.get("since", "").strip(),
        "until": params.get("until", "").strip(),
        "sort": params.get("sort", "-created_at").strip() or "-created_at",
        # conditions on results, metrics, parameters: repeated, or ';'-separated in one box
        "where": "; ".join(w.strip() for w in params.getlist("where") if w.strip()),
        # extra columns: results.<name>, metrics.<name>, parameters.<name>, comma-separated
        "columns": ", ".join(
            c.strip() for item in params.getlist("columns") for c in item.split(",") if c.strip()
        ),
    }
    if form["sort"].removeprefix("-") not in SORT_KEYS and parse_field_sort(form["sort"]) is None:
        raise InvalidInput(
            f"sort: expected one of {', '.join(SORT_KEYS)}, results.<name>, metrics.<name> or "
            "parameters.<name>",
            field="sort",
        )
    where = [parse_where(w) for w in form["where"].split(";") if w.strip()]
    columns = []
    for column in form["columns"].split(","):
        if column.strip():
            if parse_field(column.strip()) is None:
                raise InvalidInput(
                    f"columns: expected results.<name>, metrics.<name> or parameters.<name>, "
                    f"got {column.strip()!r}",
                    field="columns",
                )
            columns.append(column.strip())
    form["column_list"] = columns[:20]
    for key in ("campaign_id", "owner"):
        if len(form[key]) > 26:
            raise InvalidInput(f"{key}: expected an id of at most 26 characters", field=key)
    try:
        size = int(params.get("size", 50))
        page = int(params.get("page", 1))
    except ValueError:
        raise InvalidInput("page: expected a whole number", field="page") from None
    if size not in PAGE_SIZES:
        raise InvalidInput(f"size: expected one of {PAGE_SIZES}", field="size")
    page = max(page, 1)
    if (page - 1) * size > MAX_OFFSET:
        raise InvalidInput(f"page: expected at most {MAX_OFFSET // size + 1}", field="page")
    form.update(size=size, page=page)
    since = _day_or_time(form["since"], "since") if form["since"] else None
    until = _day_or_time(form["until"], "until", end_of_day=True) if form["until"] else None
    if since and until and until <= since:
        raise InvalidInput("until: must be later than since", field="until")
    query = ExperimentQuery(
        statuses=statuses,
        campaign_id=form["campaign_id"] or None,
        owner=form["owner"] or None,
        text=form["text"] or None,
        since=since,
        until=until,
        limit=size,
        offset=(page - 1) * size,
        sort=form["sort"],
        where=where,
    )
    return query, form


def api_params(query: ExperimentQuery) -> list[tuple[str, str]]:
    """The JSON API's query string for the same filters and page."""
    out: list[tuple[str, str]] = [("number", str(query.limit)), ("offset", str(query.offset))]
    if query.statuses:
        out.append(("status", ",".join(s.value for s in query.statuses)))
    for key in ("campaign_id", "owner", "text"):
        if value := getattr(query, key):
            out.append((key, value))
    for key in ("since", "until"):
        if value := getattr(query, key):
            out.append((key, value.isoformat().replace("+00:00", "Z")))
    if query.sort != "-created_at":
        out.append(("sort", query.sort))
    out += [("where", f"{f.namespace}.{f.name}{f.op}{f.text}") for f in query.where]
    return out


def _column_values(
    lab: Lab, experiments: list[Experiment], columns: list[str]
) -> dict[str, dict[str, Any]]:
    """experiment id -> column -> value, for the chosen extra columns of the table."""
    ids = [e.experiment_id for e in experiments]
    wanted = [(c, parse_field(c)) for c in columns]
    last = lab.metrics.last_values(ids) if any(f and f[0] == "metrics" for _, f in wanted) else {}
    results: dict[str, dict[str, Any]] = {}
    if any(f and f[0] == "results" for _, f in wanted):
        for exp_id in ids:
            results[exp_id] = {r.name: r.value for r in lab.results.list_results(exp_id)}
    out: dict[str, dict[str, Any]] = {}
    for exp in experiments:
        row: dict[str, Any] = {}
        for column, field in wanted:
            if field is None:
                continue
            namespace, name = field
            source = {
                "parameters": exp.parameters,
                "metrics": last.get(exp.experiment_id, {}),
                "results": results.get(exp.experiment_id, {}),
            }[namespace]
            row[column] = source.get(name)
        out[exp.experiment_id] = row
    return out


def _experiments_page(lab: Lab, params: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "statuses": [s.value for s in ExperimentStatus],
        "sort_keys": SORT_KEYS,
        "page_sizes": PAGE_SIZES,
    }
    try:
        query, form = experiments_filters(params)
    except InvalidInput as exc:
        empty = {
            "status": [],
            "sort": "-created_at",
            "size": 50,
            "page": 1,
            "where": params.get("where", ""),
            "columns": params.get("columns", ""),
            "column_list": [],
        }
        return {**context, "error": exc.message, "form": empty, "experiments": [], "total": 0}
    total = lab.experiments.count_experiments(query)
    pages = max((total + query.limit - 1) // query.limit, 1)
    experiments = lab.experiments.list_experiments(query)
    api = api_params(query)
    campaign_names: dict[str, str] = {}
    for campaign_id in {e.campaign_id for e in experiments if e.campaign_id}:
        with contextlib.suppress(CampaignNotFound):  # a dangling id shows as the id
            campaign_names[campaign_id] = lab.experiments.get_campaign(campaign_id).campaign_name
    no_page = [(k, v) for k, v in api if k not in ("number", "offset")]
    form_params = [
        (k, v)
        for k, v in form.items()
        if k not in ("status", "page", "column_list") and v not in ("", None)
    ] + [("status", s) for s in form["status"]]
    return {
        **context,
        "form": form,
        "experiments": experiments,
        "column_values": _column_values(lab, experiments, form["column_list"]),
        "campaign_names": campaign_names,
        "total": total,
        "pages": pages,
        "json_url": "/experiments?" + urlencode(api),
        "count_url": "/experiments/count" + (f"?{urlencode(no_page)}" if no_page else ""),
        "page_url": lambda p: "/ui/experiments?" + urlencode([*form_params, ("page", str(p))]),
        "sort_url": lambda key: (
            "/ui/experiments?"
            + urlencode(
                [(k, v) for k, v in form_params if k != "sort"]
                + [("sort", f"-{key}" if form["sort"] == key else key)]
            )
        ),
    }


@router.get("/ui/experiments", name="ui-experiments")
def experiments_page(request: Request, lab: LabDep) -> HTMLResponse:
    """The experiments table: filters (also on results, metrics and parameters), sorting,
    paging, chosen parameter, result and metric columns, live status badges."""
    context = _experiments_page(lab, request.query_params)
    return _render(
        request, "experiments.html", lambda: context, 422 if context.get("error") else 200
    )


@router.get("/ui/experiments/{experiment_id}", name="ui-experiment")
def experiment_page(experiment_id: str, request: Request, lab: LabDep) -> HTMLResponse:
    """One experiment: design, parameters, timeline, progress, metrics, results, recorder data,
    controls, and its workflows, data points, resources and events in the MADSci lab."""

    def build() -> dict[str, Any]:
        context = experiment_context(lab, experiment_id)
        record = read_record_from_thread(lab.gateway, [experiment_id])
        exp = context["exp"]
        charts = metric_charts(lab.metrics, exp.experiment_id, _run_title(exp))
        return {
            **context,
            "lab": lab_context(record, experiment_id),
            "exp_page": True,
            "metrics_html": metrics_fragment(charts),
            "metrics_url": f"{context['json_url']}/metrics",
        }

    return _render(request, "experiment.html", build)


@router.get("/ui/experiments/{experiment_id}/metrics.html")
def experiment_metrics(experiment_id: str, lab: LabDep) -> HTMLResponse:
    """The metric charts of an experiment (swapped into its page while it runs)."""
    exp = lab.experiments.get_experiment(experiment_id)
    charts = metric_charts(lab.metrics, exp.experiment_id, _run_title(exp))
    return HTMLResponse(metrics_fragment(charts))


def _run_title(exp: Experiment) -> str:
    return exp.run_name or exp.name or exp.experiment_id


@router.get("/ui/experiments/{experiment_id}/timeline.svg")
def experiment_timeline(experiment_id: str, lab: LabDep) -> Response:
    """The status timeline chart of an experiment (from its event log)."""
    exp = lab.experiments.get_experiment(experiment_id)
    events = lab.experiments.list_events(experiment_id=exp.experiment_id, limit=10_000)
    svg = charts.timeline_chart(
        f"Status timeline of {exp.run_name or exp.name}",
        status_spans(events),
        now=timeline_end(exp, lab.experiments.clock()),
    )
    return Response(svg, media_type=SVG)


# ---------------------------------------------------------------------------- campaigns


@router.get("/ui/campaigns", name="ui-campaigns")
def campaigns_page(request: Request, lab: LabDep) -> HTMLResponse:
    """The campaigns, newest first."""

    def build() -> dict[str, Any]:
        campaigns = lab.experiments.list_campaigns(200, 0)
        return {"campaigns": campaigns, "json_url": "/campaigns?number=200"}

    return _render(request, "campaigns.html", build)


@router.get("/ui/campaigns/{campaign_id}", name="ui-campaign")
def campaign_page(
    campaign_id: str,
    request: Request,
    lab: LabDep,
) -> HTMLResponse:
    """A campaign: progress, status breakdown, results against a chosen parameter, parallel
    coordinates and a grouped scatter of its runs, report."""
    params = request.query_params

    def build() -> dict[str, Any]:
        ids = list(lab.experiments.get_campaign(campaign_id).experiment_ids or [])
        record = read_record_from_thread(lab.gateway, ids)
        columns = (
            datapoint_columns(record["datapoints"].items, record["workflows"].items)
            if record
            else None
        )
        context = campaign_context(
            lab.reports, campaign_id, params.get("x"), params.get("y"), columns
        )
        runs = [(r["id"], r["run_name"] or r["id"]) for r in context["rows"]]
        many = _many_runs(lab, runs, params, CAMPAIGN_AXES) if len(runs) > 1 else {}
        return {**context, **many, "lab": lab_context(record, None)}

    return _render(request, "campaign.html", build)


@router.get("/ui/campaigns/{campaign_id}/status.svg")
def campaign_status_chart(campaign_id: str, lab: LabDep) -> Response:
    """Bar chart: the campaign's experiments by status."""
    campaign = lab.experiments.get_campaign(campaign_id)
    counts = status_counts(lab.experiments, ExperimentQuery(campaign_id=campaign.campaign_id))
    svg = charts.bar_chart(
        f"Experiments of {campaign.campaign_name} by status",
        status_bars(counts),
        x_label="status",
        y_label="experiments",
    )
    return Response(svg, media_type=SVG)


@router.get("/ui/campaigns/{campaign_id}/results.svg")
def campaign_results_chart(
    campaign_id: str, lab: LabDep, x: str | None = None, y: str | None = None
) -> Response:
    """Scatter/line chart: a result of each experiment against a parameter."""
    context = campaign_context(lab.reports, campaign_id, x, y)
    return Response(context["results_svg"], media_type=SVG)


# ---------------------------------------------------------------------------- compare, queue


def _run_fields(
    lab: Lab, ids: list[str], loaded: dict[str, tuple[Experiment, list[Result]]] | None = None
) -> list[dict[str, Any]]:
    """Each run's parameters, results and metric last values under dotted field names
    (``loaded``: the runs with their results, when the page has read them already)."""
    last = lab.metrics.last_values(ids)
    runs = loaded if loaded is not None else load_runs(lab, ids)
    rows = []
    for exp_id in ids:
        exp, results = runs[exp_id]
        row: dict[str, Any] = {f"parameters.{k}": v for k, v in sorted(exp.parameters.items())}
        for result in results:
            if result.value is not None:
                row[f"results.{result.name}"] = result.value
        row.update({f"metrics.{k}": v for k, v in sorted(last.get(exp_id, {}).items())})
        rows.append(row)
    return rows


COMPARE_AXES = {"x": "x", "y": "y", "color": "color"}
CAMPAIGN_AXES = {"x": "scatter_x", "y": "scatter_y", "color": "color"}


def _many_runs(
    lab: Lab,
    runs: list[tuple[str, str]],
    params: Any,
    names: dict[str, str] = COMPARE_AXES,
    loaded: dict[str, tuple[Experiment, list[Result]]] | None = None,
) -> dict[str, Any]:
    """The parallel coordinates and the scatter of many runs (compare and campaign pages);
    ``names`` are the query parameters choosing the scatter's x, y and colour."""
    rows = _run_fields(lab, [run_id for run_id, _ in runs], loaded)
    fields = list(dict.fromkeys(k for row in rows for k in row))
    chosen = {k: (params.get(names[k]) or None) for k in ("x", "y", "color")}
    for key, value in chosen.items():
        if value is not None and value not in fields:
            expected = ", ".join(fields) or "no fields"
            field = names[key]
            raise InvalidInput(f"{field}: expected one of {expected}, got {value!r}", field=field)
    x, y, color = choose_axes(rows, chosen["x"], chosen["y"], chosen["color"])
    differing = [
        k for k in fields if k.startswith("parameters.") and len({repr(r.get(k)) for r in rows}) > 1
    ]
    outcomes = [
        k
        for k in fields
        if k.startswith(("metrics.", "results."))
        and not any(isinstance(r.get(k), dict | list) for r in rows)
    ]
    axes = (differing + outcomes)[:12]
    labelled = [(label, row) for (_, label), row in zip(runs, rows, strict=True)]
    scatter = ""
    if x and y:
        named = [(i, name, r) for (i, name), r in zip(runs, rows, strict=True)]
        dots = scatter_of(named, x, y, color)
        scatter = group_scatter(f"{y} against {x}", dots, x_label=x, y_label=y, group_label=color)
    return {
        "fields_all": fields,
        "axes": {"x": x, "y": y, "color": color},
        "parallel_svg": parallel_chart(
            f"{len(runs)} runs across {len(axes)} fields", axes, labelled
        ),
        "scatter_svg": scatter,
        "differing_params": differing,
        "axis_names": names,
    }


@router.get("/ui/compare", name="ui-compare")
def compare_page(request: Request, lab: LabDep) -> HTMLResponse:
    """Two or more experiments side by side, differences highlighted, metric curves overlaid."""
    raw = request.query_params.getlist("ids")

    params = request.query_params

    def build() -> dict[str, Any]:
        ids = parse_ids(raw)
        loaded = load_runs(lab, ids)
        data = comparison(lab, ids, loaded)
        runs = [
            (
                e["_id"],
                e.get("run_name")
                or (e.get("experiment_design") or {}).get("experiment_name")
                or e["_id"],
            )
            for e in data["experiments"]
        ]
        return {
            **data,
            **_many_runs(lab, runs, params, loaded=loaded),
            "metric_charts": compare_charts(lab.metrics, runs),
            "json_url": "/experiments/compare?ids=" + ",".join(ids),
        }

    return _render(request, "compare.html", build)


@router.get("/ui/queue", name="ui-queue")
def queue_page(request: Request, lab: LabDep) -> HTMLResponse:
    """What is queued and running, on which worker, since when."""
    return _render(request, "queue.html", lambda: queue_context(lab))
