"""Schema versions: initialise, refuse an older database (naming the fix), upgrade, backup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from labledger.core.models import ExperimentQuery, ExperimentRegistration
from labledger.core.service import ExperimentService
from labledger.errors import SchemaOutdated, StorageError
from labledger.server.app import create_app
from labledger.settings import Settings
from labledger.storage import schema
from labledger.storage.engine import WRITE, create_db_engine
from labledger.storage.sql import SqlStore


def at_revision(url: str, revision: str) -> Engine:
    """A database migrated only up to ``revision`` (an older labledger's database)."""
    engine = create_db_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(schema.__file__).with_name("migrations")))
    with engine.connect().execution_options(**WRITE) as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return engine


def add_old_experiment(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO experiments (id, status, name, design, ownership, parameters, metadata, "
            "priority, attempts, version, created_at, updated_at) VALUES "
            "('01JAAAAAAAAAAAAAAAAAAAAAAA', 'in_progress', 'old run', "
            "'{\"experiment_name\": \"old run\"}', '{}', '{}', '{}', 0, 0, 1, "
            "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labledger", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        timeout=120,
    )


def test_empty_database_is_initialised_at_head(db_url: str) -> None:
    engine = create_db_engine(db_url)
    state = schema.ensure_ready(engine, db_url)
    assert state.current == schema.head_revision() and not state.empty
    engine.dispose()


def test_older_database_is_refused_with_the_command_to_fix_it(db_url: str, tmp_path: Path) -> None:
    engine = at_revision(db_url, "0001")
    engine.dispose()
    with pytest.raises(SchemaOutdated) as info:
        create_app(Settings(db_url=db_url, data_dir=tmp_path))
    assert "labledger db upgrade --db-url" in str(info.value)
    assert info.value.details["current_version"] == "0001"


def test_db_upgrade_backs_up_first_and_keeps_the_data(db_url: str, tmp_path: Path) -> None:
    engine = at_revision(db_url, "0001")
    add_old_experiment(engine)
    engine.dispose()
    check = cli("db", "check", "--db-url", db_url)
    assert check.returncode == 1 and "labledger db upgrade" in check.stderr
    upgraded = cli("db", "upgrade", "--db-url", db_url, "--backup-dir", str(tmp_path / "bk"))
    assert upgraded.returncode == 0, upgraded.stderr
    backups = list((tmp_path / "bk").iterdir())
    assert len(backups) == 1 and backups[0].stat().st_size > 0
    assert "Backed up to" in upgraded.stdout
    assert cli("db", "check", "--db-url", db_url).returncode == 0
    app = create_app(Settings(db_url=db_url, data_dir=tmp_path))
    service: ExperimentService = app.state.lab.experiments
    old = service.get_experiment("01JAAAAAAAAAAAAAAAAAAAAAAA")
    assert old.name == "old run" and old.created_at.utcoffset() is not None
    app.state.lab.close()


def test_failed_upgrade_restores_the_backup(db_url: str, tmp_path: Path) -> None:
    engine = at_revision(db_url, "0001")
    add_old_experiment(engine)
    with engine.begin() as conn:  # a table in the way of revision 0002
        conn.exec_driver_sql("CREATE TABLE results (id INTEGER PRIMARY KEY, junk TEXT)")
        conn.exec_driver_sql("INSERT INTO results (id, junk) VALUES (1, 'keep me')")
    engine.dispose()
    with pytest.raises(StorageError, match="restored"):
        schema.upgrade(db_url, backup_dir=tmp_path / "bk")
    engine = create_db_engine(db_url)
    assert schema.check(engine).current == "0001"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT junk FROM results")).scalar_one() == "keep me"
        assert conn.execute(text("SELECT name FROM experiments")).scalar_one() == "old run"
    engine.dispose()


def test_backup_and_restore_round_trip(db_url: str, tmp_path: Path) -> None:
    engine = create_db_engine(db_url)
    schema.ensure_ready(engine, db_url)
    service = ExperimentService(SqlStore(engine))
    reg = ExperimentRegistration.model_validate({"experiment_design": {"experiment_name": "kept"}})
    kept = service.create_experiment(reg)
    backup = schema.backup(db_url, tmp_path / "bk")
    service.create_experiment(reg)
    engine.dispose()
    restored = cli("db", "restore", "--db-url", db_url, str(backup), "--yes")
    assert restored.returncode == 0, restored.stderr
    engine = create_db_engine(db_url)
    listed = ExperimentService(SqlStore(engine)).list_experiments(ExperimentQuery())
    ids = [e.experiment_id for e in listed]
    assert ids == [kept.experiment_id]
    engine.dispose()


def test_serve_refuses_to_start_on_an_older_database(sqlite_url: str, tmp_path: Path) -> None:
    at_revision(sqlite_url, "0001").dispose()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "labledger",
            "serve",
            "--db-url",
            sqlite_url,
            "--port",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "labledger db upgrade --db-url" in proc.stderr
    assert "Traceback" not in proc.stderr


def with_password(url: str) -> str:
    """``url`` with a password in it (the test cluster trusts its users, so any one works)."""
    from sqlalchemy.engine import make_url

    if url.startswith("sqlite"):
        return url
    return make_url(url).set(password="s3cret-pw").render_as_string(hide_password=False)


def test_the_printed_upgrade_command_works_when_pasted(db_url: str, tmp_path: Path) -> None:
    url = with_password(db_url)
    at_revision(url, "0001").dispose()
    served = subprocess.run(
        [sys.executable, "-m", "labledger", "serve", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "EXPERIMENT_DB_URL": url, "EXPERIMENT_DATA_DIR": str(tmp_path)},
    )
    assert served.returncode == 1
    checked = cli("db", "check", env={"EXPERIMENT_DB_URL": url})
    assert checked.returncode == 1
    for output in (served.stderr, checked.stderr):
        assert "s3cret-pw" not in output and "***" not in output.split("labledger db upgrade")[1]
    command = checked.stderr.split("Run: ", 1)[1].strip()
    assert command.startswith("labledger db upgrade") and command in served.stderr

    # pasted into a shell where the server's settings are set, as the operator would
    shell_env = {
        **os.environ,
        "EXPERIMENT_DB_URL": url,
        "EXPERIMENT_BACKUP_DIR": str(tmp_path / "bk"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    pasted = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, env=shell_env, timeout=120
    )
    assert pasted.returncode == 0, pasted.stderr
    assert cli("db", "check", env={"EXPERIMENT_DB_URL": url}).returncode == 0

    if "s3cret-pw" in url:  # without the setting, the shell refuses rather than guessing a database
        del shell_env["EXPERIMENT_DB_URL"]
        refused = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, env=shell_env, timeout=60
        )
        assert refused.returncode != 0 and "set EXPERIMENT_DB_URL" in refused.stderr


def test_a_database_from_a_newer_labledger_asks_to_upgrade_labledger(
    db_url: str, tmp_path: Path
) -> None:
    engine = create_db_engine(db_url)
    schema.ensure_ready(engine, db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()

    checked = cli("db", "check", "--db-url", db_url)
    upgraded = cli("db", "upgrade", "--db-url", db_url, "--backup-dir", str(tmp_path / "bk"))
    with pytest.raises(StorageError) as refused:
        create_app(Settings(db_url=db_url, data_dir=tmp_path))

    for message in (checked.stderr, upgraded.stderr, str(refused.value)):
        assert "Upgrade labledger" in message and "9999_future" in message, message
        assert "labledger db upgrade" not in message and "Traceback" not in message
    assert checked.returncode == 1 and upgraded.returncode == 1
    assert not (tmp_path / "bk").exists()  # nothing was attempted
