"""After a run: end and seal it, rerun it, check it out, and keep the store healthy."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from labledger.archive.manifest import FileEntry, restore_entries, scan_tree
from labledger.archive.store import VerifyReport, hash_file
from labledger.core.ids import utcnow
from labledger.core.lifecycle import ExperimentStatus as S
from labledger.core.vocabulary import EventType
from labledger.errors import Conflict, IntegrityError, InvalidInput, LabledgerError
from labledger.runner.config import RUN_FILE, load_run_config
from labledger.runner.record import RunRecord
from labledger.runner.workspace import Workspace

__all__ = [
    "OutputsDiff",
    "StoreHealth",
    "checkout",
    "collect_garbage",
    "compare_outputs",
    "observations_from_file",
    "seal",
    "verify_store",
]


def observations_from_file(ws: Workspace, record: RunRecord) -> str | None:
    """The observations typed into run.toml, if ``record`` is the open run and has some."""
    if ws.current_id() != record.run_id or not ws.run_config_path.is_file():
        return None
    try:
        return load_run_config(ws.run_config_path).observations or None
    except LabledgerError:
        return None  # a broken run.toml must not stop a run from being ended


def _clear_outputs(ws: Workspace, record: RunRecord) -> list[str]:
    """Delete from outputs/ what the record holds unchanged; return what was left there."""
    recorded = {e.path: e for e in record.files.get("outputs", [])}
    left: list[str] = []
    dirs: list[Path] = []
    for rel, entry in scan_tree(ws.outputs):
        path = Path(entry.path)
        known = recorded.get(f"outputs/{rel}")
        if entry.is_symlink() and known is not None and known.kind == "file":
            # a link out of the folder, archived as the file it points to: drop only the link
            same = path.is_file() and known.digest == hash_file(path)[0]
        elif entry.is_symlink():
            same = (
                known is not None and known.kind == "symlink" and known.target == os.readlink(path)
            )
        elif entry.is_dir():
            dirs.append(path)
            continue
        elif entry.is_file():
            same = known is not None and known.digest == hash_file(path)[0]
        else:
            same = False
        if same:
            path.unlink()
        else:
            left.append(f"outputs/{rel}")
    for folder in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    return left


def seal(ws: Workspace, record: RunRecord, *, observations: str | None) -> RunRecord:
    """End ``record``: store the observations, seal it, and clear the folder for the next run.

    A run that never ran ends ``cancelled``. outputs/ loses only files the record holds
    unchanged; anything else stays and is named in the record's events.
    """
    if record.sealed_at is not None:
        raise Conflict(
            f"Run {record.number} was ended already at {record.sealed_at:%Y-%m-%d %H:%M}"
        )
    if record.status is S.IN_PROGRESS:
        raise Conflict(f"Run {record.number} is still running; wait for it, or stop it first")
    text = observations if observations is not None else observations_from_file(ws, record)
    is_current = ws.current_id() == record.run_id
    if record.status is S.PLANNED:
        if is_current and ws.run_config_path.is_file():
            blob = ws.store.put_file(ws.run_config_path)
            record.files["config"] = [FileEntry(path=RUN_FILE, size=blob.size, digest=blob.digest)]
        record.set_status(S.CANCELLED, note="ended before it ran")
    record.observations = text or ""
    record.sealed_at = utcnow()
    data: dict[str, object] = {"sealed": True}
    if is_current:
        left = _clear_outputs(ws, record)
        if left:
            data["left_in_outputs"] = left[:100]
    record.add_event(EventType.UPDATED, data=data)
    ws.save(record)
    if is_current:
        ws.run_config_path.unlink(missing_ok=True)
        ws.set_current(None)
    return record


@dataclass
class OutputsDiff:
    """How two runs' outputs differ, by path."""

    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    same: int = 0

    @property
    def match(self) -> bool:
        """True when both runs have the same output files with the same content."""
        return not (self.only_a or self.only_b or self.changed)


def compare_outputs(a: RunRecord, b: RunRecord, section: str = "outputs") -> OutputsDiff:
    """Compare the manifests of ``section`` of two runs."""

    def key(e: FileEntry) -> tuple[str, str | None, str | None]:
        return (e.kind, e.digest, e.target)

    left = {e.path: key(e) for e in a.files.get(section, [])}
    right = {e.path: key(e) for e in b.files.get(section, [])}
    diff = OutputsDiff(
        only_a=sorted(left.keys() - right.keys()), only_b=sorted(right.keys() - left.keys())
    )
    for path in sorted(left.keys() & right.keys()):
        if left[path] == right[path]:
            diff.same += 1
        else:
            diff.changed.append(path)
    return diff


def checkout(
    ws: Workspace, ref: str, dest: Path, *, refused: list[str] | None = None
) -> tuple[RunRecord, int]:
    """Restore run ``ref``'s config, scripts, outputs, logs and patch into the empty ``dest``.

    Links that would lead out of ``dest`` are not made; ``refused`` names them.
    """
    record = ws.resolve(ref)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise InvalidInput(f"{dest} is not an empty folder; choose a new or empty one", field="dir")
    entries = [e for section in record.files.values() for e in section]
    return record, restore_entries(ws.store, entries, dest, refused=refused)


@dataclass
class StoreHealth:
    """The result of :func:`verify_store`: the blob report and which runs it touches."""

    report: VerifyReport
    unreadable_records: list[str]
    damaged_runs: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        """True when every blob and record is sound."""
        return self.report.ok and not self.unreadable_records


def _referenced(ws: Workspace) -> tuple[dict[str, set[str]], list[str]]:
    refs: dict[str, set[str]] = {}
    bad: list[str] = []
    for run_id in ws.run_ids():
        try:
            refs[run_id] = ws.load(run_id).digests()
        except IntegrityError:
            bad.append(run_id)
    return refs, bad


def verify_store(ws: Workspace) -> StoreHealth:
    """Re-hash every blob; name damaged and missing blobs and the runs that need them."""
    refs, bad = _referenced(ws)
    expected = set().union(*refs.values()) if refs else set()
    report = ws.store.verify(expected)
    broken = set(report.damaged) | set(report.missing)
    damaged_runs = {
        run_id: sorted(digests & broken) for run_id, digests in refs.items() if digests & broken
    }
    return StoreHealth(report, bad, damaged_runs)


def collect_garbage(ws: Workspace) -> tuple[int, int]:
    """Delete blobs no run refers to; return (blobs, bytes) freed."""
    refs, bad = _referenced(ws)
    if bad:
        raise IntegrityError(
            f"Cannot collect garbage: {len(bad)} run records are unreadable "
            f"({', '.join(bad[:5])}); "
            "their blobs could be deleted by mistake. Fix or remove those records first."
        )
    return ws.store.gc(set().union(*refs.values()) if refs else set())
