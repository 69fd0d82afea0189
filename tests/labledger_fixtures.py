"""Helpers behind the shared fixtures in ``conftest.py``: a throwaway PostgreSQL cluster, a
``labledger serve`` subprocess, and the venv of the official MADSci client.

Tests import the types from here (``from labledger_fixtures import LiveServer``); the fixtures
themselves live in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import httpx
import pytest

if TYPE_CHECKING:
    from psycopg.sql import SQL, Composed
    from sqlalchemy import Engine

PG_BINDIR = Path(os.environ.get("LABLEDGER_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
MADSCI_REQUIREMENTS = (
    "madsci-client==0.8.1",
    "madsci-experiment-application==0.8.1",
    "pydantic<2.14",
)
SERVER_START_TIMEOUT = 30.0  # generous: a loaded 2-core CI machine starts it in 2-8 s


def strict() -> bool:
    """Whether an unavailable test dependency must fail the run instead of skipping."""
    return os.environ.get("LABLEDGER_TESTS_STRICT", "") not in ("", "0")


def unavailable(reason: str) -> NoReturn:
    """Skip the current test because a dependency is missing (fail in strict mode)."""
    if strict():
        pytest.fail(f"{reason} (LABLEDGER_TESTS_STRICT is set, so this is not skipped)")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PgCluster:
    """A running throwaway PostgreSQL cluster on 127.0.0.1 with trust authentication."""

    bindir: Path
    root: Path
    port: int
    user: str = "postgres"
    host: str = "127.0.0.1"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def url(self, dbname: str) -> str:
        """The SQLAlchemy URL of database ``dbname`` in this cluster."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def execute(self, statement: Composed | SQL | str) -> None:
        """Run one statement in the ``postgres`` database, outside a transaction."""
        import psycopg

        dsn = f"host={self.host} port={self.port} user={self.user} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(statement)

    def create_database(self) -> str:
        """Create a database with a unique name and return that name."""
        from psycopg import sql

        name = f"t_{uuid.uuid4().hex[:16]}"
        self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        self.execute(query)


def _as_postgres_user() -> list[str]:
    """The command prefix that runs PostgreSQL programs as a non-root user."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _run_pg(cmd: Sequence[str], what: str) -> None:
    proc = subprocess.run(
        [*_as_postgres_user(), *cmd],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed with exit code {proc.returncode}: {' '.join(cmd)}\n"
            f"{proc.stdout}\n{proc.stderr}"
        )


def start_cluster(root: Path) -> PgCluster:
    datadir = root / "data"
    _run_pg(
        [
            str(PG_BINDIR / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ],
        "initdb",
    )
    # The port is free when chosen; another process may take it before postgres binds, so retry.
    last_error: Exception | None = None
    for _attempt in range(3):
        cluster = PgCluster(bindir=PG_BINDIR, root=root, port=free_port())
        options = " ".join(
            [
                f"-p {cluster.port}",
                f"-k {cluster.socket_dir}",
                "-c listen_addresses=127.0.0.1",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )
        try:
            _run_pg(
                [
                    str(PG_BINDIR / "pg_ctl"),
                    "-D",
                    str(datadir),
                    "-l",
                    str(cluster.log_path),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                "pg_ctl start",
            )
        except RuntimeError as exc:
            log = cluster.log_path.read_text(errors="replace") if cluster.log_path.exists() else ""
            last_error = RuntimeError(f"{exc}\npostgres log:\n{log}")
            continue
        return cluster
    assert last_error is not None
    raise last_error


def stop_cluster(root: Path) -> None:
    datadir = root / "data"
    if (datadir / "postmaster.pid").exists():
        _run_pg(
            [str(PG_BINDIR / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"],
            "pg_ctl stop",
        )


def serve_command() -> list[str]:
    """The command that runs ``labledger`` with this interpreter (no console script needed)."""
    code = "import sys; from labledger.cli.entry import main; sys.argv[0] = 'labledger'; main()"
    return [sys.executable, "-c", code]


def start_worker(
    server_url: str,
    app: str,
    app_dir: Path,
    name: str,
    log: Path,
    *,
    lease: float,
    poll: float = 0.2,
) -> subprocess.Popen[bytes]:
    """``labledger worker MODULE:CLASS --wait`` in a subprocess, its output going to ``log``."""
    cmd = [
        *serve_command(),
        "worker",
        app,
        "--server-url",
        server_url,
        "--worker-id",
        name,
        "--lease",
        str(lease),
        "--wait",
        "--poll",
        str(poll),
        "--path",
        str(app_dir),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_")}
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd,
            env=env,
            cwd=app_dir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


@dataclass
class LiveServer:
    """``labledger serve`` running in a subprocess; it keeps its port and database on restart."""

    db_url: str
    workdir: Path
    env: dict[str, str]
    args: tuple[str, ...] = ()
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    _starts: int = 0

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "server.log"

    @property
    def url(self) -> str:
        """The base URL, with the trailing slash the MADSci client needs."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not running"
        return self.process.pid

    def log(self) -> str:
        """Everything the server wrote to stdout and stderr, over all its starts."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, *, timeout: float = SERVER_START_TIMEOUT, require_healthy: bool = True) -> None:
        """Start the server and wait until ``/health`` answers (200 unless not required)."""
        assert self.process is None or self.process.poll() is not None, "already running"
        for _attempt in range(3):
            if self.port == 0:
                self.port = free_port()
            if self._spawn_and_wait(timeout, require_healthy):
                return
            # Lost the race for the port: another process bound it after we chose it.
            self.port = 0
        raise AssertionError(f"labledger serve could not bind a port:\n{self.log()}")

    def _spawn_and_wait(self, timeout: float, require_healthy: bool) -> bool:
        cmd = [
            *serve_command(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db-url",
            self.db_url,
            *self.args,
        ]
        self._starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self._starts}: {' '.join(cmd)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                code = self.process.poll()
                if code is not None:
                    self.process = None
                    log_text = self.log()
                    if "address already in use" in log_text.lower().rsplit("--- start", 1)[-1]:
                        return False
                    raise AssertionError(
                        f"labledger serve exited with code {code} before it was ready:\n{log_text}"
                    )
                try:
                    response = client.get(f"{self.url}health")
                except httpx.TransportError as exc:
                    last = repr(exc)
                else:
                    if response.status_code == 200 or not require_healthy:
                        return True
                    last = f"{response.status_code} {response.text}"
                time.sleep(0.05)
        self.stop()
        raise AssertionError(
            f"labledger serve was not ready after {timeout} s (last: {last}):\n{self.log()}"
        )

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the server with SIGTERM (SIGKILL if it lingers); return its exit code."""
        if self.process is None:
            return None
        proc, self.process = self.process, None
        if proc.poll() is None:
            proc.terminate()
            try:
                return proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait()

    def kill(self) -> int:
        """Kill the server with SIGKILL, as a crash would, and reap it."""
        assert self.process is not None, "the server is not running"
        proc, self.process = self.process, None
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        return proc.wait()

    def restart(self, *, timeout: float = SERVER_START_TIMEOUT) -> None:
        """Stop (if running) and start again on the same port and database."""
        self.stop()
        self.start(timeout=timeout)


