"""Run MADSci workflows owned by an experiment: submit to the Workcell Manager, wait, collect.

Used by :meth:`labledger.client.application.ExperimentApplication.run_workflow`. A workflow is
submitted with ``ownership_info.experiment_id`` (and ``campaign_id``) of the running experiment,
so it shows up in the experiment's lab record (``GET /experiment/{id}/workflows``) like one
submitted by MADSci's own experiment applications. Its data points are read back through the
labledger server (``GET /experiment/{id}/datapoints``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from labledger.client.sync import ExperimentClient
from labledger.errors import InvalidInput, LabUnavailable

__all__ = ["Workcell", "WorkflowDefinitionLike", "WorkflowRun", "load_definition"]

#: a workflow definition: a mapping (``name``, ``steps``), or a YAML/JSON file
WorkflowDefinitionLike = Mapping[str, Any] | str | Path

TERMINAL_WORDS = ("completed", "failed", "cancelled")


@dataclass
class WorkflowRun:
    """A workflow run by an experiment: the workcell's last view of it, and its data points."""

    workflow: dict[str, Any]
    datapoints: list[dict[str, Any]] = field(default_factory=list)

    @property
    def workflow_id(self) -> str:
        return str(self.workflow["workflow_id"])

    @property
    def status(self) -> str:
        """``completed``, ``failed``, ``cancelled``, ``paused``, ``running`` or ``queued``."""
        status = self.workflow.get("status") or {}
        for word in (*TERMINAL_WORDS, "paused", "running"):
            if status.get(word):
                return word
        return "queued"

    def values(self) -> list[Any]:
        """The values of its JSON data points, oldest first."""
        return [p.get("value") for p in self.datapoints if p.get("data_type") == "json"]


def load_definition(definition: WorkflowDefinitionLike) -> dict[str, Any]:
    """A workflow definition as a dict (a file is read as YAML, which includes JSON)."""
    if isinstance(definition, Mapping):
        loaded: Any = dict(definition)
    else:
        path = Path(definition)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidInput(
                f"workflow definition: cannot read {path}: {exc.strerror}", field="definition"
            ) from exc
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{path}: not valid YAML: {exc}", field="definition") from exc
    if not isinstance(loaded, dict) or not isinstance(loaded.get("steps"), list):
        raise InvalidInput(
            "workflow definition: expected a mapping with name and a list of steps",
            field="definition",
        )
    loaded.setdefault("name", "workflow")
    return loaded


class Workcell:
    """A MADSci Workcell Manager, as an experiment program uses it."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout)

    @classmethod
    def find(cls, client: ExperimentClient, url: str | None = None) -> Workcell:
        """The workcell at ``url``, else ``WORKCELL_SERVER_URL`` (MADSci's variable), else the
        one the labledger server is configured with."""
        found = url or os.environ.get("WORKCELL_SERVER_URL")
        if not found:
            response = client.http.get("settings")
            if response.is_success:
                found = (response.json() or {}).get("workcell_server_url")
        if not found:
            raise InvalidInput(
                "no Workcell Manager: pass workcell_url, set WORKCELL_SERVER_URL, or configure "
                "EXPERIMENT_WORKCELL_SERVER_URL on the server",
                field="workcell_url",
            )
        return cls(str(found))

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, f"{self.url}{path}", **kwargs)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise LabUnavailable(
                f"workcell at {self.url}: {type(exc).__name__}: {exc}"[:500], manager="workcell"
            ) from exc

    def submit(
        self,
        definition: WorkflowDefinitionLike,
        *,
        experiment_id: str,
        campaign_id: str | None = None,
        inputs: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Submit a workflow owned by the experiment; the workflow as the workcell answers it."""
        definition_id = self._call("POST", "/workflow_definition", json=load_definition(definition))
        ownership = {"experiment_id": experiment_id}
        if campaign_id:
            ownership["campaign_id"] = campaign_id
        form = {
            "workflow_definition_id": str(definition_id),
            "ownership_info": json.dumps(ownership),
        }
        if inputs:
            form["json_inputs"] = json.dumps(dict(inputs))
        workflow = self._call("POST", "/workflow", data=form)
        if not isinstance(workflow, dict) or "workflow_id" not in workflow:
            raise LabUnavailable("the workcell did not answer a workflow", manager="workcell")
        return workflow

    def get(self, workflow_id: str) -> dict[str, Any]:
        workflow = self._call("GET", f"/workflow/{workflow_id}")
        if not isinstance(workflow, dict):
            raise LabUnavailable("the workcell did not answer a workflow", manager="workcell")
        return workflow

    def cancel(self, workflow_id: str) -> None:
        self._call("POST", f"/workflow/{workflow_id}/cancel")

    def wait(
        self,
        workflow_id: str,
        *,
        checkpoint: Callable[[], None],
        poll_interval: float = 0.5,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Until the workflow ends. ``checkpoint`` runs between polls: it waits while the
        experiment is paused (the server pauses the workflow meanwhile) and raises when it is
        cancelled, in which case the workflow is cancelled too."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            workflow = self.get(workflow_id)
            if WorkflowRun(workflow).status in TERMINAL_WORDS:
                return workflow
            try:
                checkpoint()
            except BaseException:
                # when the workcell is down, the server carries the cancel once it is back
                with contextlib.suppress(LabUnavailable):
                    self.cancel(workflow_id)
                raise
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"workflow {workflow_id} did not end within {timeout} s")
            time.sleep(poll_interval)


def workflow_datapoints(
    client: ExperimentClient, experiment_id: str, workflow_id: str, *, attempts: int = 10
) -> list[dict[str, Any]]:
    """The data points the workflow's steps produced, read through the labledger server.

    A Data Manager slow to answer (the server's short timeout) is asked again, a few times."""
    state: str | None = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(0.5)
        response = client.http.get(f"experiment/{experiment_id}/datapoints")
        state = response.headers.get("X-Lab-State") or str(response.status_code)
        if response.is_success and state == "ok":
            return [
                p
                for p in response.json()
                if isinstance(p, dict)
                and (p.get("ownership_info") or {}).get("workflow_id") == workflow_id
            ]
    raise LabUnavailable(
        f"the data points of experiment {experiment_id} cannot be read now ({state})",
        manager="data",
    )
