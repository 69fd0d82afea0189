"""A run's recorded code: does today's code differ, and a copy of it to run again.

The recorded code is the run's git commit plus its patch (staged, unstaged and untracked
changes). :func:`materialize` writes that tree into a new folder with ``git archive`` and
``git apply``; the user's repository, index and working tree are left as they are.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from labledger.archive.store import BlobStore
from labledger.errors import Conflict
from labledger.runner.record import CodeVersion

__all__ = ["code_difference", "materialize"]

_GIT_TIMEOUT = 120


def code_difference(recorded: CodeVersion | None, now: CodeVersion | None) -> str | None:
    """How today's code differs from the recorded code, in words; None when it is the same."""
    if recorded is None or recorded.vcs != "git" or now is None or now.vcs != "git":
        return None
    parts: list[str] = []
    if recorded.commit != now.commit:
        parts.append(f"the commit is {_short(now.commit)}, the run had {_short(recorded.commit)}")
    if recorded.patch_digest != now.patch_digest:
        if recorded.patch_digest and now.patch_digest:
            parts.append("the uncommitted changes differ")
        elif recorded.patch_digest:
            parts.append("the run had uncommitted changes")
        else:
            parts.append("there are uncommitted changes now")
    return "; ".join(parts) or None


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "no commit"


def _git(args: list[str], cwd: Path, stdin: bytes | None = None) -> bytes:
    done = subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, timeout=_GIT_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise Conflict(
            f"Cannot restore the recorded code (git {args[0]}): "
            f"{done.stderr.decode(errors='replace').strip()}"
        )
    return done.stdout


def materialize(code: CodeVersion, store: BlobStore, repo: Path, dest: Path) -> None:
    """Write ``repo``'s recorded commit plus the recorded patch into the new folder ``dest``."""
    if code.vcs != "git" or not code.commit:
        raise Conflict(
            "The run recorded no git commit, so its code cannot be restored; "
            "rerun it with today's code (without --at-recorded-code)"
        )
    archive = _git(["archive", "--format=tar", code.commit], repo)
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    if code.patch_digest:
        patch = store.get(code.patch_digest)
        if patch.strip():
            _git(["apply", "--whitespace=nowarn", "-"], dest, stdin=patch)