#: ``live_server(db_url=None, *, env=None, args=(), start=True) -> LiveServer``
LiveServerFactory = Callable[..., LiveServer]


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without EXPERIMENT_* settings leaking in from the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_")}
    env.update(extra or {})
    return env


def _cache_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "labledger-tests"


def cached_venv_python(label: str, requirements: tuple[str, ...], check: str) -> Path:
    """Build (once, cached, under a lock) a venv holding ``requirements``; return its python.

    The cache is ``~/.cache/labledger-tests/<label>-<hash of the requirements>``; ``check`` is
    Python code that must run in it. Raises RuntimeError (or OSError, SubprocessError) when it
    cannot be built.
    """
    key = hashlib.sha256(" ".join(requirements).encode()).hexdigest()[:12]
    cache = _cache_home()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{label}-{key}"
    python = target / "bin" / "python"
    with (cache / f"{label}-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not python.exists():
            staging = target.with_name(target.name + ".building")
            shutil.rmtree(staging, ignore_errors=True)
            subprocess.run(
                [sys.executable, "-m", "venv", str(staging)],
                check=True,
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=300,
            )
            for args in (["-m", "pip", "install", "--quiet", *requirements], ["-c", check]):
                done = subprocess.run(
                    [str(staging / "bin" / "python"), *args],
                    capture_output=True,
                    text=True,
                    stdin=subprocess.DEVNULL,
                    timeout=1800,
                    check=False,
                )
                if done.returncode != 0:
                    shutil.rmtree(staging, ignore_errors=True)
                    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
                    raise RuntimeError(f"building the {label} venv failed:\n{tail}")
            staging.rename(target)
    return python


def madsci_venv_python() -> Path:
    """The python of the official MADSci client's venv (built once, cached)."""
    return cached_venv_python(
        "madsci-0.8.1", MADSCI_REQUIREMENTS, "import madsci.client.experiment_client"
    )


def migrate(engine: Engine, target: str, *, down: bool = False) -> None:
    """Upgrade (or downgrade) the database behind ``engine`` to schema revision ``target``."""
    from alembic import command
    from alembic.config import Config

    from labledger.storage import schema
    from labledger.storage.engine import WRITE

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(schema.__file__).with_name("migrations")))
    with engine.connect().execution_options(**WRITE) as conn, conn.begin():
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, target)


# --------------------------------------------------------------------------------------------
# An S3-compatible object store: moto's standalone server, in a process of its own


@dataclass
class S3Server:
    """``moto.server`` on a loopback port; reached over HTTP like any S3 endpoint."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The standard AWS_ variables that point any S3 tool at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "labledger-test",
            "AWS_SECRET_ACCESS_KEY": "labledger-test-secret",
        }

    def client(self) -> object:
        """A boto3 S3 client for this server."""
        import boto3

        env = self.env()
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    def create_bucket(self) -> str:
        """A new empty bucket with a unique name."""
        name = f"labledger-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name


def start_s3_server(root: Path) -> S3Server:
    """Start moto's S3 server (``pip install 'moto[server]'``) and wait until it answers."""
    log_path = root / "moto.log"
    for _attempt in range(3):
        port = free_port()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = S3Server(process, port, log_path)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    client.get(f"{server.endpoint}/moto-api/")
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                return server
        if process.poll() is None:
            process.kill()
        process.wait()
    raise AssertionError(f"moto's S3 server did not start:\n{log_path.read_text(errors='replace')}")


#: MLflow for the import test (its own venv: MLflow's dependencies never meet ours)
MLFLOW_REQUIREMENTS = ("mlflow==3.17.2",)
