"""Helpers shared by the benchmark scripts: servers in subprocesses, a throwaway PostgreSQL
cluster, percentiles, resident memory and plain-text tables.

The scripts import this module by its file name (they run as ``python benchmarks/<name>.py``,
which puts this folder first on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of already sorted values, nearest rank."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB, read from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by process ``pid`` and its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> str:
    """One line naming the machine: cores, CPU model, Python."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, to print beside figures taken on a shared machine."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (readable as plain text too)."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def heading(title: str) -> None:
    print(f"\n## {title}\n", flush=True)


# --------------------------------------------------------------------------------------------
# servers


def bench_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without EXPERIMENT_* settings from the shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_")}
    env.update(extra or {})
    return env


@dataclass
class Server:
    """An HTTP server in a subprocess on 127.0.0.1, ready when ``/health`` answers 200."""

    cmd: list[str]
    workdir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=bench_env)
    process: subprocess.Popen[bytes] | None = None
    #: start it in a session of its own (a server with helper processes, stopped as a group)
    new_session: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> Server:
        log = (self.workdir / f"server-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [*self.cmd, "--port", str(self.port)],
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=self.new_session,
        )
        log.close()
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()  # whatever went wrong (Ctrl-C too), the process does not outlive us
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early: {' '.join(self.cmd)}\n{self.log()}")
            try:
                status, _ = request(self.url, "GET", "/health", timeout=5.0)
            except OSError:
                time.sleep(0.05)
                continue
            if status == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        path = self.workdir / f"server-{self.port}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is None:
            return
        proc, self.process = self.process, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: ``python -c`` code running labledger's command line through whichever entry point the code
#: on ``sys.path`` has (a ``--reference-src`` from before the collector-tuning entry had its
#: main() in labledger.cli.main)
LAUNCH = (
    "import sys\n"
    "sys.argv[0] = 'labledger'\n"
    "try:\n"
    "    from labledger.cli.entry import main\n"
    "except ImportError:\n"
    "    from labledger.cli.main import main\n"
    "main()\n"
)


def labledger_server(db_url: str, workdir: Path) -> Server:
    """``labledger serve`` exactly as users run it (uvicorn, one process, its default loop)."""
    cmd = [sys.executable, "-c", LAUNCH, "serve", "--host", "127.0.0.1", "--db-url", db_url]
    # its data folder (manager id, result files) is the benchmark's, never the user's home
    env = bench_env({"EXPERIMENT_DATA_DIR": str(workdir)})
    return Server(cmd=[*cmd, "--log-level", "warning"], workdir=workdir, env=env)


def reference_server(db_path: Path, workdir: Path) -> Server:
    """The bare FastAPI + one SQLite INSERT app (``_reference_app.py``) on the same stack."""
    cmd = [sys.executable, str(BENCH / "_reference_app.py"), "--db", str(db_path)]
    return Server(cmd=cmd, workdir=workdir)


def request(
    base_url: str, method: str, path: str, body: Any = None, timeout: float = 30.0
) -> tuple[int, Any]:
    """One request over a fresh connection; returns (status, the decoded JSON, or the body's
    bytes when the answer is not JSON (MLflow's health answer is plain text), or None)."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if not data:
            return resp.status, None
        if "json" not in (resp.getheader("Content-Type") or ""):
            return resp.status, data
        return resp.status, json.loads(data)
    finally:
        conn.close()


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A temporary folder, removed afterwards (kept when LABLEDGER_BENCH_KEEP=1)."""
    path = Path(tempfile.mkdtemp(prefix=f"labledger-bench-{prefix}-"))
    try:
        yield path
    finally:
        if os.environ.get("LABLEDGER_BENCH_KEEP") != "1":
            shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# PostgreSQL


@contextlib.contextmanager
def postgres() -> Iterator[Any]:
    """A throwaway PostgreSQL 15 cluster (the test suite's helpers); yields its PgCluster.

    Raises RuntimeError when the binaries are missing.
    """
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import labledger_fixtures as fx
    finally:
        sys.path.pop(0)
    if not (fx.PG_BINDIR / "initdb").exists():
        raise RuntimeError(f"PostgreSQL 15 binaries not found in {fx.PG_BINDIR}")
    root = Path(tempfile.mkdtemp(prefix="labledger-bench-pg-"))
    try:
        (root / "sock").mkdir()
        if os.geteuid() == 0:
            import pwd

            owner = pwd.getpwnam("postgres")
            for path in (root, root / "sock"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        cluster = fx.start_cluster(root)
        try:
            yield cluster
        finally:
            fx.stop_cluster(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def has_postgres() -> bool:
    bindir = Path(os.environ.get("LABLEDGER_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
    return (bindir / "initdb").exists()
