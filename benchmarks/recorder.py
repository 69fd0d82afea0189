"""Recorder: archive throughput against ``cp -r``, re-archive cost, and CLI start-up time.

1. An outputs folder of mixed file sizes (1 GB by default: a few large files, some medium, many
   small ones; every file's content is different, so nothing is deduplicated) is archived by
   ``archive_tree`` (the step that stores a run's outputs/ into the content-addressed store, with
   an fsync per new blob) and copied by ``cp -r`` to the same disk, in the same run. ``cp -r`` is
   timed before and after the archive; the reference is the faster of the two. The folder was
   just written, so both read it from the page cache.
2. The same, unchanged folder is archived again: the bytes the store grows by, and the size of
   the manifest a run record would carry for it. Then again once the store also holds
   two other runs' outputs (the copies ``cp -r`` made, archived into the same store first), as
   the store of an experiment with many runs does.
3. A folder of a few large files only (a quarter of the size): archive against ``cp -r``.
4. The recorder's own cost in an experiment folder holding 1,000 runs (50 with ``--quick``):
   ``labledger run`` of a trivial run minus the time its four scripts took (their durations
   in the record), and ``new``, ``end``, ``show``, ``list``, ``--help``, with hyperfine when
   installed (else repeated subprocess timing), next to ``python -c pass``: the median wall
   time, and the CPU time (user + system), which other work on a shared machine disturbs far
   less. The package is byte-compiled first and the commands run with bytecode caching on, as
   an installed labledger does (``PYTHONDONTWRITEBYTECODE`` would make every start-up compile
   labledger's sources again). With ``--reference-src``, the same commands of another version
   of the code (its ``src`` folder) alternate with this code's in the same folder.

The 1-minute load average is printed before and after each part: on a shared machine, read the
ratios (taken in the same run) rather than the absolute figures.

    python benchmarks/recorder.py                 # 1 GB
    python benchmarks/recorder.py --quick         # 5 MB
    python benchmarks/recorder.py --size-mb 200
    python benchmarks/recorder.py --archive-only  # parts 1-3 only
    python benchmarks/recorder.py --startup-only  # part 4 only, in a folder of 1,000 runs
    python benchmarks/recorder.py --startup-only --reference-src /path/to/other/src  # beside it
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

import msgspec
from _common import LAUNCH, heading, loadavg, machine, table, workdir

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


#: other runs' outputs in the store for the last re-archive of part 2 (cp -r's copies)
OTHER_RUNS = ("copy-before", "copy-after")


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


def time_cp(src: Path, dst: Path) -> tuple[float, float, float]:
    """Seconds of ``cp -r src dst``, of the same followed by ``sync -f`` (durable on disk,
    as an archive is), and the CPU seconds (user + system) of ``cp``.

    The copy is left in place (the caller removes the copies at the end): removing thousands
    of files right before the archive would handicap the archive alone, as ext4 without a
    journal scans the inodes freed in the last moments on every file it creates after that
    (``recently_deleted``); it cost the first archive several seconds of kernel CPU.
    """
    subprocess.run(["sync", "-f", str(src.parent)], check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["sync", "-f", str(dst)], check=True)
    durable = time.perf_counter() - t0
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, durable, cpu


def archive_figures(tmp: Path, size_mb: float) -> list[list[Any]]:
    src = tmp / "outputs"
    files, total, mix = make_outputs(src, int(size_mb * (1 << 20)), random.Random(11))
    mb = total / 1e6
    print(f"outputs folder: {files:,} files, {mb:,.0f} MB ({mix})", flush=True)
    print(f"load average before: {loadavg()}", flush=True)
    cp_before = time_cp(src, tmp / "copy-before")
    store = BlobStore(tmp / "store")
    t0, c0 = time.perf_counter(), time.process_time()
    entries, skipped = archive_tree(store, src, prefix="outputs/")
    first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    cp_after = time_cp(src, tmp / "copy-after")
    cp = min(cp_before[0], cp_after[0])
    cp_sync = min(cp_before[1], cp_after[1])
    assert not skipped and sum(e.size or 0 for e in entries) == total
    stored = tree_bytes(store.root / "objects")
    t0, c0 = time.perf_counter(), time.process_time()
    again, _ = archive_tree(store, src, prefix="outputs/")
    second, second_cpu = time.perf_counter() - t0, time.process_time() - c0
    added = tree_bytes(store.root / "objects") - stored
    manifest = len(
        json.dumps(
            [{k: v for k, v in msgspec.structs.asdict(e).items() if v is not None} for e in again]
        )
    )
    # Other runs' outputs in the same store: the two copies cp -r made (hard links would not
    # do: making one changes the file's change time), archived once each.
    for other in OTHER_RUNS:
        archive_tree(store, tmp / other, prefix="outputs/")
    time.sleep(0.2)  # their hashes settle, as the folder's own did during the re-archive above
    t0, c0 = time.perf_counter(), time.process_time()
    archive_tree(store, src, prefix="outputs/")
    among, among_cpu = time.perf_counter() - t0, time.process_time() - c0
    # CPU time (all threads; cp's own process) is disturbed far less by a shared machine.
    cp_cpu = min(cp_before[2], cp_after[2])
    print(
        f"CPU seconds (user + system): cp -r {cp_cpu:.2f}, first archive {first_cpu:.2f} "
        f"({cp_cpu / first_cpu:.2f}x cp -r), unchanged again {second_cpu:.3f} "
        f"({second_cpu / first_cpu:.0%} of the first), among {len(OTHER_RUNS)} other runs "
        f"{among_cpu:.3f} ({among_cpu / first_cpu:.0%})",
        flush=True,
    )
    print(f"load average after: {loadavg()}", flush=True)
    return [
        ["cp -r (reference)", mb / cp, cp, 1.0, "-"],
        ["  cp -r, then sync -f", mb / cp_sync, cp_sync, cp / cp_sync, "-"],
        ["archive_tree, first archive", mb / first, first, (mb / first) / (mb / cp), stored],
        [
            f"archive_tree, unchanged again ({second / first:.0%} of the first)",
            mb / second,
            second,
            (mb / second) / (mb / cp),
            added,
        ],
        ["  manifest of that run (JSON)", "-", "-", "-", manifest],
        [
            f"  again, among {len(OTHER_RUNS)} other runs ({among / first:.0%} of the first)",
            mb / among,
            among,
            (mb / among) / (mb / cp),
            "-",
        ],
    ]


def large_file_figures(tmp: Path, size_mb: float) -> list[list[Any]]:
    """Archive against cp -r on a folder of a few large files (a quarter of ``size_mb``)."""
    src = tmp / "large"
    src.mkdir()
    total = int(size_mb * (1 << 20)) // 4
    one = min(128 << 20, max(1 << 20, total // 2))
    rnd = random.Random(12)
    for i in range(max(1, total // one)):
        (src / f"big{i}.bin").write_bytes(rnd.randbytes(one))
    mb = tree_bytes(src) / 1e6
    print(f"large files: {mb:,.0f} MB in files of {one >> 20} MiB; load {loadavg()}", flush=True)
    cp_before = time_cp(src, tmp / "copy-large-before")
    t0 = time.perf_counter()
    archive_tree(BlobStore(tmp / "store-large"), src)
    first = time.perf_counter() - t0
    cp_after = time_cp(src, tmp / "copy-large-after")
    cp = min(cp_before[0], cp_after[0])
    cp_sync = min(cp_before[1], cp_after[1])
    print(f"load average after: {loadavg()}", flush=True)
    return [
        ["cp -r of large files (reference)", mb / cp, cp, 1.0, "-"],
        ["  cp -r, then sync -f", mb / cp_sync, cp_sync, cp / cp_sync, "-"],
        ["archive_tree, large files", mb / first, first, (mb / first) / (mb / cp), "-"],
    ]


def hyperfine(
    commands: dict[str, list[str]], cwd: Path, runs: int, env: dict[str, str] | None = None
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
            env=env,
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
            subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
            if i >= 3:
                samples.append(time.perf_counter() - t0)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu += after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        out[name] = (statistics.median(samples), cpu / runs)
    return out


def labledger_command() -> list[str]:
    exe = Path(sys.executable).parent / "labledger"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "labledger"]


def clone_runs(exp: Path, count: int) -> None:
    """Fill the folder's store up to ``count`` runs with copies of its oldest record."""
    from labledger.core.ids import new_ulid

    runs = exp / ".labledger" / "runs"
    existing = sorted(runs.glob("*.json"))
    base = json.loads(existing[0].read_text())
    # ULIDs sort by time: the copies are newer, so renumber the real runs below them.
    for number, path in enumerate(existing, 1):
        record = json.loads(path.read_text())
        record["number"] = number
        path.write_text(json.dumps(record))
    for number in range(len(existing) + 1, count + 1):
        run_id = new_ulid()
        record = {
            **base,
            "number": number,
            "experiment": {
                **base["experiment"],
                "experiment_id": run_id,
                "run_name": f"copy {number}",
            },
        }
        (runs / f"{run_id}.json").write_text(json.dumps(record))


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, user+system CPU seconds) of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def startup_figures(
    tmp: Path, runs: int, folder_runs: int, reference_src: Path | None = None
) -> list[list[Any]]:
    """Part 4; with ``reference_src``, the same commands of the code there too, alternating
    with this code's (both through the same ``python -c`` launcher, the same folder)."""
    labledger = labledger_command()
    exp = tmp / "experiment"
    exp.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.org",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.org",
    }
    # An installed labledger has its bytecode cached; time that, not compiling its sources.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    import labledger as package

    packages = [Path(package.__file__).parent]
    if reference_src is not None:
        packages.append(reference_src / "labledger")
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *map(str, packages)],
        env=env,
        check=False,
        capture_output=True,
    )

    def run(*args: str) -> str:
        return subprocess.run(
            args, cwd=exp, env=env, check=True, capture_output=True
        ).stdout.decode()

    run("git", "init", "-q", "-b", "main")
    run(*labledger, "init", "--name", "startup")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "experiment")
    for i in range(3):
        run(*labledger, "new", "--name", f"run {i}", "--hypothesis", "it starts fast")
        run(*labledger, "run")
    clone_runs(exp, folder_runs)
    run(*labledger, "list")  # the index catches up with the copies once
    print(f"experiment folder with {folder_runs:,} runs; load {loadavg()}", flush=True)

    # Each version: the command that runs it, the environment, and its label's suffix.
    versions = {"": (labledger, env)}
    if reference_src is not None:
        launcher = [sys.executable, "-c", LAUNCH]
        versions = {
            "": (launcher, env),
            " [reference]": (launcher, {**env, "PYTHONPATH": str(reference_src)}),
        }
    # new, run, end cycles, the versions alternating: the run's overhead is its wall time
    # minus its scripts' durations.
    cycles: dict[tuple[str, str], list[tuple[float, float]]] = {}
    scripts: dict[str, list[float]] = {v: [] for v in versions}
    for i in range(runs):
        for v, (cmd, v_env) in versions.items():
            for step in ("new", "run", "end"):
                if step == "end":
                    shown = json.loads(run(*cmd, "show", "--json"))
                    scripts[v].append(sum(p["duration_s"] or 0 for p in shown["phases"]))
                args = [*cmd, step, *(["--name", f"cycle {i}"] if step == "new" else [])]
                cycles.setdefault((v, step), []).append(timed(args, exp, v_env))
    medians = hyperfine({"python -c pass": [sys.executable, "-c", "pass"]}, exp, runs, env)
    for v, (cmd, v_env) in versions.items():
        commands = {f"labledger {arg}{v}": [*cmd, arg] for arg in ("--help", "list", "show")}
        medians.update(hyperfine(commands, exp, runs, v_env))
    tool = "hyperfine" if shutil.which("hyperfine") else "subprocess"
    rows = [[name, wall * 1000, cpu * 1000, tool] for name, (wall, cpu) in medians.items()]
    for v in versions:
        for name in ("new", "end"):
            walls = [w for w, _ in cycles[(v, name)]]
            cpus = [c for _, c in cycles[(v, name)]]
            rows.append(
                [
                    f"labledger {name}{v}",
                    statistics.median(walls) * 1000,
                    statistics.mean(cpus) * 1000,
                    "subprocess",
                ]
            )
        overheads = [w - s for (w, _), s in zip(cycles[(v, "run")], scripts[v], strict=True)]
        scripts_ms = statistics.median(scripts[v]) * 1000
        rows.append(
            [
                f"labledger run{v}, over its scripts' {scripts_ms:.0f} ms",
                statistics.median(overheads) * 1000,
                statistics.mean(c for _, c in cycles[(v, "run")]) * 1000,
                "subprocess",
            ]
        )
    print(f"load average after: {loadavg()}", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 MB, 5 start-ups (for CI)")
    parser.add_argument("--size-mb", type=float, default=None)
    parser.add_argument(
        "--startup-only",
        action="store_true",
        help="only the recorder's own cost (part 4), in a folder of 1,000 runs",
    )
    parser.add_argument(
        "--archive-only", action="store_true", help="only the archive figures (parts 1-3)"
    )
    parser.add_argument(
        "--reference-src",
        type=Path,
        default=None,
        help="also time the recorder commands of the labledger code in this src folder "
        "(part 4), alternating with this code's",
    )
    args = parser.parse_args()
    size_mb = args.size_mb or (5 if args.quick else 1024)

    heading("Recorder: archive throughput, re-archive cost, the recorder's own overhead")
    print(f"machine: {machine()}")
    if args.startup_only:
        with workdir("recorder") as tmp:
            startup = startup_figures(tmp, 5 if args.quick else 15, 1000, args.reference_src)
        print()
        print(table(["command", "median ms", "CPU ms (user+sys)", "timed with"], startup))
        print_startup_targets(startup)
        return 0
    with workdir("recorder") as tmp:
        rows = archive_figures(tmp, size_mb)
        rows += large_file_figures(tmp, size_mb)
        print()
        print(table(["what", "MB/s", "seconds", "x cp -r", "bytes stored / added"], rows))
        if args.archive_only:
            print_archive_targets(rows)
            return 0
        startup = startup_figures(
            tmp, 5 if args.quick else 15, 50 if args.quick else 1000, args.reference_src
        )
        print()
        print(table(["command", "median ms", "CPU ms (user+sys)", "timed with"], startup))
    print_archive_targets(rows)
    print_startup_targets(startup)
    return 0


def print_archive_targets(rows: list[list[Any]]) -> None:
    """Parts 1-3 against their targets."""
    ratio, first_s = rows[2][3], rows[2][2]
    again_s, added = rows[3][2], rows[3][4]
    large = rows[8][3]
    print(
        f"\ntargets (load {loadavg()}): first archive >= 0.5x cp -r: {ratio:.2f}x "
        f"({verdict(ratio >= 0.5)}); large files >= 0.8x: {large:.2f}x ({verdict(large >= 0.8)}); "
        f"re-archive adds no blob bytes: {added:,} ({verdict(added == 0)}) in < 10% of the "
        f"first's time: {again_s / first_s:.0%} ({verdict(again_s < 0.1 * first_s)})"
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_startup_targets(startup: list[list[Any]]) -> None:
    """Each recorder command against its 150 ms target."""
    ms = {r[0].split(",")[0]: r[1] for r in startup}
    print(f"recorder commands (load {loadavg()}):")
    for name in (
        "labledger run",
        "labledger new",
        "labledger end",
        "labledger show",
        "labledger list",
    ):
        print(f"  {name} < 150 ms: {ms[name]:.0f} ms ({verdict(ms[name] < 150)})")


if __name__ == "__main__":
    sys.exit(main())
