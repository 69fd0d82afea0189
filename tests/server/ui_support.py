"""Seed data for the UI tests, written through the public API (any httpx-like client)."""

from __future__ import annotations

from typing import Any

import httpx

#: an httpx client of the app: a live server's, or Starlette's TestClient (a subclass)
Client = httpx.Client


def start(api: Client, name: str = "Yield screen", **extra: Any) -> dict[str, Any]:
    """Register an experiment and return its JSON."""
    design = {"experiment_name": name, "parameters": extra.pop("design_parameters", {})}
    response = api.post("/experiment", json={"experiment_design": design, **extra})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def log_points(api: Client, experiment_id: str, points: list[dict[str, Any]]) -> None:
    """Post metric points to an experiment."""
    response = api.post(f"/experiment/{experiment_id}/metrics", json={"metrics": points})
    assert response.status_code == 200, response.text


def act(api: Client, experiment_id: str, action: str, **params: str) -> dict[str, Any]:
    response = api.post(f"/experiment/{experiment_id}/{action}", params=params)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def sweep(api: Client, temperatures: list[int]) -> tuple[str, list[str]]:
    """A campaign with one experiment per temperature, each with a ``yield`` result."""
    response = api.post("/campaign", json={"campaign_name": "Temperature sweep"})
    assert response.status_code == 200, response.text
    campaign_id: str = response.json()["campaign_id"]
    ids = []
    for temp in temperatures:
        exp = start(
            api,
            "Coupling",
            run_name=f"T={temp}",
            campaign_id=campaign_id,
            parameters={"temperature": temp, "solvent": "water"},
        )
        added = api.post(f"/experiment/{exp['_id']}/results", json={"values": {"yield": temp / 2}})
        assert added.status_code in (200, 201), added.text
        ids.append(exp["_id"])
    return campaign_id, ids
