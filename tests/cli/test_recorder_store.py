"""The store through the CLI: unchanged outputs stored once, verify finds damage, gc frees."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from labledger.runner.workspace import Workspace
from runner.recorder_support import labledger, labledger_json, make_experiment

# every test here drives several real labledger processes: seconds each
pytestmark = pytest.mark.slow

MB = 1024 * 1024


def test_three_runs_with_the_same_100_mb_of_outputs_store_them_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        with (data / f"part{i}.bin").open("wb") as fh:
            for _ in range(25):
                fh.write(os.urandom(MB))
    exp = make_experiment(
        tmp_path / "exp",
        run="echo computing\n",
        fetch=f'cp -r {data}/. "$LABLEDGER_OUTPUTS_DIR"/\n',
    )
    ws = Workspace(exp)
    sizes = []
    for n in range(3):
        labledger(exp, "new", "--var", f"seed={n}")
        started = time.perf_counter()
        labledger(exp, "run")
        elapsed = time.perf_counter() - started
        labledger(exp, "end", "-o", f"run {n}")
        sizes.append(ws.store.size_on_disk())
        print(f"run {n + 1}: store {sizes[-1] / MB:.1f} MB, `labledger run` {elapsed:.2f} s")
    assert 100 * MB <= sizes[0] < 101 * MB
    assert sizes[2] - sizes[0] < 1 * MB  # re-archiving unchanged outputs adds under 1 MB
    outputs = [labledger_json(exp, "ls", str(n)) for n in (1, 2, 3)]
    assert outputs[0] == outputs[1] == outputs[2]
    assert sum(e["size"] for e in outputs[0]) == 100 * MB


def test_verify_finds_a_corrupted_blob_and_names_the_run(tmp_path: Path) -> None:
    exp = make_experiment(
        tmp_path / "exp", run='mkdir -p results; echo "precious result" > results/r.txt\n'
    )
    labledger(exp, "new")
    labledger(exp, "run")
    assert labledger(exp, "verify").returncode == 0

    shown = labledger_json(exp, "show")
    digest = shown["files"]["outputs"][0]["digest"]
    ws = Workspace(exp)
    blob = ws.store.path_of(digest)
    blob.chmod(0o644)
    blob.write_bytes(b"precious resulT\n")

    result = labledger(exp, "verify", ok=False)
    assert result.returncode == 1
    assert f"DAMAGED  {blob}" in result.stdout
    report = json.loads(labledger(exp, "verify", "--json", ok=False).stdout)
    assert report["damaged"] == [digest]
    assert report["damaged_runs"] == {shown["experiment"]["experiment_id"]: [digest]}


def test_gc_frees_the_blobs_of_a_deleted_run_and_keeps_the_rest(tmp_path: Path) -> None:
    exp = make_experiment(
        tmp_path / "exp", run='mkdir -p results; echo "$LABLEDGER_RUN_ID" > results/id.txt\n'
    )
    first = labledger_json(exp, "new")["run_id"]
    labledger(exp, "run")
    second = labledger_json(exp, "new")["run_id"]
    labledger(exp, "run")
    ws = Workspace(exp)
    only_first = ws.load(first).digests() - ws.load(second).digests()
    assert only_first  # at least its outputs/id.txt and its run.toml differ
    before = set(ws.store.iter_digests())
    ws.record_path(first).unlink()
    assert f"Removed {len(only_first)} unreferenced" in labledger(exp, "gc").stdout
    assert before - set(ws.store.iter_digests()) == only_first
    assert labledger(exp, "verify").returncode == 0
    assert labledger(exp, "checkout", "2", str(tmp_path / "co")).returncode == 0


def test_an_output_linking_outside_is_archived_with_a_warning_and_checked_out_as_content(
    tmp_path: Path,
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "model.bin").write_bytes(b"weights " * 1000)
    exp = make_experiment(
        tmp_path / "exp",
        run="echo training\n",
        fetch=(
            f'ln -s {scratch}/model.bin "$LABLEDGER_OUTPUTS_DIR/model.bin"\n'
            f'ln -s {tmp_path}/gone.txt "$LABLEDGER_OUTPUTS_DIR/gone.txt"\n'
            'echo ok > "$LABLEDGER_OUTPUTS_DIR/log.txt"\n'
            'ln -s "$LABLEDGER_OUTPUTS_DIR/log.txt" "$LABLEDGER_OUTPUTS_DIR/latest"\n'
        ),
    )
    labledger(exp, "new")
    ran = labledger(exp, "run")
    assert "model.bin is a link to" in ran.stderr and "archived the file" in ran.stderr
    assert "gone.txt is a link to" in ran.stderr and "not kept" in ran.stderr

    (scratch / "model.bin").write_bytes(b"overwritten by the next job")
    labledger(exp, "checkout", "1", str(tmp_path / "copy"))
    copy = tmp_path / "copy" / "outputs"
    assert not (copy / "model.bin").is_symlink()
    assert (copy / "model.bin").read_bytes() == b"weights " * 1000
    assert (copy / "latest").is_symlink() and os.readlink(copy / "latest") == "log.txt"
    assert not (copy / "gone.txt").exists()
    shown = labledger_json(exp, "show")
    assert shown["skipped_files"] == ["outputs/gone.txt"] and len(shown["archive_notes"]) == 2
