"""The composition root: one :class:`ServerLab` per app, the only object routes depend on.

It is the core's :class:`~labledger.core.lab.Lab` (every use case over one store) plus what
serving needs besides: the settings, the content-addressed store of result files (a local
folder or an S3-compatible bucket, :func:`result_store`), access
control, the event forwarder, and the gateway to the MADSci lab around the experiments.
:func:`~labledger.server.app.create_app` builds it once from the settings;
:meth:`ServerLab.running` runs its background tasks while the app lives: the lease sweeper
(every ``sweep_interval`` seconds), the event forwarder (webhooks and a MADSci Event Manager)
and, with a Workcell Manager, the control that carries an experiment's pause, continue and
cancel to its workflows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import anyio
from sqlalchemy import Engine

from labledger.archive.objects import ObjectStore, open_object_store
from labledger.core.idempotency import IdempotencyClaim
from labledger.core.lab import Lab
from labledger.core.models import Experiment, ExperimentRegistration, OwnershipInfo
from labledger.core.service import NewExperiment
from labledger.server.file_gc import collect_files
from labledger.server.forwarding import Forwarder, targets_from
from labledger.server.group_commit import GroupCommit
from labledger.server.labgateway import LabGateway, WorkcellControl, discover, urls_from
from labledger.server.security import AccessControl
from labledger.settings import Settings
from labledger.storage.file_refs import experiment_digests
from labledger.storage.sql import SqlStore

__all__ = ["ServerLab", "result_store"]

log = logging.getLogger("labledger.server")


def result_store(settings: Settings) -> ObjectStore:
    """The store of result files (uploads and pushed blobs) of the server of ``settings``.

    That is the S3-compatible store ``blob_url`` names when set, else the folder
    ``results_path``. The one place that says where that store is: the app, backups and
    ``labledger db gc`` all open it here.
    """
    secret = settings.s3_secret_access_key
    return open_object_store(
        settings.results_path,
        settings.blob_url,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret else None,
    )


class ServerLab(Lab):
    """Every use case of the lab, and what the server needs to serve them."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.manager_id = settings.resolved_manager_id()
        super().__init__(
            SqlStore(engine),
            default_ownership=OwnershipInfo(manager_id=self.manager_id),
            lease_seconds=settings.lease_seconds,
            max_attempts=settings.max_attempts,
        )
        self.settings = settings
        self.engine = engine
        #: result files and pushed run files, by SHA-256
        self.files = result_store(settings)
        self.access = AccessControl(settings, self.tokens)
        self.forwarder = Forwarder(
            self.store,
            targets_from(settings),
            settings.forward_retry_max,
            manager_id=self.manager_id,
        )
        #: the MADSci managers' lab record of the experiments, and control of their workflows
        self.gateway = LabGateway(
            urls_from(settings),
            timeout=settings.lab_timeout,
            cache_seconds=settings.lab_cache_seconds,
        )
        #: carries status changes to the Workcell Manager while running (None without one)
        self.workcell_control: WorkcellControl | None = None
        #: new experiments of concurrent requests, stored together (group commit)
        self.creates: GroupCommit[NewExperiment, Experiment] = GroupCommit(
            self.experiments.create_experiments, name="labledger-creates"
        )

    async def create_experiment(
        self,
        registration: ExperimentRegistration,
        *,
        actor: str | None = None,
        claim: IdempotencyClaim | None = None,
    ) -> Experiment:
        """Register an experiment (:meth:`ExperimentService.create_experiment`), answering
        once it is committed.

        Registrations of concurrent requests share a transaction (:attr:`creates`), which also
        holds their Idempotency-Keys.
        """
        return await self.creates.submit(NewExperiment(registration, actor, claim))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the background tasks for the duration of the block, then close the database."""
        tasks = [asyncio.create_task(self._sweeper())]
        try:
            if self.forwarder.targets:
                await self.forwarder.prime()
                tasks.append(asyncio.create_task(self.forwarder.run()))
            if self.settings.lab_server_url is not None:
                context = await discover(
                    str(self.settings.lab_server_url), self.settings.lab_timeout
                )
                self.gateway.urls = urls_from(self.settings, context)
            if self.gateway.urls.workcell:
                self.workcell_control = WorkcellControl(self.store, self.gateway)
                await self.workcell_control.prime()
                tasks.append(asyncio.create_task(self.workcell_control.run()))
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.gateway.aclose()
            self.close()

    def purge_experiment(self, experiment_id: str, *, actor: str | None = None) -> None:
        """Remove a trashed experiment, its records and the files no other record refers to."""
        files = experiment_digests(self.engine, experiment_id)
        self.experiments.purge_experiment(experiment_id, actor=actor)
        if files:
            try:
                collect_files(self.engine, self.files, candidates=files)
            except Exception:  # the purge is done; `labledger db gc` removes the files later
                log.exception("removing the files of purged experiment %s failed", experiment_id)

    def close(self) -> None:
        """Store the registrations under way, then release the database connections."""
        self.creates.close()
        self.engine.dispose()

    async def _sweeper(self) -> None:
        """Expire stale leases now and then, so a dead worker's experiment is retried even
        when no other worker is claiming."""
        while True:
            try:
                swept = await anyio.to_thread.run_sync(self.sweep)
                if swept:
                    log.info("lease sweep: %d experiment(s) requeued or failed", swept)
            except Exception:  # keep sweeping: a database blip must not end the task
                log.exception("lease sweep failed")
            await asyncio.sleep(self.settings.sweep_interval)
