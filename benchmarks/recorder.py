"""Recorder: archive throughput against ``cp -r``, re-archive cost, and CLI start-up time.

1. An outputs folder of mixed file sizes (1 GB by default: a few large files, some medium, many
   small ones; every file's content is different, so nothing is deduplicated) is archived by
   ``archive_tree`` (the step that stores a run's outputs/ into the content-addressed store, with
   an fsync per new blob) and copied by ``cp -r`` to the same disk, in the same run. ``cp -r`` is
   timed before and after the archive; the reference is the faster of the two. The folder was
   just written, so both read it from the page cache.
2. The same, unchanged folder is archived again: the bytes the store grows by, and the size of
   the manifest a run record would carry for it.
3. ``labledger --help`` and ``labledger list`` (in an experiment folder holding 3 runs) start-up
   time, with hyperfine when installed (else repeated subprocess timing), next to
   ``python -c pass``: the median wall time, and the CPU time (user + system), which other work
   on a shared machine disturbs far less.

    python benchmarks/recorder.py                 # 1 GB
    python benchmarks/recorder.py --quick         # 5 MB
    python benchmarks/recorder.py --size-mb 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import heading, machine, table, workdir

from labledger.archive.manifest import archive_tree
from labledger.archive.store import BlobStore

#: (share of the total, size of one file)
MIX = [
    (0.40, 200 << 20),
    (0.30, 30 << 20),
    (0.12, 1 << 20),
    (0.10, 64 << 10),
    (0.08, 4 << 10),
]


def make_outputs(root: Path, total: int, rnd: random.Random) -> tuple[int, int, str]:
    """Write the mixed folder; returns (files, bytes, the mix in words)."""
    files = written = 0
    mix = []
    for share, size in MIX:
        size = min(size, max(1024, int(total * share)))
        count = max(1, int(total * share) // size)
        mix.append(f"{count:,} x {size / 1024:,.0f} KiB")
        for i in range(count):
            folder = root / f"s{size}" / f"d{i // 200}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"f{i}.bin").write_bytes(rnd.randbytes(size))
            files += 1
            written += size
    return files, written, ", ".join(mix)


def tree_bytes(root: Path) -> int:
    total = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            total += os.lstat(os.path.join(folder, name)).st_size
    return total


def time_cp(src: Path, dst: Path) -> float:
    shutil.rmtree(dst, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    elapsed = time.perf_counter() - t0
    shutil.rmtree(dst)
    return elapsed


def archive_figures(tmp: Path, size_mb: float) -> list[list[Any]]:
    src = tmp / "outputs"
    files, total, mix = make_outputs(src, int(size_mb * (1 << 20)), random.Random(11))
    mb = total / 1e6
    print(f"outputs folder: {files:,} files, {mb:,.0f} MB ({mix})", flush=True)
    cp_before = time_cp(src, tmp / "copy")
    store = BlobStore(tmp / "store")
    t0 = time.perf_counter()
    entries, skipped = archive_tree(store, src, prefix="outputs/")
    first = time.perf_counter() - t0
    cp_after = time_cp(src, tmp / "copy")
    cp = min(cp_before, cp_after)
    assert not skipped and sum(e.size or 0 for e in entries) == total
    stored = tree_bytes(store.root)
    t0 = time.perf_counter()
    again, _ = archive_tree(store, src, prefix="outputs/")
    second = time.perf_counter() - t0
    added = tree_bytes(store.root) - stored
    manifest = len(json.dumps([e.model_dump(mode="json", exclude_none=True) for e in again]))
    return [
        ["cp -r (reference)", mb / cp, cp, 1.0, "-"],
        ["archive_tree, first archive", mb / first, first, (mb / first) / (mb / cp), stored],
        ["archive_tree, unchanged again", mb / second, second, (mb / second) / (mb / cp), added],
        ["  manifest of that run (JSON)", "-", "-", "-", manifest],
    ]


def hyperfine(
    commands: dict[str, list[str]], cwd: Path, runs: int
) -> dict[str, tuple[float, float]]:
    """(median wall seconds, mean user+system CPU seconds) of each command."""
    out: dict[str, tuple[float, float]] = {}
    if shutil.which("hyperfine"):
        export = cwd / "hyperfine.json"
        names = list(commands)
        subprocess.run(
            [
                "hyperfine",
                "-N",
                "--style",
                "none",
                "--warmup",
                "3",
                "--runs",
                str(runs),
                "--export-json",
                str(export),
                *[shlex.join(commands[n]) for n in names],
            ],
            cwd=cwd,
            check=True,
            capture_output=True,
        )
        results = json.loads(export.read_text())["results"]
        return {
            n: (r["median"], r["user"] + r["system"]) for n, r in zip(names, results, strict=True)
        }
    for name, cmd in commands.items():
        samples = []
        cpu = 0.0
        for i in range(runs + 3):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
            if i >= 3:
                samples.append(time.perf_counter() - t0)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu += after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        out[name] = (statistics.median(samples), cpu / runs)
    return out


def startup_figures(tmp: Path, runs: int) -> list[list[Any]]:
    exe = Path(sys.executable).parent / "labledger"
    labledger = [str(exe)] if exe.exists() else [sys.executable, "-m", "labledger.cli.main"]
    exp = tmp / "experiment"
    exp.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.org",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.org",
    }

    def run(*args: str) -> None:
        subprocess.run(args, cwd=exp, env=env, check=True, capture_output=True)

    run("git", "init", "-q", "-b", "main")
    run(*labledger, "init", "--name", "startup")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "experiment")
    for i in range(3):
        run(*labledger, "new", "--name", f"run {i}", "--hypothesis", "it starts fast")
        run(*labledger, "run")
    medians = hyperfine(
        {
            "python -c pass": [sys.executable, "-c", "pass"],
            "labledger --help": [*labledger, "--help"],
            "labledger list": [*labledger, "list"],
        },
        exp,
        runs,
    )
    tool = "hyperfine" if shutil.which("hyperfine") else "subprocess"
    return [[name, wall * 1000, cpu * 1000, tool] for name, (wall, cpu) in medians.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 MB, 5 start-ups (for CI)")
    parser.add_argument("--size-mb", type=float, default=None)
    args = parser.parse_args()
    size_mb = args.size_mb or (5 if args.quick else 1024)

    heading("Recorder: archive throughput, re-archive cost, start-up time")
    print(f"machine: {machine()}")
    with workdir("recorder") as tmp:
        rows = archive_figures(tmp, size_mb)
        print()
        print(table(["what", "MB/s", "seconds", "x cp -r", "bytes stored / added"], rows))
        startup = startup_figures(tmp, 5 if args.quick else 20)
        print()
        print(table(["command", "median ms", "CPU ms (user+sys)", "timed with"], startup))
    ratio = rows[1][3]
    added = rows[2][4]
    help_ms, help_cpu = next((r[1], r[2]) for r in startup if r[0] == "labledger --help")
    print(
        f"\ntargets: first archive >= 0.7x cp -r: {ratio:.2f}x "
        f"({'met' if ratio >= 0.7 else 'NOT met'}); re-archive adds < 1 MB: {added:,} bytes "
        f"({'met' if added < 1e6 else 'NOT met'}); --help < 200 ms: {help_ms:.0f} ms "
        f"({'met' if help_ms < 200 else 'NOT met'}; CPU {help_cpu:.0f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
