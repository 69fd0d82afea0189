"""What a run records about its surroundings: the code version (git) and the environment.

The git patch covers staged, unstaged and untracked changes of the whole repository. It is made
with a throwaway index and a throwaway object folder, so the user's index and ``.git/objects``
are never touched.
"""

from __future__ import annotations

import fnmatch
import getpass
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import TracebackType

from labledger.archive.store import BlobStore
from labledger.runner.packages import installed_packages
from labledger.runner.record import CodeVersion, EnvironmentInfo

__all__ = ["MAX_UNTRACKED_BYTES", "CodeCapture", "capture_code", "capture_environment"]

#: untracked files larger than this are listed but left out of the patch (data, not code)
MAX_UNTRACKED_BYTES = 5 * 1024 * 1024
_GIT_TIMEOUT = 60


def _git(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> bytes:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=_GIT_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            result.stderr.decode(errors="replace").strip() or f"git {args[0]} failed"
        )
    return result.stdout


def capture_code(experiment_dir: Path, store: BlobStore, exclude: list[str]) -> CodeVersion:
    """Commit, branch and the full patch of uncommitted changes of the git repo holding the folder.

    ``exclude`` holds folders (relative to ``experiment_dir``) to leave out, such as
    ``outputs``. Outside a git repository, or without git, the result says so.
    """
    if shutil.which("git") is None:
        return CodeVersion(vcs="none", error="git is not installed")
    # One git process answers the usual case (each costs milliseconds, on every run): the
    # top folder, the git folder, the commit and the branch ("HEAD" when detached).
    ask = ["rev-parse", "--show-toplevel", "--absolute-git-dir"]
    try:
        head = ["HEAD", "--symbolic-full-name", "HEAD", "--"]
        top, git_dir, commit, ref = _git([*ask, *head], experiment_dir).decode().splitlines()[:4]
    except (RuntimeError, subprocess.TimeoutExpired, ValueError):
        try:  # a repository without commits yet, or none at all
            top, git_dir = _git(ask, experiment_dir).decode().splitlines()[:2]
        except (RuntimeError, subprocess.TimeoutExpired, ValueError):
            return CodeVersion(vcs="none")
        commit = ref = ""
    root = Path(top)
    code = CodeVersion(
        vcs="git",
        repo_root=str(root),
        commit=commit or None,
        branch=ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None,
    )
    try:
        _fill_git(code, root, Path(git_dir), experiment_dir, store, exclude)
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        code.error = f"git capture incomplete: {exc}"
    return code


class CodeCapture:
    """:func:`capture_code` in a thread, so its git processes run while the recorder does other
    work (archiving the scripts, capturing the environment) instead of before it.

    Use as a context manager: leaving the block waits for the thread, so no git process it
    started outlives the block. :meth:`result` returns what :func:`capture_code` returned, or
    raises what it raised.
    """

    def __init__(self, experiment_dir: Path, store: BlobStore, exclude: list[str]) -> None:
        self._args = (experiment_dir, store, exclude)
        self._code: CodeVersion | None = None
        self._error: BaseException | None = None
        # a daemon: an interpreter ending on an error elsewhere does not wait for git
        self._thread = threading.Thread(target=self._capture, name="labledger-code", daemon=True)

    def _capture(self) -> None:
        try:
            self._code = capture_code(*self._args)
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc

    def __enter__(self) -> CodeCapture:
        self._thread.start()
        return self

    def result(self) -> CodeVersion:
        """Wait for the capture; its result, or its error raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._code is not None
        return self._code

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._thread.join()


def _fill_git(
    code: CodeVersion,
    root: Path,
    git_dir: Path,
    experiment_dir: Path,
    store: BlobStore,
    exclude: list[str],
) -> None:
    rel = experiment_dir.resolve().relative_to(root.resolve())
    excludes = [f":(top,exclude){(rel / e).as_posix()}" for e in exclude]
    if code.commit and _clean(root, excludes):
        return  # nothing differs from the commit: no patch to make (one git process, not five)
    with tempfile.TemporaryDirectory(prefix="labledger-git-") as tmp:
        env = {
            **os.environ,
            "GIT_INDEX_FILE": str(Path(tmp) / "index"),
            "GIT_OBJECT_DIRECTORY": str(Path(tmp) / "objects"),
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(git_dir / "objects"),
        }
        (Path(tmp) / "objects").mkdir()
        if code.commit:
            _git(["read-tree", code.commit], root, env)
        _git(["add", "-u", "--", ":/", *excludes], root, env)
        # With the throwaway index holding HEAD, "others" are all files new since HEAD: both
        # untracked ones and ones the user staged but did not commit.
        listed = _git(
            ["ls-files", "-z", "--others", "--exclude-standard", "--", ":/", *excludes], root, env
        )
        new_files = [p for p in listed.decode().split("\0") if p]
        small = [p for p in new_files if (root / p).stat().st_size <= MAX_UNTRACKED_BYTES]
        code.skipped_untracked = sorted(set(new_files) - set(small))
        if small:
            listing = Path(tmp) / "untracked"
            listing.write_bytes(b"\0".join(p.encode() for p in small))
            _git(["add", "-f", f"--pathspec-from-file={listing}", "--pathspec-file-nul"], root, env)
        base = (
            code.commit
            or _git(["hash-object", "-t", "tree", "/dev/null"], root, env).decode().strip()
        )
        names = _git(["diff", "--cached", "--name-only", "-z", base], root, env).decode()
        code.changed_files = [n for n in names.split("\0") if n]
        if code.changed_files:
            patch = _git(["diff", "--cached", "--binary", "--no-color", base], root, env)
            blob = store.put_bytes(patch)
            code.patch_digest, code.patch_size = blob.digest, blob.size
    code.dirty = bool(code.changed_files or code.skipped_untracked)


def _clean(root: Path, excludes: list[str]) -> bool:
    """True when nothing under ``root`` (but ``excludes``) differs from the commit: no staged,
    unstaged or untracked change, submodules included. Reads the index without writing it."""
    status = _git(
        [
            "--no-optional-locks",
            "status",
            "--porcelain",
            "-z",
            "--untracked-files=all",
            "--ignore-submodules=none",
            "--",
            ":/",
            *excludes,
        ],
        root,
    )
    return not status


def _gpus() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            timeout=10,
            check=False,
            text=True,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def capture_environment(patterns: list[str], kept_packages: Path | None = None) -> EnvironmentInfo:
    """Python and its packages, OS, host, user, CPU/GPU, and env vars matching ``patterns``.

    ``kept_packages`` is the file that keeps the package list between runs (see
    :mod:`labledger.runner.packages`); without it, every package's metadata is read.
    """
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    env_vars = {
        key: value
        for key, value in sorted(os.environ.items())
        if any(fnmatch.fnmatchcase(key, pat) for pat in patterns)
    }
    return EnvironmentInfo(
        python_version=sys.version.split()[0],
        python_executable=sys.executable,
        packages=installed_packages(kept_packages),
        os=platform.platform(),
        host=socket.gethostname(),
        user=user,
        cpu=_cpu_model(),
        cpu_count=os.cpu_count(),
        gpus=_gpus(),
        env_vars=env_vars,
    )
