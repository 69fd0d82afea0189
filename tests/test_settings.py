"""Settings come from EXPERIMENT_ variables and the MADSci-style settings files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labledger.errors import ConfigError
from labledger.settings import Settings, load_settings

ULID = "01JC0000000000000000000007"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("EXPERIMENT_DB_URL", "EXPERIMENT_SERVER_URL", "EXPERIMENT_MANAGER_NAME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_sqlite_on_port_8002(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/data")
    settings = Settings()
    assert settings.database_url == "sqlite:////srv/data/labledger/labledger.sqlite3"
    assert (settings.host, settings.port) == ("127.0.0.1", 8002)


def test_environment_variables_with_the_experiment_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPERIMENT_DB_URL", "postgresql+psycopg://lab@db/labledger")
    monkeypatch.setenv("EXPERIMENT_SERVER_URL", "http://0.0.0.0:9000")
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://lab@db/labledger"
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        (".env", "EXPERIMENT_MANAGER_NAME=from dotenv\n"),
        ("experiments.env", "EXPERIMENT_MANAGER_NAME=from dotenv\n"),
        ("settings.toml", 'manager_name = "from file"\n'),
        ("experiments.settings.toml", 'manager_name = "from file"\n'),
        ("settings.yaml", "manager_name: from file\n"),
        ("experiments.settings.yaml", "manager_name: from file\n"),
        ("settings.json", '{"manager_name": "from file"}'),
    ],
)
def test_settings_files_in_the_working_directory(
    tmp_path: Path, filename: str, content: str
) -> None:
    (tmp_path / filename).write_text(content)
    assert Settings().manager_name.startswith("from ")


def test_environment_beats_files_and_arguments_beat_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "settings.toml").write_text('manager_name = "file"\n')
    monkeypatch.setenv("EXPERIMENT_MANAGER_NAME", "env")
    assert Settings().manager_name == "env"
    assert load_settings(manager_name="argument").manager_name == "argument"
    assert load_settings(manager_name=None).manager_name == "env"


def test_manager_definition_yaml_fills_name_and_id(tmp_path: Path) -> None:
    path = tmp_path / "em.yaml"
    path.write_text(f"name: Lab EM\ndescription: d\nexperiment_manager_id: {ULID}\n")
    settings = Settings(manager_definition=path)
    assert (settings.manager_name, settings.manager_description) == ("Lab EM", "d")
    assert settings.resolved_manager_id() == ULID


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("name: [unclosed\n", "manager_definition"),
        ("- a list\n", "manager_definition"),
        ("manager_id: bob\n", "manager_id"),
    ],
)
def test_bad_manager_definition_names_the_file_and_field(
    tmp_path: Path, content: str, field: str
) -> None:
    path = tmp_path / "em.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        Settings(manager_definition=path)
    assert info.value.field == field and str(path) in str(info.value)


def test_manager_id_is_kept_across_restarts(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path / "data").resolved_manager_id()
    assert Settings(data_dir=tmp_path / "data").resolved_manager_id() == first


def _documented_settings() -> set[str]:
    """The settings named in the first column of the README's tables."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `EXPERIMENT_([A-Z0-9_]+)` \|", readme, flags=re.MULTILINE))


def test_every_setting_is_documented_in_the_readme() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    documented = _documented_settings()
    assert sorted(fields - documented) == [], "add these to a settings table in README.md"
    assert sorted(documented - fields) == [], "the README documents settings that do not exist"


def test_every_setting_has_a_description() -> None:
    assert [n for n, f in Settings.model_fields.items() if not f.description] == []


def test_a_bad_value_names_the_setting_and_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPERIMENT_LEASE_SECONDS", "abc")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = raised.value.message
    assert message.startswith("Invalid setting lease_seconds (EXPERIMENT_LEASE_SECONDS) is 'abc'")
    assert "valid number" in message and "\n" not in message
    assert raised.value.field == "lease_seconds" and raised.value.exit_code == 2


def test_the_event_manager_setting_has_its_madsci_name_and_the_older_one_still_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXPERIMENT_EVENT_MANAGER_URL", "http://events-old:8001")
    assert str(Settings().event_server) == "http://events-old:8001/"
    monkeypatch.setenv("EXPERIMENT_EVENT_SERVER_URL", "http://events:8001")
    assert str(Settings().event_server) == "http://events:8001/"


def test_the_lab_managers_are_each_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.workcell_server_url is None and settings.lab_server_url is None
    monkeypatch.setenv("EXPERIMENT_WORKCELL_SERVER_URL", "http://workcell:8005")
    monkeypatch.setenv("EXPERIMENT_DATA_SERVER_URL", "http://data:8004")
    settings = Settings()
    assert str(settings.workcell_server_url) == "http://workcell:8005/"
    assert str(settings.data_server_url) == "http://data:8004/"
    assert settings.resource_server_url is None
