"""The one error tree of labledger.

Every error labledger raises on purpose derives from :class:`LabledgerError`. Each class carries
the HTTP status the server answers with and the exit code the CLI ends with, so that the edges
(server, CLI, client) translate errors in one place each.

::

    LabledgerError                      500 / exit 1
    ├── InvalidInput                    422 / exit 2   a field has a bad value
    │   └── ConfigError                 422 / exit 2   a config file is wrong (names file and field)
    ├── NotFound                        404 / exit 1   no such experiment, campaign, run, blob ...
    │   ├── ExperimentNotFound
    │   ├── CampaignNotFound
    │   └── RunNotFound
    ├── Conflict                        409 / exit 1   the request clashes with the current state
    │   ├── IllegalTransition           names the current and the requested state
    │   ├── ConcurrentUpdate            lost a race after retrying
    │   ├── AlreadyExists
    │   └── LeaseLost                   a worker reports on an experiment it no longer holds
    ├── Unauthorized                    401 / exit 1
    ├── Forbidden                       403 / exit 1
    ├── PayloadTooLarge                 413 / exit 1
    ├── RangeNotSatisfiable             416 / exit 1   a download's Range starts past its end
    ├── RateLimited                     429 / exit 1
    ├── StorageError                    503 / exit 1   the database is unreachable or broken
    │   ├── SchemaOutdated              the database needs `labledger db upgrade`
    │   └── SchemaTooNew                a newer labledger wrote the database: upgrade labledger
    ├── StorageFull                     507 / exit 1   no space left on the disk (names it)
    ├── IntegrityError                  500 / exit 1   stored data failed a check (bad digest ...)
    ├── MissingDependency               500 / exit 1   names the pip install command
    ├── ServerUnreachable               503 / exit 1   the client could not reach the server (URL)
    └── RemoteError                     from the client: the server answered with an error body

The client rebuilds an error the server sent with :meth:`LabledgerError.from_dict`, through the
class's own constructor, so a caller catches the same class on both sides of the wire.

This module imports only the standard library.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

__all__ = [
    "AlreadyExists",
    "CampaignNotFound",
    "ConcurrentUpdate",
    "ConfigError",
    "Conflict",
    "DuplicateRequest",
    "ExperimentNotFound",
    "Forbidden",
    "IllegalTransition",
    "IntegrityError",
    "InvalidInput",
    "LabUnavailable",
    "LabledgerError",
    "LeaseLost",
    "MissingDependency",
    "NotFound",
    "PayloadTooLarge",
    "RangeNotSatisfiable",
    "RateLimited",
    "RemoteError",
    "RunNotFound",
    "SchemaOutdated",
    "SchemaTooNew",
    "ServerUnreachable",
    "StorageError",
    "StorageFull",
    "Unauthorized",
    "error_class_for",
    "is_disk_full",
]


class LabledgerError(Exception):
    """Root of every error labledger raises on purpose."""

    status_code: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1
    #: machine-readable name used in the JSON error body
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = {k: v for k, v in details.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        """The error as the ``error`` member of the one JSON error body."""
        return {"code": self.code, "message": self.message, **self.details}

    @classmethod
    def from_dict(cls, message: str, details: Mapping[str, Any]) -> Self:
        """The error again from the message and details of :meth:`to_dict`.

        Classes whose constructor takes structured fields instead of a message override this.
        A missing field raises ``KeyError``, an unexpected one ``TypeError``.
        """
        return cls(message, **details)


class InvalidInput(LabledgerError):
    """A value is not what was expected; ``field`` names where."""

    status_code = 422
    exit_code = 2
    code = "invalid_input"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message, field=field, **details)
        self.field = field


class ConfigError(InvalidInput):
    """A config file is wrong; the message names the file, the field and what was expected."""

    code = "config_error"

    def __init__(
        self, message: str, *, path: str | None = None, field: str | None = None, **details: Any
    ) -> None:
        super().__init__(message, field=field, path=path, **details)
        self.path = path


class NotFound(LabledgerError):
    """The thing asked for does not exist (or is in the trash)."""

    status_code = 404
    code = "not_found"


class ExperimentNotFound(NotFound):
    """No experiment with this id."""

    code = "experiment_not_found"

    def __init__(self, experiment_id: str) -> None:
        super().__init__(f"Experiment not found: {experiment_id}", experiment_id=experiment_id)
        self.experiment_id = experiment_id

    @classmethod
    def from_dict(cls, message: str, details: Mapping[str, Any]) -> Self:
        return cls(details["experiment_id"])


class CampaignNotFound(NotFound):
    """No campaign with this id."""

    code = "campaign_not_found"

    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"Campaign not found: {campaign_id}", campaign_id=campaign_id)
        self.campaign_id = campaign_id

    @classmethod
    def from_dict(cls, message: str, details: Mapping[str, Any]) -> Self:
        return cls(details["campaign_id"])


class RunNotFound(NotFound):
    """No local run matches this id or prefix."""

    code = "run_not_found"

    def __init__(self, run_id: str, hint: str | None = None) -> None:
        message = f"Run not found: {run_id}"
        if hint:
            message += f" ({hint})"
        super().__init__(message, run_id=run_id, hint=hint)
        self.run_id = run_id

    @classmethod
    def from_dict(cls, message: str, details: Mapping[str, Any]) -> Self:
        return cls(details["run_id"], details.get("hint"))


class Conflict(LabledgerError):
    """The request clashes with the current state of the thing."""

    status_code = 409
    code = "conflict"


class IllegalTransition(Conflict):
    """A lifecycle change the transition table does not allow."""

    code = "illegal_transition"

    def __init__(
        self,
        current: str,
        requested: str,
        *,
        entity: str = "experiment",
        entity_id: str | None = None,
        action: str | None = None,
    ) -> None:
        what = f"{entity} {entity_id}" if entity_id else entity
        verb = f" ({action})" if action else ""
        super().__init__(
            f"Cannot change {what} from '{current}' to '{requested}'{verb}: "
            f"'{current}' does not allow it",
            current_status=current,
            requested_status=requested,
            entity=entity,
            entity_id=entity_id,
            action=action,
        )
        self.current_status = current
        self.requested_status = requested

    @classmethod
    def from_dict(cls, message: str, details: Mapping[str, Any]) -> Self:
        return cls(
            details["current_status"],
            details["requested_status"],
            entity=details.get("entity", "experiment"),
            entity_id=details.get("entity_id"),
            action=details.get("action"),
        )

    @property
    def current(self) -> str:
        """The state the thing is in."""
        return self.current_status

    @property
    def requested(self) -> str:
        """The state that was asked for."""
        return self.requested_status


class ConcurrentUpdate(Conflict):
    """Another writer kept changing the same record; the change was not applied."""

    code = "concurrent_update"


class AlreadyExists(Conflict):
    """Something with this id or name exists already."""

    code = "already_exists"


class LeaseLost(Conflict):
    """A worker's lease on a queued experiment ended (expired, or another worker holds it)."""

    code = "lease_lost"

    def __init__(self, experiment_id: str, worker_id: str, holder: str | None, status: str) -> None:
        held = f"is held by {holder}" if holder else "is held by no worker"
        super().__init__(
            f"Worker {worker_id} no longer holds experiment {experiment_id}: it {held} and is "
            f"'{status}'. Stop working on it; its lease expired or it was reassigned",
            experiment_id=experiment_id,
            worker_id=worker_id,
            holder=holder,
            status=status,
        )
        self.experiment_id = experiment_id

    @classmethod
    def from_dict(cls, message: str, details: Mapping[str, Any]) -> Self:
        return cls(
            details["experiment_id"], details["worker_id"], details.get("holder"), details["status"]
        )


