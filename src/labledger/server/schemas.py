"""Response schemas that document the API (the JSON itself is built in ``rendering``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "ERRORS",
    "CountPublic",
    "DefinitionPublic",
    "ErrorBody",
    "ErrorDetail",
    "EventPublic",
    "HealthPublic",
    "SettingsPublic",
    "inline_schema",
]


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of ``model`` with its nested models written in place.

    For a body documented by hand (``openapi_extra``): pydantic's own schema points into a local
    ``$defs`` that an OpenAPI document does not resolve, and ReDoc refuses such a reference.
    """
    schema = model.model_json_schema()
    defs: dict[str, Any] = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


class ErrorDetail(BaseModel):
    """The structured part of an error: a code, a message and the fields it concerns."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class ErrorBody(BaseModel):
    """The one JSON error body (``detail`` as in MADSci, plus ``error``)."""

    detail: str
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such experiment or campaign"},
    409: {"model": ErrorBody, "description": "Refused: the current state does not allow it"},
    422: {"model": ErrorBody, "description": "A field has a bad value (named in the message)"},
    503: {"model": ErrorBody, "description": "The database is unreachable"},
}


class CountPublic(BaseModel):
    """A count of matching records."""

    count: int


class EventPublic(BaseModel):
    """One entry of the event log."""

    event_id: int
    experiment_id: str | None
    campaign_id: str | None
    type: str
    actor: str | None
    from_status: str | None
    to_status: str | None
    at: datetime
    data: dict[str, Any]


class HealthPublic(BaseModel):
    """MADSci's ExperimentManagerHealth."""

    model_config = ConfigDict(extra="allow")

    healthy: bool
    description: str | None = None
    version: str | None = None
    db_connected: bool | None = None
    total_experiments: int | None = None


class DefinitionPublic(BaseModel):
    """MADSci 0.6's manager definition."""

    name: str
    description: str | None
    manager_id: str
    experiment_manager_id: str
    manager_type: str


class SettingsPublic(BaseModel):
    """MADSci's settings answer."""

    model_config = ConfigDict(extra="allow")

    settings: dict[str, Any]
