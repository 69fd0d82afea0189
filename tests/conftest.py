"""Shared fixtures: real databases and a real server process, never stand-ins.

Databases
    ``sqlite_url``   a fresh SQLite file in ``tmp_path``
    ``pg_cluster``   one throwaway PostgreSQL 15 cluster per session (started only when asked for)
    ``pg_url``       a fresh database in that cluster per test
    ``db_url``       parametrized over both (ids ``sqlite`` and ``postgres``), so the same test
                     runs on each backend; the PostgreSQL case carries the ``postgres`` marker

Servers
    ``live_server``  a factory that starts ``labledger serve`` as a real subprocess on a free port
                     and hands back a :class:`labledger_fixtures.LiveServer` (url, process, kill,
                     restart)

The official MADSci client
    ``madsci_python``  the python of a separate, cached venv holding ``madsci-client==0.8.1``

A full disk
    ``small_disk``   a factory: ``small_disk(megabytes)`` mounts a real tmpfs of that size and
                     returns its folder (unmounted at teardown); skipped where mounting is not
                     allowed (not root)

The home folder
    For the whole session ``HOME`` and the XDG data, config and state folders point at a temp
    folder, so no test, server or recorder process started by one writes into the real home
    (only the XDG cache stays, where the MADSci client venv is kept between sessions). At the
    end the session fails if the real home's labledger folders changed all the same.

Only tests that ask for a PostgreSQL fixture start PostgreSQL. When the PostgreSQL binaries or the
MADSci client cannot be had, those tests are skipped with the reason; with
``LABLEDGER_TESTS_STRICT=1`` (set by ``.ci/run``) they fail instead, so CI cannot go green by
skipping them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from labledger_fixtures import (
    MLFLOW_REQUIREMENTS,
    PG_BINDIR,
    LiveServer,
    LiveServerFactory,
    PgCluster,
    S3Server,
    cached_venv_python,
    madsci_venv_python,
    server_env,
    start_cluster,
    start_s3_server,
    stop_cluster,
    unavailable,
)
from runner.mlflow_support import MlflowServer, mlflow_server, write_store

# --------------------------------------------------------------------------------------------
# Ctrl-C

# A shell starts a background job (`pytest ... &` in a script) with SIGINT ignored, and every
# process it starts inherits that: the tests that press Ctrl-C on a worker or a recorder would
# then be pressing a key nobody hears. Python's own handler makes Ctrl-C deliverable again here
# and in the children (an ignored signal is inherited through exec, a handler is not).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# --------------------------------------------------------------------------------------------
# The home folder

#: the user's real home, from the password database (HOME may be redirected already)
REAL_HOME = Path(pwd.getpwuid(os.getuid()).pw_dir)
#: where labledger keeps things in a home; the suite must leave these as it found them
WATCHED_IN_HOME = (
    REAL_HOME / ".local" / "share" / "labledger",
    REAL_HOME / ".config" / "labledger",
    REAL_HOME / ".local" / "state" / "labledger",
)
_home_state: dict[str, object] = {}


def _snapshot() -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for folder in WATCHED_IN_HOME:
        if folder.exists():
            found[str(folder)] = (0, 0)
            for path in folder.rglob("*"):
                with contextlib.suppress(OSError):
                    stat = path.lstat()
                    found[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return found


def pytest_configure(config: pytest.Config) -> None:
    """Point HOME and the XDG folders at a temp folder for this process and its children."""
    if "home" in _home_state:
        return
    home = Path(tempfile.mkdtemp(prefix="labledger-test-home-"))
    # The cache stays real: the official MADSci client's venv is built there once per machine.
    os.environ.setdefault("XDG_CACHE_HOME", str(REAL_HOME / ".cache"))
    os.environ["HOME"] = str(home)
    for name, sub in (
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_STATE_HOME", ".local/state"),
    ):
        os.environ[name] = str(home / sub)
    _home_state.update(home=home, before=_snapshot())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session if the real home's labledger folders changed; drop the temp home."""
    home = _home_state.get("home")
    if not isinstance(home, Path):
        return
    changed = sorted(set(_snapshot().items()) ^ set(_home_state["before"].items()))  # type: ignore[attr-defined]
    shutil.rmtree(home, ignore_errors=True)
    if changed:
        names = sorted({path for path, _ in changed})
        session.config.get_terminal_writer().line()
        session.config.get_terminal_writer().line(
            "The test session wrote into the real home: " + ", ".join(names), red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --------------------------------------------------------------------------------------------
# A full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mount real size-limited filesystems (tmpfs), so writes fail with ENOSPC as on a full disk."""
    mounted: list[Path] = []

    def mount(megabytes: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0755", "tmpfs", str(where)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            unavailable(
                f"cannot mount a small tmpfs to fill up (needs root): {done.stderr.strip()}"
            )
        mounted.append(where)
        return where

    try:
        yield mount
    finally:
        for where in reversed(mounted):
            subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


# --------------------------------------------------------------------------------------------
# SQLite


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLAlchemy URL of a SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path}/labledger.sqlite3"