class DuplicateRequest(Conflict):
    """A request with this Idempotency-Key was made before and is not answered yet."""

    code = "duplicate_request"


class Unauthorized(LabledgerError):
    """No valid credentials were given."""

    status_code = 401
    code = "unauthorized"


class Forbidden(LabledgerError):
    """The credentials do not allow this action."""

    status_code = 403
    code = "forbidden"


class PayloadTooLarge(LabledgerError):
    """A body, upload or value is over a configured limit; the message names the limit."""

    status_code = 413
    code = "payload_too_large"


class RangeNotSatisfiable(LabledgerError):
    """A download asked for bytes the file does not have; ``size`` is the file's size."""

    status_code = 416
    code = "range_not_satisfiable"

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message, field="Range", size=size)
        self.size = size


class RateLimited(LabledgerError):
    """Too many requests from one client."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class StorageError(LabledgerError):
    """The database cannot be reached or refused an operation."""

    status_code = 503
    code = "storage_error"


class SchemaOutdated(StorageError):
    """The database schema is not the version this labledger needs."""

    code = "schema_outdated"

    def __init__(self, current: str | None, expected: str, command: str) -> None:
        super().__init__(
            f"Database schema is at version {current or 'none'}, this labledger needs {expected}. "
            f"Run: {command}",
            current_version=current,
            expected_version=expected,
            command=command,
        )
        self.command = command

    @classmethod
    def from_dict(cls, message: str, details: Mapping[str, Any]) -> Self:
        return cls(details.get("current_version"), details["expected_version"], details["command"])


class SchemaTooNew(StorageError):
    """The database was written by a newer labledger, whose schema this one does not know."""

    code = "schema_too_new"

    def __init__(self, current: str, expected: str) -> None:
        super().__init__(
            f"Database schema is at version {current}, which a newer labledger wrote; this "
            f"labledger knows versions up to {expected}. Upgrade labledger "
            "(pip install --upgrade labledger) to use this database.",
            current_version=current,
            expected_version=expected,
        )

    @classmethod
    def from_dict(cls, message: str, details: Mapping[str, Any]) -> Self:
        return cls(details["current_version"], details["expected_version"])


class StorageFull(LabledgerError):
    """No space is left on the disk (or quota) that holds ``path``; nothing half-written is kept."""

    status_code = 507
    code = "storage_full"

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message, path=path)
        self.path = path

    @classmethod
    def on_disk(cls, where: Path, then: str) -> StorageFull:
        """The error for a write under ``where`` that found the disk full; ``then``: what next."""
        mount = where.absolute()
        while not mount.exists() and mount != mount.parent:
            mount = mount.parent
        while not os.path.ismount(mount) and mount != mount.parent:
            mount = mount.parent
        try:
            free = f"{shutil.disk_usage(mount).free / 1e6:.1f} MB free"
        except OSError:
            free = "free space unknown"
        return cls(
            f"No space left on the disk holding {where} (the filesystem at {mount}, {free}): "
            f"{then}",
            path=str(where),
        )


def is_disk_full(exc: BaseException) -> bool:
    """True for an OSError that says the disk (or the quota) is full."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class IntegrityError(LabledgerError):
    """Stored data failed a check (a digest does not match, a record is unreadable)."""

    code = "integrity_error"


