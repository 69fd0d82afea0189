"""Reports: an experiment summary and a campaign report, as plain data (JSON-ready dicts).

:mod:`labledger.server.report_render` turns them into Markdown and HTML. A campaign report has
the counts by status, the success rate, durations, retries, a results table (each experiment's
parameters and results) and the timeline of status changes.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import datetime
from typing import Any

from labledger.core.ids import utcnow
from labledger.core.lifecycle import TERMINAL, ExperimentStatus
from labledger.core.models import (
    Event,
    Experiment,
    ExperimentQuery,
    campaign_to_wire,
    experiment_to_wire,
)
from labledger.core.records import Result, ResultKind
from labledger.core.store import Store

__all__ = ["ReportService", "duration_seconds", "result_cell"]

S = ExperimentStatus
JsonObject = dict[str, Any]
#: the timeline of a report keeps at most this many events (the newest are dropped)
TIMELINE_LIMIT = 5_000


def duration_seconds(exp: Experiment) -> float | None:
    """Seconds from start to end (None unless both are known)."""
    if exp.started_at is None or exp.ended_at is None:
        return None
    return (exp.ended_at - exp.started_at).total_seconds()


def result_cell(result: Result) -> Any:
    """A result as one table cell: the value, or the file's name, size and digest."""
    if result.kind is ResultKind.VALUE:
        return result.value
    return {
        "file": result.filename or result.name,
        "size": result.size,
        "digest": result.digest,
        "media_type": result.media_type,
    }


def _duration_stats(values: list[float]) -> JsonObject:
    if not values:
        return {
            "count": 0,
            "total_s": 0.0,
            "mean_s": None,
            "median_s": None,
            "min_s": None,
            "max_s": None,
        }
    return {
        "count": len(values),
        "total_s": round(sum(values), 3),
        "mean_s": round(statistics.fmean(values), 3),
        "median_s": round(statistics.median(values), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
    }


def _timeline_entry(ev: Event) -> JsonObject:
    return {
        "event_id": ev.event_id,
        "at": ev.at.isoformat(),
        "type": ev.type.value,
        "experiment_id": ev.experiment_id,
        "from_status": ev.from_status,
        "to_status": ev.to_status,
        "actor": ev.actor,
        "worker_id": ev.data.get("worker_id"),
    }


class ReportService:
    """Build reports from what the store holds."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    def experiment_summary(self, experiment_id: str) -> JsonObject:
        """One experiment: its record, duration, results, milestones, resources and timeline."""
        exp = self.store.experiments.get(experiment_id)
        events = self.store.events.find(experiment_id=experiment_id, limit=TIMELINE_LIMIT)
        return {
            "kind": "experiment_summary",
            "generated_at": self.clock().isoformat(),
            "experiment": experiment_to_wire(exp),
            "name": exp.name,
            "status": exp.status.value,
            "duration_s": duration_seconds(exp),
            "attempts": exp.attempts,
            "error": exp.metadata.get("error"),
            "results": {
                r.name: result_cell(r)
                for r in self.store.records.results(experiment_id=experiment_id)
            },
            "milestones": [
                m.model_dump(mode="json") for m in self.store.records.milestones(experiment_id)
            ],
            "resources": [
                u.model_dump(mode="json")
                for u in self.store.records.resource_uses(experiment_id=experiment_id)
            ],
            "timeline": [_timeline_entry(e) for e in events if e.to_status or e.from_status],
        }

    def results_table(self, campaign_id: str) -> JsonObject:
        """The campaign's results as one table: each experiment's parameters and results."""
        self.store.campaigns.get(campaign_id)
        table, _ = self._table(campaign_id)
        return {"campaign_id": campaign_id, **table}

    def _table(self, campaign_id: str) -> tuple[JsonObject, list[Experiment]]:
        experiments = self.store.experiments.find(ExperimentQuery(campaign_id=campaign_id, limit=0))
        experiments.sort(key=lambda e: (e.created_at, e.experiment_id))
        results: dict[str, dict[str, Result]] = {}
        for r in self.store.records.results(campaign_id=campaign_id):
            results.setdefault(r.experiment_id, {})[r.name] = r
        parameter_names = sorted({k for e in experiments for k in e.parameters})
        result_names = sorted({n for per in results.values() for n in per})
        rows = [
            {
                "experiment_id": e.experiment_id,
                "run_name": e.run_name,
                "status": e.status.value,
                "parameters": e.parameters,
                "results": {n: result_cell(r) for n, r in results.get(e.experiment_id, {}).items()},
                "started_at": e.started_at.isoformat() if e.started_at else None,
                "ended_at": e.ended_at.isoformat() if e.ended_at else None,
                "duration_s": duration_seconds(e),
                "attempts": e.attempts,
                "worker_id": e.worker_id,
            }
            for e in experiments
        ]
        table = {"parameter_names": parameter_names, "result_names": result_names, "rows": rows}
        return table, experiments

    def campaign_report(self, campaign_id: str) -> JsonObject:
        """The campaign: counts, success rate, durations, results table and timeline."""
        campaign = self.store.campaigns.get(campaign_id)
        table, experiments = self._table(campaign_id)
        counts = {s.value: 0 for s in S}
        for exp in experiments:
            counts[exp.status.value] += 1
        finished = sum(counts[s.value] for s in TERMINAL)
        completed = counts[S.COMPLETED.value]
        durations = [d for e in experiments if (d := duration_seconds(e)) is not None]
        events = self.store.events.find(campaign_id=campaign_id, limit=TIMELINE_LIMIT)
        total = len(experiments)
        return {
            "kind": "campaign_report",
            "generated_at": self.clock().isoformat(),
            "campaign": campaign_to_wire(campaign),
            "counts": {**counts, "total": total},
            "finished": finished,
            "progress": round(finished / total, 4) if total else None,
            "success_rate": round(completed / finished, 4) if finished else None,
            "durations": _duration_stats(durations),
            "retried": sum(1 for e in experiments if e.attempts > 1),
            **table,
            "timeline": [_timeline_entry(e) for e in events if e.to_status or e.from_status],
            "timeline_truncated": len(events) >= TIMELINE_LIMIT,
        }