# --------------------------------------------------------------------------------------------
# PostgreSQL


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL 15 cluster for this test session, removed at its end.

    Runs as the ``postgres`` user when we are root (initdb refuses root). The bin directory comes
    first on ``PATH`` while the cluster lives, so that pg_dump and pg_restore match the server.
    """
    if not (PG_BINDIR / "initdb").exists():
        unavailable(
            f"PostgreSQL 15 binaries not found in {PG_BINDIR} "
            "(apt-get install postgresql-15, or set LABLEDGER_PG_BINDIR)"
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed (pip install -e '.[dev]')")
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no 'postgres' user to run initdb as")
    root = Path(tempfile.mkdtemp(prefix="labledger-pg-"))
    try:
        (root / "sock").mkdir()
        if owner is not None:
            for path in (root, root / "sock"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        cluster = start_cluster(root)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PATH", f"{PG_BINDIR}{os.pathsep}{os.environ.get('PATH', '')}")
            try:
                yield cluster
            finally:
                stop_cluster(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty database in the session's cluster."""
    name = pg_cluster.create_database()
    try:
        yield pg_cluster.url(name)
    finally:
        pg_cluster.drop_database(name)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database URL, once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


# --------------------------------------------------------------------------------------------
# A real server process


@pytest.fixture
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServerFactory]:
    """Start ``labledger serve`` processes; every one is stopped at teardown.

    ``live_server(db_url=None, env=None, args=(), start=True)``: with no ``db_url`` the server gets
    a fresh SQLite file. It runs in its own empty working directory so that no ``.env`` or
    settings file of the checkout is read.
    """
    servers: list[LiveServer] = []

    def make(
        db_url: str | None = None,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        start: bool = True,
    ) -> LiveServer:
        workdir = tmp_path_factory.mktemp("server")
        server = LiveServer(
            db_url=db_url or f"sqlite:///{workdir}/labledger.sqlite3",
            workdir=workdir,
            # its data folder (manager id, result files) stays in the test's workdir
            env=server_env({"EXPERIMENT_DATA_DIR": str(workdir), **(env or {})}),
            args=tuple(args),
        )
        servers.append(server)
        if start:
            server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


# --------------------------------------------------------------------------------------------
# An S3-compatible object store


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's standalone S3 server in its own process on a loopback port, for the session."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError:
        unavailable("boto3 or moto[server] is not installed (pip install -e '.[dev]')")
    server = start_s3_server(tmp_path_factory.mktemp("s3"))
    try:
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


# --------------------------------------------------------------------------------------------
# The official MADSci client, in a venv of its own


@pytest.fixture(scope="session")
def mlflow_python() -> Path:
    """The python of a venv with MLflow (built once, cached), to write real MLflow stores."""
    try:
        return cached_venv_python("mlflow", MLFLOW_REQUIREMENTS, "import mlflow")
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        unavailable(f"cannot install MLflow: {exc}")


@pytest.fixture(scope="session")
def mlflow_tracking_server(
    mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """A running ``mlflow server`` (SQLite backend store) holding runs MLflow's own client
    logged into it (``runner/mlflow_support.py``), for the session; nothing else writes to it."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    with mlflow_server(mlflow_python, folder) as server:
        write_store(mlflow_python, folder, server.url)
        yield server


@pytest.fixture(scope="session")
def madsci_python() -> Path:
    """The python of a venv with the official ``madsci-client==0.8.1`` (built once, cached)."""
    try:
        return madsci_venv_python()
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        unavailable(f"cannot install the official MADSci client: {exc}")
