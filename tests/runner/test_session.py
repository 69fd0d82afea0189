"""A run's record and blobs reach the disk durably: every save and every blob it names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labledger.runner.session import execute_run, new_run
from labledger.runner.workspace import Workspace
from runner.recorder_support import git, make_experiment


class DiskLog:
    """What the real ``os.replace`` and ``os.fsync`` did, in order (each still does it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, Path]] = []
        real_replace, real_fsync = os.replace, os.fsync

        def replace(src: str | Path, dst: str | Path) -> None:
            real_replace(src, dst)
            self.events.append(("replace", Path(dst).resolve()))

        def fsync(fd: int) -> None:
            real_fsync(fd)
            self.events.append(("fsync", Path(os.readlink(f"/proc/self/fd/{fd}")).resolve()))

        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(os, "fsync", fsync)

    def synced(self) -> set[Path]:
        return {path for what, path in self.events if what == "fsync"}


def _workspace(tmp_path: Path) -> Workspace:
    root = make_experiment(tmp_path / "exp", run='mkdir -p results; echo "$lr" > results/lr.txt\n')
    ws = Workspace(root)
    new_run(ws, hypothesis="first", variables={"lr": 0.1})
    return ws


def test_every_save_of_a_run_record_syncs_its_folder_before_the_next_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _workspace(tmp_path)
    log = DiskLog(monkeypatch)
    record = execute_run(ws, lambda _chunk: None)
    record_path, runs_dir = ws.record_path(record.run_id).resolve(), ws.runs_dir.resolve()
    saves = [
        i for i, (what, path) in enumerate(log.events) if (what, path) == ("replace", record_path)
    ]
    # in progress, each phase started, the phases done, the final status
    assert len(saves) >= 4, log.events
    for n, i in enumerate(saves):
        end = saves[n + 1] if n + 1 < len(saves) else len(log.events)
        assert ("fsync", runs_dir) in log.events[i + 1 : end], (
            f"save {n + 1} of {len(saves)} was not followed by a sync of {runs_dir}"
        )


def test_a_run_syncs_the_folder_of_every_blob_it_names_even_one_stored_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A blob found stored may be one another recorder renamed in and has not synced yet (it
    # runs alongside, or was killed): a durable record naming it must not rely on that.
    ws = _workspace(tmp_path)
    execute_run(ws, lambda _chunk: None)
    new_run(ws, hypothesis="second, same scripts and config")
    log = DiskLog(monkeypatch)
    record = execute_run(ws, lambda _chunk: None)
    final_save = max(
        i
        for i, (what, path) in enumerate(log.events)
        if (what, path) == ("replace", ws.record_path(record.run_id).resolve())
    )
    synced_before = {path for what, path in log.events[:final_save] if what == "fsync"}
    unchanged = [e.digest for e in record.files["scripts"]]
    assert unchanged
    for digest in record.digests():
        folder = ws.store.path_of(digest).parent.resolve()
        assert folder in synced_before, f"{digest} ({folder}) was named unsynced"


def test_a_run_records_its_repositorys_commit_and_uncommitted_changes(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    git(ws.root, "add", "-A")
    git(ws.root, "commit", "-q", "-m", "the experiment")
    (ws.root / "model.py").write_text("lr = 0.2\n")  # untracked, so part of the patch
    record = execute_run(ws, lambda _chunk: None)
    assert record.code is not None
    assert record.code.commit == git(ws.root, "rev-parse", "HEAD").strip()
    assert (record.code.branch, record.code.dirty) == ("main", True)
    assert record.code.changed_files == ["model.py"]  # outputs/, run.toml, the store left out
    assert record.code.patch_digest is not None
    assert "+lr = 0.2" in ws.store.get(record.code.patch_digest).decode()
    assert [e.digest for e in record.files["code"]] == [record.code.patch_digest]
    assert ws.load(record.run_id).code == record.code
