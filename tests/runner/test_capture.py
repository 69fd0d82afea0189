"""Code version and environment capture in real git repositories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from labledger.archive.store import BlobStore
from labledger.runner.capture import (
    MAX_UNTRACKED_BYTES,
    CodeCapture,
    capture_code,
    capture_environment,
)
from runner.recorder_support import git


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    s = BlobStore(tmp_path / "store")
    s.create()
    return s


def _objects(repo: Path) -> list[str]:
    return sorted(str(p) for p in (repo / ".git" / "objects").rglob("*") if p.is_file())


def test_patch_holds_unstaged_staged_and_untracked_changes_and_leaves_git_untouched(
    tmp_path: Path, store: BlobStore
) -> None:
    repo = tmp_path / "repo"
    (repo / "exp" / "outputs").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "trunk")
    (repo / "lib.py").write_text("x = 1\n")
    (repo / "exp" / "run.sh").write_text("echo one\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    (repo / "lib.py").write_text("x = 2\n")  # unstaged change, outside the experiment folder
    (repo / "exp" / "staged.py").write_text("staged = True\n")
    git(repo, "add", "exp/staged.py")  # staged, never committed
    (repo / "exp" / "new.txt").write_text("untracked\n")
    (repo / "exp" / "outputs" / "result.bin").write_bytes(b"excluded")
    (repo / "exp" / "big.dat").write_bytes(b"0" * (MAX_UNTRACKED_BYTES + 1))
    status_before = git(repo, "status", "--porcelain")
    index_before = (repo / ".git" / "index").read_bytes()
    objects_before = _objects(repo)

    code = capture_code(repo / "exp", store, exclude=["outputs"])

    assert (repo / ".git" / "index").read_bytes() == index_before
    assert _objects(repo) == objects_before
    assert git(repo, "status", "--porcelain") == status_before
    assert code.vcs == "git"
    assert code.commit == git(repo, "rev-parse", "HEAD").strip()
    assert code.branch == "trunk"
    assert code.dirty
    assert code.changed_files == ["exp/new.txt", "exp/staged.py", "lib.py"]
    assert code.skipped_untracked == ["exp/big.dat"]
    assert code.patch_digest is not None
    patch = store.get(code.patch_digest).decode()
    assert "+x = 2" in patch and "+staged = True" in patch and "+untracked" in patch
    assert "result.bin" not in patch
    # the patch applied to a clean clone of the commit recreates the changes
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    (tmp_path / "p.diff").write_text(patch)
    git(clone, "apply", str(tmp_path / "p.diff"))
    assert (clone / "lib.py").read_text() == "x = 2\n"
    assert (clone / "exp" / "new.txt").read_text() == "untracked\n"
    assert (clone / "exp" / "staged.py").read_text() == "staged = True\n"


def test_a_capture_in_the_background_records_what_one_in_the_foreground_does(
    tmp_path: Path, store: BlobStore
) -> None:
    repo = tmp_path / "repo"  # beside the store, not holding it
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a")
    (repo / "a.txt").write_text("changed\n")
    (repo / "new.txt").write_text("new\n")
    with CodeCapture(repo, store, exclude=[]) as pending:
        in_background = pending.result()
    assert in_background == capture_code(repo, store, exclude=[])
    assert in_background.commit == git(repo, "rev-parse", "HEAD").strip()
    assert in_background.changed_files == ["a.txt", "new.txt"]
    assert in_background.patch_digest is not None
    assert "+changed" in store.get(in_background.patch_digest).decode()


def test_an_error_of_a_capture_in_the_background_is_raised_by_its_result(
    tmp_path: Path, store: BlobStore
) -> None:
    gone = tmp_path / "gone"  # git cannot even start in a folder that does not exist
    with pytest.raises(FileNotFoundError):
        capture_code(gone, store, exclude=[])
    with CodeCapture(gone, store, exclude=[]) as pending, pytest.raises(FileNotFoundError):
        pending.result()


def test_a_clean_repository_has_no_patch(tmp_path: Path, store: BlobStore) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "a.txt").write_text("a\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "a")
    code = capture_code(tmp_path, store, exclude=[])
    assert (code.dirty, code.patch_digest, code.changed_files) == (False, None, [])


@pytest.mark.parametrize(
    ("change", "changed"),
    [
        ("unstaged", ["exp/run.sh"]),
        ("staged", ["exp/run.sh"]),
        ("untracked", ["exp/new.txt"]),
        ("deleted", ["exp/run.sh"]),
        ("in-an-excluded-folder", []),
        ("ignored", []),
    ],
)
def test_a_single_change_of_any_kind_makes_the_code_dirty_unless_left_out(
    tmp_path: Path, store: BlobStore, change: str, changed: list[str]
) -> None:
    repo = tmp_path / "repo"
    (repo / "exp" / "outputs").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitignore").write_text("*.log\n")
    (repo / "exp" / "run.sh").write_text("echo one\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    if change in ("unstaged", "staged"):
        (repo / "exp" / "run.sh").write_text("echo two\n")
        if change == "staged":
            git(repo, "add", "exp/run.sh")
    elif change == "untracked":
        (repo / "exp" / "new.txt").write_text("new\n")
    elif change == "deleted":
        (repo / "exp" / "run.sh").unlink()
    elif change == "in-an-excluded-folder":
        (repo / "exp" / "outputs" / "result.bin").write_bytes(b"out")
    else:
        (repo / "exp" / "debug.log").write_text("ignored\n")
    index_before = (repo / ".git" / "index").read_bytes()
    code = capture_code(repo / "exp", store, exclude=["outputs"])
    assert (code.changed_files, code.dirty, code.error) == (changed, bool(changed), None)
    assert (code.patch_digest is not None) == bool(changed)
    assert (repo / ".git" / "index").read_bytes() == index_before


def test_a_detached_head_has_its_commit_and_no_branch(tmp_path: Path, store: BlobStore) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "HEAD").write_text("a file named like the ref\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "a")
    git(tmp_path, "checkout", "-q", "--detach")
    (tmp_path / "sub").mkdir()
    code = capture_code(tmp_path / "sub", store, exclude=[])
    assert code.commit == git(tmp_path, "rev-parse", "HEAD").strip()
    assert (code.branch, code.repo_root, code.error) == (None, str(tmp_path), None)


def test_a_repository_without_commits_records_everything_as_changes(
    tmp_path: Path, store: BlobStore
) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("a\n")
    code = capture_code(tmp_path, store, exclude=[])
    assert code.commit is None
    assert code.changed_files == ["a.txt"]
    assert code.error is None


def test_a_folder_outside_git_says_so(tmp_path: Path, store: BlobStore) -> None:
    os.environ.get("GIT_DIR")  # capture must not depend on it
    (tmp_path / "plain").mkdir()
    code = capture_code(tmp_path / "plain", store, exclude=[])
    assert code.vcs == "none"
    assert code.commit is None


def test_environment_lists_python_packages_host_and_chosen_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_SEED", "42")
    monkeypatch.setenv("MY_OTHER", "x")
    monkeypatch.setenv("SECRET_TOKEN", "hidden")
    env = capture_environment(["MY_*"])
    assert env.env_vars == {"MY_OTHER": "x", "MY_SEED": "42"}
    assert "pydantic" in {name.lower() for name in env.packages}
    assert env.python_version.count(".") == 2
    assert env.host and env.os and env.cpu_count


def test_packages_are_named_and_versioned_as_their_full_metadata_says() -> None:
    import importlib.metadata

    expected = {
        d.metadata["Name"]: d.version
        for d in importlib.metadata.distributions()
        if d.metadata["Name"]
    }
    assert capture_environment([]).packages == dict(
        sorted(expected.items(), key=lambda kv: kv[0].lower())
    )


def test_the_capture_module_leaves_the_package_metadata_import_to_the_environment_capture() -> None:
    # A run starts its git processes first; the metadata import (tens of ms) runs beside them.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, labledger.runner.capture; print('importlib.metadata' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "False"
