"""The package list a run records: read from metadata, kept while the environment is unchanged."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from labledger.archive.statcache import settling_time
from labledger.runner.capture import capture_environment
from labledger.runner.packages import installed_packages, read_packages


def _install(site: Path, name: str, version: str, *, egg: bool = False) -> Path:
    """A distribution's metadata as an installer leaves it (a dist-info, or an egg-info)."""
    folder = site / (f"{name}.egg-info" if egg else f"{name}-{version}.dist-info")
    folder.mkdir()
    meta = folder / ("PKG-INFO" if egg else "METADATA")
    meta.write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nAbout it.\n")
    return meta


def _settle(path: Path) -> None:
    """Wait until ``path``'s times vouch for it (a change made in the same clock tick as its
    last one could leave them as they are)."""
    st = path.stat()
    changed = max(st.st_mtime_ns, st.st_ctime_ns)
    while time.time_ns() - changed < settling_time(st):
        time.sleep(0.02)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_the_kept_list_is_what_the_metadata_says_and_is_read_back_unchanged(
    tmp_path: Path, site: Path
) -> None:
    _settle(_install(site, "demo", "1.0"))
    kept = tmp_path / "packages.json"
    first = installed_packages(kept)
    assert first == read_packages()
    assert first["demo"] == "1.0"
    # Read back from the file, not from the metadata: what the file says is what comes back.
    data = json.loads(kept.read_text())
    data["packages"]["demo"] = "as kept"
    kept.write_text(json.dumps(data))
    assert installed_packages(kept)["demo"] == "as kept"


@pytest.mark.parametrize("egg", [False, True], ids=["dist-info", "egg-info"])
def test_an_install_an_upgrade_and_a_removal_each_give_a_fresh_list(
    tmp_path: Path, site: Path, egg: bool
) -> None:
    kept = tmp_path / "packages.json"
    before = installed_packages(kept)
    assert "demo" not in before
    meta = _install(site, "demo", "1.0", egg=egg)
    _settle(meta)
    assert installed_packages(kept)["demo"] == "1.0"
    if egg:  # an egg-info is rewritten in place: only its file's times move
        meta.write_text("Metadata-Version: 2.1\nName: demo\nVersion: 2.0\n")
    else:  # an upgrade replaces the dist-info with one named after the new version
        meta.unlink()
        meta.parent.rmdir()
        meta = _install(site, "demo", "2.0")
    _settle(meta)
    assert installed_packages(kept)["demo"] == "2.0"
    meta.unlink()
    if not egg:
        meta.parent.rmdir()
    assert installed_packages(kept) == before


def test_a_list_read_while_an_egg_info_had_just_changed_is_not_kept(
    tmp_path: Path, site: Path
) -> None:
    meta = _install(site, "demo", "1.0", egg=True)
    # times in the future: whatever the clock says, they have not settled
    future = time.time_ns() + 3_600 * 10**9
    os.utime(meta, ns=(future, future))
    kept = tmp_path / "packages.json"
    assert installed_packages(kept)["demo"] == "1.0"
    assert not kept.exists()
    os.utime(meta, ns=(future - 7_200 * 10**9,) * 2)
    _settle(meta)  # its ctime moved with the utime
    assert installed_packages(kept)["demo"] == "1.0"
    assert kept.exists()


@pytest.mark.parametrize(
    "damage",
    [b"", b"{not json", b"[]", b'{"key": 1, "packages": {}}', b'{"packages": {"x": 1}}'],
    ids=["empty", "torn", "list", "other key", "no key"],
)
def test_a_damaged_kept_list_is_read_again_from_the_metadata(tmp_path: Path, damage: bytes) -> None:
    kept = tmp_path / "packages.json"
    kept.write_bytes(damage)
    assert installed_packages(kept) == read_packages()


def test_a_kept_list_with_a_stranger_in_it_is_not_trusted(tmp_path: Path, site: Path) -> None:
    _settle(_install(site, "demo", "1.0"))
    kept = tmp_path / "packages.json"
    installed_packages(kept)
    data = json.loads(kept.read_text())
    data["packages"]["demo"] = 1  # not a version string
    kept.write_text(json.dumps(data))
    assert installed_packages(kept)["demo"] == "1.0"


def test_the_environment_a_run_records_is_the_same_with_a_kept_list(tmp_path: Path) -> None:
    kept = tmp_path / "packages.json"
    fresh = capture_environment([])
    assert capture_environment([], kept).packages == fresh.packages
    assert kept.exists()
    assert capture_environment([], kept).packages == fresh.packages
