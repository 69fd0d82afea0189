"""The Python packages a run records: read from their metadata, or kept since they last changed.

Reading every installed distribution's metadata costs a run tens of milliseconds (importing
``importlib.metadata`` and reading a file per package), and the list changes only when a
package is installed, upgraded or removed. So the list is kept in the experiment's state folder
with a key that any such change moves: the interpreter, ``sys.path``, and for each folder on it
the names of its ``*.dist-info`` and ``*.egg-info`` entries (a dist-info is named after its
version and replaced whole) and the stat of each egg-info's metadata file (which may be
rewritten in place). A run whose key is the same reads the kept list; any other reads the
metadata and keeps the new list.

As with the archive's stat cache, times vouch for a file only once they have settled: a list
read less than a settling time after an egg-info's metadata changed is not kept, since a second
change in the same clock tick would leave that file's times as they were.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from labledger.archive.statcache import settling_time, stat_key
from labledger.runner.files import write_json_atomic

__all__ = ["installed_packages", "read_packages"]

_METADATA_DIRS = (".dist-info", ".egg-info")


def installed_packages(kept: Path | None = None) -> dict[str, str]:
    """Name -> version of each distribution this interpreter finds, sorted by name ignoring
    case; with ``kept``, the list kept in that file when the environment is as it was then."""
    if kept is None:
        return read_packages()
    key, changed_ns = _environment_key()
    found = _load(kept, key)
    if found is not None:
        return found
    read_at = time.time_ns()
    packages = read_packages()
    if all(read_at - at >= settle for at, settle in changed_ns):
        write_json_atomic(kept, json.dumps({"key": key, "packages": packages}))
    return packages


def read_packages() -> dict[str, str]:
    """Name -> version of each distribution, read from its metadata, sorted as
    :func:`installed_packages` sorts them."""
    # Imported here: tens of milliseconds that a run with a kept list does not pay.
    import importlib.metadata

    packages = {}
    for dist in importlib.metadata.distributions():
        name, version = _name_and_version(dist.read_text("METADATA") or dist.read_text("PKG-INFO"))
        if name:
            packages[name] = version
    return dict(sorted(packages.items(), key=lambda kv: kv[0].lower()))


def _name_and_version(text: str | None) -> tuple[str, str]:
    """A distribution's Name and Version, read from the headers of its metadata file.

    ``dist.metadata`` parses the whole file (description included) with the email parser,
    twice per package counting ``dist.version``: most of the work with 150 packages.
    """
    found: dict[str, str] = {}
    for line in (text or "").splitlines():
        if not line:
            break  # the headers end at the first blank line
        name, sep, value = line.partition(":")
        if sep and name in ("Name", "Version") and name not in found:
            found[name] = value.strip()
            if len(found) == 2:
                break
    return found.get("Name", ""), found.get("Version", "")


def _environment_key() -> tuple[list[Any], list[tuple[int, int]]]:
    """What any install, upgrade or removal changes (JSON-ready), and for each file whose
    stat is part of it the time of its last change with the settling time it needs.

    A dist-info folder is named after its distribution and version, and installers replace it
    whole: its name stands for its content. An egg-info may be rewritten in place: the stat of
    its metadata file stands for it.
    """
    entries: list[Any] = []
    changed: list[tuple[int, int]] = []
    for entry in sys.path:
        folder = Path(entry or ".")
        try:
            with os.scandir(folder) as listing:
                found = sorted(
                    (e.name, e.is_dir()) for e in listing if e.name.endswith(_METADATA_DIRS)
                )
        except OSError:  # a zip file, or missing: its stat (or its absence) stands for it
            entries.append([entry, _stat_or_none(folder, changed)])
            continue
        for name, is_dir in found:
            if name.endswith(".dist-info"):
                entries.append([entry, name])
                continue
            meta = folder / name / "PKG-INFO" if is_dir else folder / name
            entries.append([entry, name, _stat_or_none(meta, changed)])
    return [sys.executable, entries], changed


def _stat_or_none(path: Path, changed: list[tuple[int, int]]) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    changed.append((max(st.st_mtime_ns, st.st_ctime_ns), settling_time(st)))
    return list(stat_key(st))


def _load(kept: Path, key: list[Any]) -> dict[str, str] | None:
    """The kept list when it was kept under ``key``; None when absent, unreadable or stale."""
    try:
        data = json.loads(kept.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    packages = data.get("packages")
    if not isinstance(packages, dict):
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in packages.items()):
        return None
    return packages
