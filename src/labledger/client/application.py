"""``ExperimentApplication``: subclass it, write ``run_experiment``, call ``start()``.

::

    class Titration(ExperimentApplication):
        experiment_design = {"experiment_name": "titration", "parameters": {"volume_ml": 10}}

        def run_experiment(self, volume_ml: float, ph: float = 7.0) -> dict[str, float]:
            for step in range(10):
                self.checkpoint("dosed", {"step": step}, progress=step / 10)  # pause/cancel here
                ...
            return {"yield": 0.93}  # recorded as results

    Titration("http://127.0.0.1:8002").start(ph=6.5)   # one run, registered and tracked
    Titration("http://127.0.0.1:8002").run_worker()    # or drain the queue of its campaign

``start()`` registers the run, calls ``run_experiment(**parameters)``, records a returned
mapping as results, and ends the run ``completed``. A raised exception ends it ``failed`` with
the exception's type, message and traceback (MADSci 0.8.1 records it as completed), then
re-raises. Between steps, :meth:`checkpoint` waits while the run is paused and raises
:class:`ExperimentStopped` once it is cancelled. ``run_worker()`` claims queued experiments one
after another and runs each the same way, holding it with a heartbeat.

A server that cannot be reached is waited for: ``patience`` seconds for a ``start()`` run, the
lease for a worker's; records (milestones, results, files, the outcome) are retried with the same
Idempotency-Key, so none is written twice. A run the server stays away from ends with
``ServerUnreachable`` and is not recorded failed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from labledger.client.calls import DesignLike, to_design
from labledger.client.sync import ExperimentClient
from labledger.client.wire import RetryPolicy
from labledger.client.worker import (
    Control,
    ExperimentStopped,
    Worker,
    WorkerStats,
    default_worker_id,
    error_info,
)
from labledger.client.workflows import (
    Workcell,
    WorkflowDefinitionLike,
    WorkflowRun,
    workflow_datapoints,
)
from labledger.core.models import Experiment, ExperimentDesign
from labledger.core.records import Milestone, Result
from labledger.errors import InvalidInput, ServerUnreachable

__all__ = ["ExperimentApplication", "ExperimentStopped"]

log = logging.getLogger("labledger.application")


class ExperimentApplication:
    """Base class of an experiment program; see the module docstring."""

    #: the design of the runs (a mapping, an ExperimentDesign or a YAML file path)
    experiment_design: ClassVar[DesignLike | None] = None

    def __init__(
        self,
        server_url: str | None = None,
        *,
        token: str | None = None,
        poll_interval: float = 1.0,
        patience: float = 60.0,
        client: ExperimentClient | None = None,
        workcell_url: str | None = None,
    ) -> None:
        self.server_url = server_url
        self.workcell_url = workcell_url
        self.token = token
        self.poll_interval = poll_interval
        self.patience = patience
        self.client = client or ExperimentClient(
            server_url, token=token, retry=RetryPolicy(patience=patience)
        )
        self._control: Control | None = None

    # ------------------------------------------------------------------ to override

    def run_experiment(self, *args: Any, **parameters: Any) -> Mapping[str, Any] | None:
        """The experiment itself. Gets the run's parameters as keyword arguments; may return
        results. A subclass names the parameters it takes (``volume_ml: float, ...``)."""
        raise NotImplementedError(
            f"{type(self).__name__} must define run_experiment(self, **parameters)"
        )

    # ------------------------------------------------------------------ while running

    @property
    def experiment(self) -> Experiment:
        """The experiment being run."""
        if self._control is None:
            raise InvalidInput("no experiment is running; call start() or run_worker() first")
        return self._control.experiment

    @property
    def experiment_id(self) -> str:
        """The id of the experiment being run."""
        return self.experiment.experiment_id

    def checkpoint(
        self,
        name: str | None = None,
        data: Mapping[str, Any] | None = None,
        *,
        progress: float | None = None,
    ) -> None:
        """Between steps: wait while paused, stop when cancelled; optionally record a milestone."""
        if self._control is None:
            raise InvalidInput("checkpoint() is for use inside run_experiment")
        self._control.checkpoint(name, data, progress=progress)

    def resume_point(self) -> Milestone | None:
        """The last milestone of this experiment (where a resumed run picks up), if any."""
        return self.client.last_milestone(self.experiment_id)

    def record(self, **values: Any) -> list[Result]:
        """Attach named values to the running experiment (refused with ``LeaseLost`` when a
        worker running it no longer holds it)."""
        return self.client.add_results(self.experiment_id, values, worker_id=self._worker_id())

    def log_metric(self, name: str, value: float, step: int | None = None) -> None:
        """Log a point of the metric series ``name`` (buffered, sent in the background)."""
        self.client.log_metric(self.experiment_id, name, value, step)

    def log_metrics(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Log a point of each series named in ``values``, at the same ``step``."""
        self.client.log_metrics(self.experiment_id, values, step)

    def attach(self, name: str, path: str | Path) -> Result:
        """Upload a file result for the running experiment (refused as :meth:`record` is)."""
        return self.client.upload_file(self.experiment_id, name, path, worker_id=self._worker_id())

    def _worker_id(self) -> str | None:
        return self._control.worker_id if self._control is not None else None

    def use_resource(self, resource_id: str, **details: Any) -> None:
        """Record that the running experiment used a sample, consumable or instrument."""
        self.client.add_resources(self.experiment_id, [{"resource_id": resource_id, **details}])

    def run_workflow(
        self,
        definition: WorkflowDefinitionLike,
        inputs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> WorkflowRun:
        """Run a MADSci workflow (a definition mapping or YAML/JSON file) owned by the running
        experiment on the Workcell Manager, and wait for it; its data points come back with it.

        While the experiment is paused the wait pauses too (the server pauses the workflow);
        when it is cancelled the workflow is cancelled and :class:`ExperimentStopped` raised.
        The workcell is ``workcell_url``, else ``WORKCELL_SERVER_URL``, else the server's.
        """
        experiment = self.experiment
        control = self._control
        assert control is not None
        workcell = Workcell.find(self.client, self.workcell_url)
        try:
            submitted = workcell.submit(
                definition,
                experiment_id=experiment.experiment_id,
                campaign_id=experiment.campaign_id,
                inputs=inputs,
            )
            workflow = workcell.wait(
                str(submitted["workflow_id"]),
                checkpoint=control.checkpoint,
                poll_interval=min(self.poll_interval, 0.5),
                timeout=timeout,
            )
        finally:
            workcell.close()
        run = WorkflowRun(workflow)
        run.datapoints = workflow_datapoints(self.client, experiment.experiment_id, run.workflow_id)
        return run

    # ------------------------------------------------------------------ entry points

    def design(self) -> ExperimentDesign:
        """The experiment design of this application."""
        if self.experiment_design is None:
            return ExperimentDesign(experiment_name=type(self).__name__)
        return to_design(self.experiment_design)

    def start(
        self,
        run_name: str | None = None,
        *,
        campaign_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **parameters: Any,
    ) -> Experiment:
        """Register a run with these parameters, run it, record its outcome; returns it ended.

        A raised exception is recorded as ``failed`` (with its traceback) and re-raised.
        """
        experiment = self.client.start_experiment(
            self.design(),
            run_name,
            campaign_id=campaign_id,
            parameters=parameters,
            metadata=dict(metadata or {}),
        )
        return self._run_attached(experiment)

    def resume(self, experiment_id: str) -> Experiment:
        """Run an existing experiment again from where it stopped (MADSci#3, #43).

        A paused or ``unknown`` experiment is continued first; ``run_experiment`` gets its
        parameters and :meth:`resume_point` its last milestone.
        """
        experiment = self.client.get_experiment(experiment_id)
        status = experiment.status.value
        if status in ("planned", "queued"):
            experiment = self.client.start_queued_experiment(experiment_id)
        elif status != "in_progress":  # paused, unknown; a finished one is refused (409)
            experiment = self.client.continue_experiment(experiment_id)
        return self._run_attached(experiment)

    def _run_attached(self, experiment: Experiment) -> Experiment:
        control = Control(self.client, experiment, worker_id=None, poll_interval=self.poll_interval)
        self._control = control
        try:
            outcome = self.run_experiment(**experiment.parameters)
            control.checkpoint()
            if outcome:
                self.client.add_results(experiment.experiment_id, dict(outcome))
            return self.client.finish_experiment(experiment.experiment_id, "completed")
        except ExperimentStopped:
            return self.client.get_experiment(experiment.experiment_id)
        except ServerUnreachable:
            raise  # nothing can be recorded; the run is not a failure of the experiment
        except Exception as exc:
            self.client.finish_experiment(experiment.experiment_id, "failed", error=error_info(exc))
            raise
        finally:
            self._control = None

    def make_worker(
        self,
        *,
        worker_id: str | None = None,
        campaign_id: str | None = None,
        lease_seconds: float | None = None,
    ) -> Worker:
        """A :class:`Worker` that runs this application for each claimed experiment."""

        def runner(experiment: Experiment, control: Control) -> Mapping[str, Any] | None:
            self._control = control
            try:
                return self.run_experiment(**experiment.parameters)
            finally:
                self._control = None

        return Worker(
            self.client,
            runner,
            make_client=lambda: ExperimentClient(self.server_url, token=self.token),
            worker_id=worker_id or default_worker_id(),
            campaign_id=campaign_id,
            lease_seconds=lease_seconds,
            poll_interval=self.poll_interval,
        )

    def run_worker(
        self,
        *,
        worker_id: str | None = None,
        campaign_id: str | None = None,
        lease_seconds: float | None = None,
        max_experiments: int | None = None,
        wait: bool = False,
    ) -> WorkerStats:
        """Claim and run queued experiments until the queue is empty (or forever with ``wait``).

        Each experiment's parameters are passed to ``run_experiment``; failures are recorded
        with their traceback and the worker goes on with the next one.
        """
        worker = self.make_worker(
            worker_id=worker_id, campaign_id=campaign_id, lease_seconds=lease_seconds
        )
        return worker.run(max_experiments=max_experiments, wait=wait)

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