class MissingDependency(LabledgerError):
    """An optional package is needed; the message names the install command."""

    code = "missing_dependency"

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"This needs the optional package {package!r}. "
            f"Install it with: pip install 'labledger[{extra}]'",
            package=package,
            extra=extra,
        )

    @classmethod
    def from_dict(cls, message: str, details: Mapping[str, Any]) -> Self:
        return cls(details["package"], details["extra"])


class ServerUnreachable(LabledgerError):
    """The client could not reach the server at ``url`` (refused, timed out, cut off)."""

    status_code = 503
    code = "server_unreachable"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"Cannot reach the labledger server at {url} ({reason}). Start it with "
            "`labledger serve`, or point --server-url (EXPERIMENT_SERVER_URL) at a running one",
            url=url,
            reason=reason,
        )
        self.url = url
        self.reason = reason

    @classmethod
    def from_dict(cls, message: str, details: Mapping[str, Any]) -> Self:
        return cls(details["url"], details["reason"])


class LabUnavailable(LabledgerError):
    """A MADSci manager of the lab (workcell, data, resource, event) did not answer usefully."""

    status_code = 502
    code = "lab_unavailable"

    def __init__(self, message: str, *, manager: str, **details: Any) -> None:
        super().__init__(message, manager=manager, **details)
        self.manager = manager


class RemoteError(LabledgerError):
    """The server answered with an error the client has no closer class for."""

    code = "remote_error"

    def __init__(self, message: str, *, status_code: int, **details: Any) -> None:
        super().__init__(message, http_status=status_code, **details)
        self.http_status = status_code

    @classmethod
    def from_dict(cls, message: str, details: Mapping[str, Any]) -> Self:
        rest = {k: v for k, v in details.items() if k != "http_status"}
        return cls(message, status_code=int(details.get("http_status", 500)), **rest)


def _all_subclasses(cls: type[LabledgerError]) -> list[type[LabledgerError]]:
    out: list[type[LabledgerError]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


def error_class_for(code: str) -> type[LabledgerError] | None:
    """The error class whose ``code`` is ``code`` (used by the client to rebuild errors)."""
    candidates: list[type[LabledgerError]] = [LabledgerError, *_all_subclasses(LabledgerError)]
    return next((cls for cls in candidates if cls.code == code), None)
