"""``labledger checkout`` of a crafted run record never writes outside the target folder.

A real run is recorded, then its record file is edited as an attacker (or a damaged disk)
would: an entry climbing out with ``..``, an absolute one, and a symlink out of the folder
with a file to be written through it. Checkout must refuse, name the problem, and write
nothing outside the folder it was given.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from runner.recorder_support import labledger, labledger_json, make_experiment

pytestmark = pytest.mark.slow

RUN = 'mkdir -p results && echo "measured" > "$LABLEDGER_OUTPUTS_DIR/data.txt"\n'


def _record(exp: Path) -> tuple[Path, dict[str, Any]]:
    (path,) = (exp / ".labledger" / "runs").glob("*.json")
    return path, json.loads(path.read_text())


def _everything_under(root: Path) -> set[Path]:
    return {Path(d) / n for d, dirs, files in os.walk(root) for n in dirs + files}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    exp = make_experiment(tmp_path_factory.mktemp("paths") / "exp", run=RUN)
    labledger_json(exp, "new")
    labledger(exp, "run")
    labledger(exp, "end", "-o", "fine")
    _, record = _record(exp)
    return exp, record


def _crafted(record: dict[str, Any], extra: list[dict[str, Any]]) -> dict[str, Any]:
    crafted: dict[str, Any] = json.loads(json.dumps(record))
    crafted["files"]["outputs"] = [*crafted["files"]["outputs"], *extra]
    return crafted


def test_a_clean_record_checks_out(recorded: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    exp, _ = recorded
    dest = tmp_path / "clean"
    labledger(exp, "checkout", "1", str(dest))
    assert (dest / "outputs" / "data.txt").read_text() == "measured\n"


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param({"path": "../../escaped-{m}.txt"}, id="dot-dot"),
        pytest.param({"path": "outputs/../../../escaped-{m}.txt"}, id="dot-dot-inside"),
        pytest.param({"path": "/tmp/escaped-{m}.txt"}, id="absolute"),
    ],
)
def test_checkout_refuses_an_entry_that_climbs_out(
    recorded: tuple[Path, dict[str, Any]], tmp_path: Path, entry: dict[str, str]
) -> None:
    exp, record = recorded
    marker = uuid.uuid4().hex
    good = record["files"]["outputs"][0]
    evil = {**good, "path": entry["path"].format(m=marker)}
    path, _ = _record(exp)
    original = path.read_text()
    try:
        path.write_text(json.dumps(_crafted(record, [evil])))
        before = _everything_under(tmp_path)
        result = labledger(exp, "checkout", "1", str(tmp_path / "dest"), ok=False)
        added = _everything_under(tmp_path) - before
    finally:
        path.write_text(original)
    assert result.returncode != 0
    assert "refused" in result.stderr.lower() or "refusing" in result.stderr.lower()
    assert all((tmp_path / "dest") in p.parents or p == tmp_path / "dest" for p in added)
    assert not list(tmp_path.parent.rglob(f"escaped-{marker}.txt"))
    assert not Path(f"/tmp/escaped-{marker}.txt").exists()


def test_checkout_never_writes_through_a_symlink_out_of_the_folder(
    recorded: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    exp, record = recorded
    outside = tmp_path / "outside"
    outside.mkdir()
    good = record["files"]["outputs"][0]
    link = {"path": "outputs/link", "kind": "symlink", "target": str(outside)}
    through = {**good, "path": "outputs/link/planted.txt"}
    path, _ = _record(exp)
    original = path.read_text()
    try:
        path.write_text(json.dumps(_crafted(record, [link, through])))
        result = labledger(exp, "checkout", "1", str(tmp_path / "dest"), ok=False)
    finally:
        path.write_text(original)
    assert list(outside.iterdir()) == []
    # either refused outright, or restored without the link: never a link leading out
    assert not (tmp_path / "dest" / "outputs" / "link").is_symlink()
    if result.returncode == 0:
        assert "Not restored: the link outputs/link" in result.stderr
