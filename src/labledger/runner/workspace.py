"""An experiment folder: its files, its hidden store, its current run and its lock.

::

    my-experiment/
      labledger.toml          the experiment: name, description, default variables and runners
      run.toml                the current run's config (written by `labledger new`)
      pre-run.sh run.sh post-run.sh fetch.sh
      outputs/                where fetch puts what must be kept
      .labledger/
        objects/ tmp/         the content-addressed blob store
        runs/<RUN_ID>.json    one plain record file per run (the source of truth)
        live/<RUN_ID>/        logs of a run being recorded, until they are archived
        index.sqlite          the query index, rebuilt from runs/ at will
        packages.json         the installed packages as the last run found them (a hint)
        current               the id of the run run.toml belongs to
        lock                  held (flock) by the labledger process recording a run

A recorder killed with SIGKILL releases its flock with its death, so any later command that can
take the lock while the current run says ``in_progress`` knows the run was orphaned.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labledger.archive.store import BlobStore
from labledger.errors import ConfigError, Conflict, InvalidInput, RunNotFound
from labledger.runner.files import EXPERIMENT_FILE, RUN_FILE, write_json_atomic
from labledger.runner.index import RunIndex

if TYPE_CHECKING:
    # Imported where used: opening a folder and listing runs read no record and no config.
    from labledger.runner.config import ExperimentConfig
    from labledger.runner.record import RunRecord

__all__ = ["STATE_DIR", "Workspace"]

STATE_DIR = ".labledger"


class Workspace:
    """The experiment folder at ``root`` (see the module docstring for its layout)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.state = self.root / STATE_DIR
        self.config_path = self.root / EXPERIMENT_FILE
        self.run_config_path = self.root / RUN_FILE
        self.outputs = self.root / "outputs"
        self.runs_dir = self.state / "runs"
        self.live_dir = self.state / "live"
        self.store = BlobStore(self.state)
        self.index = RunIndex(self.state / "index.sqlite", self.runs_dir)
        self.kept_packages = self.state / "packages.json"
        self._current_file = self.state / "current"
        self._lock_file = self.state / "lock"

    # ------------------------------------------------------------------ finding

    @classmethod
    def find(cls, start: Path | None = None) -> Workspace:
        """The experiment folder holding ``start`` (default: the working directory)."""
        here = (start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / EXPERIMENT_FILE).is_file() and (folder / STATE_DIR).is_dir():
                return cls(folder)
        raise ConfigError(
            f"{here} is not inside an experiment folder (no {EXPERIMENT_FILE} and {STATE_DIR}/ "
            "found here or above). Run `labledger init` to make one.",
            path=str(here),
        )

    def create_state(self) -> None:
        """Make the hidden folders (idempotent)."""
        self.store.create()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.live_dir.mkdir(parents=True, exist_ok=True)
        # Keep the store out of git without touching the user's .gitignore.
        ignore = self.state / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")

    def config(self) -> ExperimentConfig:
        """The checked experiment config."""
        from labledger.runner.config import load_experiment_config

        return load_experiment_config(self.config_path)

    # ------------------------------------------------------------------ records

    def record_path(self, run_id: str) -> Path:
        """The record file of ``run_id``."""
        return self.runs_dir / f"{run_id}.json"

    def save(self, record: RunRecord) -> None:
        """Write the record atomically and durably (temp file, fsync, rename, folder fsync)."""
        write_json_atomic(self.record_path(record.run_id), record.to_json())

    def load(self, run_id: str) -> RunRecord:
        """Read one record by its full id."""
        from labledger.runner.record import read_record

        path = self.record_path(run_id)
        if not path.is_file():
            raise RunNotFound(run_id)
        return read_record(path)

    def run_ids(self) -> list[str]:
        """Every run id, oldest first (ULIDs sort by creation time)."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(
            p.name[:-5]
            for p in self.runs_dir.iterdir()
            if p.name.endswith(".json") and not p.name.startswith(".")
        )

    def records(self) -> Iterator[RunRecord]:
        """Every record, oldest first."""
        for run_id in self.run_ids():
            yield self.load(run_id)

    def next_number(self) -> int:
        """The number the next run gets (1 + the highest so far)."""
        return max(self.index.numbers(), default=0) + 1

    def resolve(self, ref: str | None) -> RunRecord:
        """The run ``ref`` names: an id or unique id prefix, a number, ``last``; None = current."""
        return self.load(self.resolve_id(ref))

    def resolve_id(self, ref: str | None) -> str:
        """The id of the run ``ref`` names (see :meth:`resolve`), without reading its record."""
        if ref is None:
            current = self.current_id()
            if current is not None:
                if not self.record_path(current).is_file():
                    raise RunNotFound(current)
                return current
            ref = "last"
        ids = self.run_ids()
        if not ids:
            raise RunNotFound(ref, hint="no runs yet; start one with `labledger new`")
        if ref in ("last", "latest"):
            return ids[-1]
        number = ref.lstrip("#")
        if number.isdigit():
            found = self.index.ids_with_number(int(number))
            if len(found) > 1:  # runs synced in from another copy of the folder
                raise InvalidInput(
                    f"Run number {number} is taken by {len(found)} runs ({', '.join(found)}); "
                    "name the run by its id",
                    field="run",
                )
            if found:
                return found[0]
            raise RunNotFound(ref, hint="no run has this number; see `labledger list`")
        matches = [i for i in ids if i.startswith(ref.upper())]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidInput(
                f"Run id prefix {ref!r} matches {len(matches)} runs; give more characters",
                field="run",
            )
        raise RunNotFound(ref, hint="see `labledger list` for the ids")

    def load_json(self, run_id: str) -> Any:
        """The record of ``run_id`` as parsed JSON, unchecked; None when it cannot be parsed.

        For commands that only print a record: reading it as JSON costs a fraction of building
        the record's structs. Anything unexpected in it is for :meth:`load` to report.
        """
        try:
            return json.loads(self.record_path(run_id).read_bytes())
        except (OSError, ValueError):
            return None

    # ------------------------------------------------------------------ current run

    def current_id(self) -> str | None:
        """The id of the run ``run.toml`` belongs to, if a run is open."""
        try:
            value = self._current_file.read_text().strip()
        except FileNotFoundError:
            return None
        return value or None

    def set_current(self, run_id: str | None) -> None:
        """Point ``run.toml`` at ``run_id`` (None: no open run)."""
        if run_id is None:
            self._current_file.unlink(missing_ok=True)
        else:
            write_json_atomic(self._current_file, run_id + "\n")

    # ------------------------------------------------------------------ lock

    @contextlib.contextmanager
    def locked(self, *, purpose: str, wait: bool = False) -> Iterator[None]:
        """Hold the experiment's lock: one recorder or store change at a time.

        The lock is an flock, released by the kernel when its holder dies, so it can never go
        stale; the file's text only says who holds it, for the error message.
        """
        self.state.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                holder = self._lock_holder()
                raise Conflict(
                    f"Another labledger process is busy in {self.root} ({holder}); "
                    "wait for it to finish, or stop it first",
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "purpose": purpose}).encode())
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def _lock_holder(self) -> str:
        try:
            info = json.loads(self._lock_file.read_text() or "{}")
        except (OSError, ValueError):
            return "unknown holder"
        return f"pid {info.get('pid')}, {info.get('purpose')}"

    def may_hold_orphan(self) -> bool:
        """Cheap check (no record built): could the open run have lost its recorder?"""
        current = self.current_id()
        if current is None or self.is_locked():
            return False
        try:
            data = json.loads(self.record_path(current).read_bytes())
            return bool(data["experiment"]["status"] == "in_progress")
        except (OSError, ValueError, KeyError, TypeError):
            return True  # unreadable: let the full check decide and report

    def is_locked(self) -> bool:
        """True when a live labledger process holds the lock."""
        if not self._lock_file.exists():
            return False
        fd = os.open(self._lock_file, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False
