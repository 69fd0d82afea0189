"""What each client method sends and how its answer is read, shared by the sync and async clients.

A :class:`Call` is a request description plus a parser; the clients only execute calls. Keeping
the API surface here once means the two clients cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import (
    Event,
    Experiment,
    ExperimentalCampaign,
    ExperimentDesign,
    ExperimentRegistration,
)
from labledger.errors import InvalidInput

__all__ = ["Call", "DesignLike", "Upload", "calls", "status_value"]

T = TypeVar("T")

DesignLike = ExperimentDesign | Mapping[str, Any] | str | Path


@dataclass(frozen=True)
class Upload:
    """A file sent as the ``file`` part of a multipart body, with its BLAKE3 digest."""

    path: Path
    media_type: str
    digest: str
    #: a worker reporting: it must still hold the experiment (else 409 lease_lost)
    worker_id: str | None = None


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the parser of its answer (JSON, or text with ``text``)."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    #: POSTs that record something carry an Idempotency-Key, the same on every attempt, so a
    #: retry after a lost answer or a server restart cannot record twice
    idempotent: bool = False
    expect_body: bool = True
    #: the answer is text (a rendered report), not JSON
    text: bool = False
    #: makes a fresh request body for each attempt (streamed uploads)
    content: Callable[[], Iterator[bytes]] | None = None
    #: a file sent as multipart form data (opened afresh for each attempt)
    upload: Upload | None = None


def status_value(status: ExperimentStatus | str | None) -> str | None:
    """A status given as an enum member or a string, checked, as the wire string."""
    return None if status is None else ExperimentStatus(status).value


def _experiment(data: Any) -> Experiment:
    return Experiment.model_validate(data)


def _experiments(data: Any) -> list[Experiment]:
    return [Experiment.model_validate(d) for d in data]


def _campaign(data: Any) -> ExperimentalCampaign:
    return ExperimentalCampaign.model_validate(data)


def _campaigns(data: Any) -> list[ExperimentalCampaign]:
    return [ExperimentalCampaign.model_validate(d) for d in data]


def _events(data: Any) -> list[Event]:
    return [Event.model_validate(d) for d in data]


def _none(_: Any) -> None:
    return None


def _identity(data: Any) -> Any:
    return data


def _count(data: Any) -> int:
    return int(data["count"])


def to_design(design: DesignLike) -> ExperimentDesign:
    """An :class:`ExperimentDesign` from a model, a mapping or a YAML file path."""
    if isinstance(design, ExperimentDesign):
        return design
    if isinstance(design, str | Path):
        path = Path(design)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidInput(
                f"experiment_design: cannot read {path}: {exc.strerror}", field="experiment_design"
            ) from exc
        return ExperimentDesign.model_validate(loaded)
    return ExperimentDesign.model_validate(dict(design))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None and v != []}


class calls:  # noqa: N801 - a namespace of call builders
    """Builders of every :class:`Call` the clients make."""

    @staticmethod
    def start_experiment(
        experiment_design: DesignLike,
        run_name: str | None = None,
        run_description: str | None = None,
        *,
        campaign_id: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        status: str = "in_progress",
        priority: int = 0,
        not_before: datetime | None = None,
    ) -> Call[Experiment]:
        registration = ExperimentRegistration(
            experiment_design=to_design(experiment_design),
            run_name=run_name,
            run_description=run_description,
            campaign_id=campaign_id,
            parameters=dict(parameters or {}),
            metadata=dict(metadata or {}),
            status=status,  # validated by pydantic
            priority=priority,
            not_before=not_before,
        )
        return Call(
            "POST",
            "experiment",
            _experiment,
            json=registration.model_dump(mode="json", exclude_defaults=False),
            idempotent=True,
        )

    @staticmethod
    def get_experiment(experiment_id: str) -> Call[Experiment]:
        return Call("GET", f"experiment/{experiment_id}", _experiment)

    @staticmethod
    def get_experiments(
        number: int = 10,
        *,
        offset: int = 0,
        status: ExperimentStatus | str | Sequence[ExperimentStatus | str] | None = None,
        campaign_id: str | None = None,
        owner: str | None = None,
        text: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Call[list[Experiment]]:
        statuses = [status] if isinstance(status, str) else list(status or [])
        params = _clean(
            {
                "number": number,
                "offset": offset or None,
                "status": [str(ExperimentStatus(s).value) for s in statuses],
                "campaign_id": campaign_id,
                "owner": owner,
                "text": text,
                "since": _iso(since),
                "until": _iso(until),
            }
        )
        return Call("GET", "experiments", _experiments, params=params)

    @staticmethod
    def count_experiments(**filters: Any) -> Call[int]:
        base = calls.get_experiments(**filters)
        params = {k: v for k, v in (base.params or {}).items() if k not in {"number", "offset"}}
        return Call("GET", "experiments/count", _count, params=params)

    @staticmethod
    def action(experiment_id: str, action: str, *, status: str | None = None) -> Call[Experiment]:
        params = {"status": status} if status else None
        return Call("POST", f"experiment/{experiment_id}/{action}", _experiment, params=params)

    @staticmethod
    def update_experiment(experiment_id: str, **fields: Any) -> Call[Experiment]:
        body = {k: v for k, v in fields.items() if v is not None}
        return Call("PATCH", f"experiment/{experiment_id}", _experiment, json=body)

    @staticmethod
    def delete_experiment(experiment_id: str) -> Call[Experiment]:
        return Call("DELETE", f"experiment/{experiment_id}", _experiment)

    @staticmethod
    def restore_experiment(experiment_id: str) -> Call[Experiment]:
        return Call("POST", f"trash/{experiment_id}/restore", _experiment)

    @staticmethod
    def purge_experiment(experiment_id: str) -> Call[None]:
        return Call("DELETE", f"trash/{experiment_id}", _none, expect_body=False)

    @staticmethod
    def list_trash(number: int = 100, offset: int = 0) -> Call[list[Experiment]]:
        return Call("GET", "trash", _experiments, params={"number": number, "offset": offset})

    @staticmethod
    def experiment_events(experiment_id: str, after: int = 0) -> Call[list[Event]]:
        return Call("GET", f"experiment/{experiment_id}/events", _events, params={"after": after})

    @staticmethod
    def campaign_events(campaign_id: str, after: int = 0) -> Call[list[Event]]:
        return Call("GET", f"campaign/{campaign_id}/events", _events, params={"after": after})

    @staticmethod
    def register_campaign(
        campaign: ExperimentalCampaign | Mapping[str, Any],
    ) -> Call[ExperimentalCampaign]:
        model = (
            campaign
            if isinstance(campaign, ExperimentalCampaign)
            else ExperimentalCampaign.model_validate(dict(campaign))
        )
        return Call(
            "POST",
            "campaign",
            _campaign,
            json=model.model_dump(mode="json"),
            idempotent=True,
        )

    @staticmethod
    def get_campaign(
        campaign_id: str, experiments_number: int | None = None, experiments_offset: int = 0
    ) -> Call[ExperimentalCampaign]:
        params = _ids_page(experiments_number, experiments_offset)
        return Call("GET", f"campaign/{campaign_id}", _campaign, params=params)

    @staticmethod
    def get_campaigns(
        number: int = 100,
        offset: int = 0,
        experiments_number: int | None = None,
        experiments_offset: int = 0,
    ) -> Call[list[ExperimentalCampaign]]:
        params = {"number": number, "offset": offset}
        params.update(_ids_page(experiments_number, experiments_offset))
        return Call("GET", "campaigns", _campaigns, params=params)

    @staticmethod
    def missing_blobs(digests: Sequence[str]) -> Call[list[str]]:
        return Call(
            "POST", "blobs/missing", lambda d: list(d["missing"]), json={"digests": list(digests)}
        )

    @staticmethod
    def upload_blob(digest: str, path: Path) -> Call[Any]:
        def chunks() -> Iterator[bytes]:
            with path.open("rb") as fh:
                while block := fh.read(1 << 20):
                    yield block

        return Call("PUT", f"blobs/{digest}", _identity, content=chunks)

    @staticmethod
    def import_experiment(
        experiment: Experiment, events: Sequence[Event], recorder: Mapping[str, Any]
    ) -> Call[Experiment]:
        body = {
            "experiment": experiment.model_dump(mode="json", by_alias=True),
            "events": [e.model_dump(mode="json") for e in events],
            "recorder": dict(recorder),
        }
        return Call("PUT", f"experiment/{experiment.experiment_id}/import", _experiment, json=body)

    @staticmethod
    def health() -> Call[Any]:
        return Call("GET", "health", _identity)


def _ids_page(number: int | None, offset: int) -> dict[str, int]:
    """The query parameters of a page of a campaign's experiment ids (none: the default)."""
    params = {} if number is None else {"experiments_number": number}
    return params | ({"experiments_offset": offset} if offset else {})
