"""Service routes: health, settings and the (MADSci 0.6) manager definition."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

from fastapi import APIRouter, Query

from labledger.errors import LabledgerError
from labledger.server.deps import LabDep
from labledger.server.rendering import JSONBody, json_response
from labledger.server.schemas import DefinitionPublic, HealthPublic, SettingsPublic
from labledger.settings import Settings

__all__ = ["package_version", "router"]

router = APIRouter(tags=["service"])


def package_version() -> str:
    """The installed labledger version."""
    try:
        return version("labledger")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


@router.get(
    "/health",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "The database is unreachable"}},
)
def health(lab: LabDep) -> JSONBody:
    """Database connectivity and the number of experiments; 503 when the database is down."""
    body: dict[str, Any] = {"healthy": True, "version": package_version()}
    try:
        lab.ping()
        body["total_experiments"] = lab.experiments.count_experiments()
        body["db_connected"] = True
        body["description"] = "Experiment Manager is running"
        return json_response(body)
    except LabledgerError as exc:
        body.update(
            healthy=False,
            db_connected=False,
            description=f"Database connection failed: {exc.message}",
        )
        return json_response(body, status_code=503)


@router.get("/settings", response_model=SettingsPublic)
def get_settings(
    lab: LabDep,
    include_defaults: Annotated[bool, Query()] = True,
    include_schema: Annotated[bool, Query()] = False,
) -> JSONBody:
    """The settings in effect (secrets redacted), as MADSci answers it."""
    data = lab.settings.public()
    if not include_defaults:
        defaults = Settings.model_construct().model_dump(mode="json")
        data = {k: v for k, v in data.items() if defaults.get(k, object()) != v}
    body: dict[str, Any] = {"settings": data}
    if include_schema:
        body["schema"] = Settings.model_json_schema()
        body["schema_title"] = Settings.__name__
    return json_response(body)


@router.get("/definition", response_model=DefinitionPublic)
def definition(lab: LabDep) -> JSONBody:
    """MADSci 0.6's manager definition: name, description and manager id."""
    manager_id, settings = lab.manager_id, lab.settings
    return json_response(
        {
            "name": settings.manager_name,
            "description": settings.manager_description,
            "manager_id": manager_id,
            "experiment_manager_id": manager_id,
            "manager_type": "experiment_manager",
        }
    )
