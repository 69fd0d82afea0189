"""Calls of the campaign, queue, result, milestone, resource, event and report routes.

Shared by the sync and async clients, like :mod:`labledger.client.calls`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from labledger.client.calls import Call, Upload
from labledger.core.models import Event, Experiment, ExperimentalCampaign
from labledger.core.records import ErrorInfo, Milestone, ResourceUse, ResourceUseCreate, Result
from labledger.core.specs import CampaignSpec
from labledger.errors import ConfigError

__all__ = ["CampaignSpecLike", "lab_calls", "load_campaign_spec"]

CampaignSpecLike = CampaignSpec | Mapping[str, Any] | str | Path


def load_campaign_spec(spec: CampaignSpecLike) -> CampaignSpec:
    """A :class:`CampaignSpec` from a model, a mapping or a ``*.campaign.yaml`` path."""
    if isinstance(spec, CampaignSpec):
        return spec
    if isinstance(spec, str | Path):
        path = Path(spec)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read it: {exc.strerror}", path=str(path)) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}", path=str(path)) from exc
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{path}: expected a mapping with campaign_name, experiment_design, sweep ...",
                path=str(path),
            )
        return CampaignSpec.model_validate(loaded)
    return CampaignSpec.model_validate(dict(spec))


def _experiment_or_none(data: Any) -> Experiment | None:
    return None if data is None else Experiment.model_validate(data)


def _experiment(data: Any) -> Experiment:
    return Experiment.model_validate(data)


def _campaign(data: Any) -> ExperimentalCampaign:
    return ExperimentalCampaign.model_validate(data)


def _results(data: Any) -> list[Result]:
    return [Result.model_validate(d) for d in data]


def _identity(data: Any) -> Any:
    return data


class lab_calls:  # noqa: N801 - a namespace of call builders
    """Builders of the campaign/queue/result calls."""

    @staticmethod
    def create_campaign(spec: CampaignSpecLike) -> Call[ExperimentalCampaign]:
        body = load_campaign_spec(spec).model_dump(mode="json", exclude_unset=True)
        return Call("POST", "campaigns", _campaign, json=body, idempotent=True)

    @staticmethod
    def campaign_action(campaign_id: str, action: str) -> Call[ExperimentalCampaign]:
        return Call("POST", f"campaign/{campaign_id}/{action}", _campaign)

    @staticmethod
    def campaign_progress(campaign_id: str) -> Call[dict[str, Any]]:
        return Call("GET", f"campaign/{campaign_id}/progress", _identity)

    @staticmethod
    def campaign_results(campaign_id: str) -> Call[dict[str, Any]]:
        return Call("GET", f"campaign/{campaign_id}/results", _identity)

    @staticmethod
    def claim(
        worker_id: str, campaign_id: str | None = None, lease_seconds: float | None = None
    ) -> Call[Experiment | None]:
        body = {"worker_id": worker_id, "campaign_id": campaign_id, "lease_seconds": lease_seconds}
        return Call("POST", "queue/claim", _experiment_or_none, json=body)

    @staticmethod
    def heartbeat(
        experiment_id: str, worker_id: str, lease_seconds: float | None = None
    ) -> Call[Experiment]:
        body = {"worker_id": worker_id, "lease_seconds": lease_seconds}
        return Call("POST", f"experiment/{experiment_id}/heartbeat", _experiment, json=body)

    @staticmethod
    def finish(
        experiment_id: str,
        status: str = "completed",
        *,
        worker_id: str | None = None,
        error: ErrorInfo | Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> Call[Experiment]:
        err = ErrorInfo.model_validate(error) if error is not None else None
        body = {
            "status": status,
            "worker_id": worker_id,
            "error": err.model_dump(mode="json") if err else None,
            "reason": reason,
        }
        return Call(
            "POST", f"experiment/{experiment_id}/finish", _experiment, json=body, idempotent=True
        )

    @staticmethod
    def release(experiment_id: str, worker_id: str, reason: str | None = None) -> Call[Experiment]:
        body = {"worker_id": worker_id, "reason": reason}
        return Call(
            "POST", f"experiment/{experiment_id}/release", _experiment, json=body, idempotent=True
        )

    @staticmethod
    def get_queue(campaign_id: str | None = None) -> Call[dict[str, Any]]:
        params = {"campaign_id": campaign_id} if campaign_id else None
        return Call("GET", "queue", _identity, params=params)

    @staticmethod
    def add_results(
        experiment_id: str, values: Mapping[str, Any], worker_id: str | None = None
    ) -> Call[list[Result]]:
        body: dict[str, Any] = {"values": dict(values)}
        if worker_id is not None:
            body["worker_id"] = worker_id
        return Call(
            "POST",
            f"experiment/{experiment_id}/results",
            _results,
            json=body,
            idempotent=True,
        )

    @staticmethod
    def get_results(experiment_id: str) -> Call[list[Result]]:
        return Call("GET", f"experiment/{experiment_id}/results", _results)

    @staticmethod
    def get_result(experiment_id: str, name: str) -> Call[Result]:
        return Call("GET", f"experiment/{experiment_id}/results/{name}", Result.model_validate)

    @staticmethod
    def upload_file(experiment_id: str, name: str, upload: Upload) -> Call[Result]:
        return Call(
            "POST",
            f"experiment/{experiment_id}/files/{name}",
            Result.model_validate,
            upload=upload,
            idempotent=True,
        )

    @staticmethod
    def set_progress(
        experiment_id: str, progress: float, message: str | None = None
    ) -> Call[Experiment]:
        body = {"progress": progress, "message": message}
        return Call(
            "POST", f"experiment/{experiment_id}/progress", _experiment, json=body, idempotent=True
        )

    @staticmethod
    def add_milestone(
        experiment_id: str,
        name: str,
        data: Mapping[str, Any] | None = None,
        progress: float | None = None,
        worker_id: str | None = None,
    ) -> Call[Milestone]:
        body = {"name": name, "data": dict(data or {}), "progress": progress}
        if worker_id is not None:
            body["worker_id"] = worker_id
        return Call(
            "POST",
            f"experiment/{experiment_id}/milestones",
            Milestone.model_validate,
            json=body,
            idempotent=True,
        )

    @staticmethod
    def get_milestones(experiment_id: str) -> Call[list[Milestone]]:
        return Call(
            "GET",
            f"experiment/{experiment_id}/milestones",
            lambda data: [Milestone.model_validate(d) for d in data],
        )

    @staticmethod
    def add_resources(
        experiment_id: str, uses: Sequence[ResourceUseCreate | Mapping[str, Any]]
    ) -> Call[list[ResourceUse]]:
        body = [ResourceUseCreate.model_validate(u).model_dump(mode="json") for u in uses]
        return Call(
            "POST",
            f"experiment/{experiment_id}/resources",
            lambda data: [ResourceUse.model_validate(d) for d in data],
            json=body,
        )

    @staticmethod
    def experiments_using(resource_id: str) -> Call[list[str]]:
        return Call(
            "GET", f"resources/{resource_id}/experiments", lambda d: list(d["experiment_ids"])
        )

    @staticmethod
    def get_events(
        after: int = 0,
        *,
        experiment_id: str | None = None,
        campaign_id: str | None = None,
        limit: int = 1000,
    ) -> Call[list[Event]]:
        params: dict[str, Any] = {"after": after, "limit": limit}
        if experiment_id:
            params["experiment_id"] = experiment_id
        if campaign_id:
            params["campaign_id"] = campaign_id
        return Call("GET", "events", lambda d: [Event.model_validate(e) for e in d], params=params)

    @staticmethod
    def report(kind: str, entity_id: str, fmt: str = "json") -> Call[Any]:
        if fmt not in {"json", "md", "html"}:
            raise ValueError(f"format: expected json, md or html, got {fmt!r}")
        return Call(
            "GET",
            f"{kind}/{entity_id}/report",
            _identity,
            params={"format": fmt},
            text=fmt != "json",
        )
