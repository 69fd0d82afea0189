"""Settings of the experiment service, read with pydantic-settings.

Sources, strongest first: arguments given in code (the CLI's options), environment variables
with the prefix ``EXPERIMENT_`` (``EXPERIMENT_DB_URL``, ``EXPERIMENT_SERVER_URL`` ...), the dotenv
files ``.env`` and ``experiments.env``, then ``settings.json`` / ``experiments.settings.json``,
``settings.toml`` / ``experiments.settings.toml`` and ``settings.yaml`` /
``experiments.settings.yaml`` in the working directory (unprefixed keys: ``db_url = "..."``).
``EXPERIMENT_MANAGER_DEFINITION`` may name a YAML file with ``name``, ``description`` and
``manager_id`` (MADSci 0.6's manager definition).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    AnyHttpUrl,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from labledger.core.ids import is_ulid, new_ulid
from labledger.errors import ConfigError

__all__ = ["Settings", "default_data_dir", "load_settings"]


def default_data_dir() -> Path:
    """Where the embedded database lives by default: ``$XDG_DATA_HOME/labledger``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "labledger"


class Settings(BaseSettings):
    """Every setting of ``labledger serve``. Each is documented in the README's table."""

    model_config = SettingsConfigDict(
        env_prefix="EXPERIMENT_",
        env_file=(".env", "experiments.env"),
        env_file_encoding="utf-8",
        toml_file=("settings.toml", "experiments.settings.toml"),
        yaml_file=("settings.yaml", "experiments.settings.yaml"),
        json_file=("settings.json", "experiments.settings.json"),
        extra="ignore",
        case_sensitive=False,
    )

    server_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8002"),
        description="Where the server listens (host and port) and where clients find it.",
    )
    db_url: str | None = Field(
        default=None,
        description="Database URL: sqlite:///file.sqlite3 or postgresql+psycopg://user@host/db. "
        "Default: the embedded SQLite file in data_dir.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir, description="Folder of the embedded database."
    )
    backup_dir: Path | None = Field(
        default=None, description="Where `labledger db` writes backups (default data_dir/backups)."
    )
    sqlite_synchronous: str = Field(
        default="NORMAL",
        description="SQLite synchronous: NORMAL survives process crashes, FULL also power loss.",
    )
    manager_definition: Path | None = Field(
        default=None, description="YAML with name, description and manager_id (MADSci 0.6)."
    )
    manager_name: str = Field(
        default="Experiment Manager", description="Shown in /docs and /settings."
    )
    manager_description: str | None = Field(default=None, description="Shown in /definition.")
    manager_id: str | None = Field(
        default=None, description="ULID of this manager (default: one kept in data_dir)."
    )

    # ---- the scheduling queue, result files and event forwarding
    lease_seconds: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="How long a worker's claim on a queued experiment lasts unless renewed by "
        "heartbeat; an expired lease puts the experiment back in the queue.",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="EXPERIMENT_MAX_ATTEMPTS: claims an experiment gets; when the lease of the "
        "last one expires the experiment is marked failed instead of queued again.",
    )
    sweep_interval: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between the server's sweeps of expired leases and finished campaigns.",
    )
    results_dir: Path | None = Field(
        default=None,
        description="Where uploaded result files are kept, content-addressed by BLAKE3 "
        "(default data_dir/results).",
    )
    blob_url: str | None = Field(
        default=None,
        pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$",
        description="Keep result files and pushed blobs in an S3-compatible object store, "
        "s3://bucket/prefix, so that every replica serves every file (default: the local "
        "folder results_dir). Needs `pip install 'labledger[s3]'`.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="The object store's endpoint, for stores other than AWS "
        "(default: AWS_ENDPOINT_URL, else AWS's own).",
    )
    s3_region: str | None = Field(
        default=None, description="The bucket's region (default: AWS_REGION or AWS_DEFAULT_REGION)."
    )
    s3_access_key_id: str | None = Field(
        default=None,
        description="Access key of the object store (default: AWS_ACCESS_KEY_ID and the usual "
        "AWS credential chain: profile, instance role ...).",
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None,
        description="Secret key of the object store (default: AWS_SECRET_ACCESS_KEY); "
        "redacted in /settings.",
    )
    webhook_urls: list[AnyHttpUrl] = Field(
        default_factory=list,
        description="URLs that receive every event as a JSON POST (retried from the event log "
        "until they answer 2xx; never blocks an experiment).",
    )
    event_manager_url: AnyHttpUrl | None = Field(
        default=None,
        description="A MADSci Event Manager; events are forwarded to its POST /event.",
    )
    # ---- the MADSci lab around the experiments (each optional: without it that part is absent)
    lab_server_url: AnyHttpUrl | None = Field(
        default=None,
        description="A MADSci Lab Manager: the managers below that are not set are discovered "
        "from its lab context (GET /context).",
    )
    workcell_server_url: AnyHttpUrl | None = Field(
        default=None,
        description="A MADSci Workcell Manager: an experiment's workflows are read from it and "
        "paused, resumed and cancelled with the experiment.",
    )
    data_server_url: AnyHttpUrl | None = Field(
        default=None,
        description="A MADSci Data Manager: an experiment's data points are read from it.",
    )
    resource_server_url: AnyHttpUrl | None = Field(
        default=None,
        description="A MADSci Resource Manager: the resources an experiment owns are read from it.",
    )
    event_server_url: AnyHttpUrl | None = Field(
        default=None,
        description="A MADSci Event Manager: events are forwarded to it and an experiment's "
        "events are read from it (event_manager_url is the older name of this setting).",
    )
    lab_timeout: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Seconds a lab page or route waits for one MADSci manager before showing it "
        "as unreachable.",
    )
    lab_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        le=3600,
        description="How long an answer of a MADSci manager is reused before it is read again.",
    )
    forward_retry_max: float = Field(
        default=300.0,
        gt=0,
        description="Longest wait in seconds between retries of a failing forwarding target.",
    )

    # ---- access control and limits
    auth_required: bool = Field(
        default=False,
        description="Require a token on every request but /health even before any token exists "
        "(tokens are always required once one exists; see `labledger token`).",
    )
    trusted_networks: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description='Networks whose requests need no token (e.g. ["10.0.5.0/24"] for the '
        "instruments of a lab); they act with trusted_scope. Requests from elsewhere need one.",
    )
    trusted_scope: Literal["read", "write", "admin"] = Field(
        default="write", description="What requests without a token from trusted_networks may do."
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Largest request body in bytes (uploads have max_upload_bytes); larger: 413.",
    )
    max_upload_bytes: int = Field(
        default=2 * 1024**3,
        ge=1024,
        description="Largest uploaded file (multipart request) in bytes; larger: 413.",
    )
    rate_limit: float = Field(
        default=0.0,
        ge=0,
        description="Requests per second allowed per client (token or address); 0 = no limit. "
        "Over it: 429 with Retry-After. Loopback clients are exempt.",
    )
    rate_limit_burst: int = Field(
        default=100, ge=1, description="Requests a client may make at once before rate_limit."
    )
    idempotency_hours: float = Field(
        default=24.0,
        gt=0,
        description="How long an Idempotency-Key is remembered (a retry within it gets the first "
        "answer and creates nothing).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            JsonConfigSettingsSource(settings_cls),
            TomlConfigSettingsSource(settings_cls),
            YamlConfigSettingsSource(settings_cls),
        )

    @field_validator("manager_id")
    @classmethod
    def _manager_ulid(cls, value: str | None) -> str | None:
        if value is not None and not is_ulid(value):
            raise ValueError(f"Invalid ULID {value} for field manager_id")
        return value

    @model_validator(mode="after")
    def _definition(self) -> Settings:
        if self.manager_definition is None:
            return self
        path = self.manager_definition
        try:
            loaded: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(
                f"manager_definition: cannot read {path}: {exc.strerror}",
                path=str(path),
                field="manager_definition",
            ) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"{path}: not valid YAML: {exc}", path=str(path), field="manager_definition"
            ) from exc
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{path}: expected a mapping with name, description, manager_id",
                path=str(path),
                field="manager_definition",
            )
        if "name" in loaded and "manager_name" not in self.model_fields_set:
            self.manager_name = str(loaded["name"])
        if "description" in loaded and "manager_description" not in self.model_fields_set:
            self.manager_description = loaded["description"]
        raw_id = loaded.get("manager_id") or loaded.get("experiment_manager_id")
        if raw_id is not None and self.manager_id is None:
            if not is_ulid(str(raw_id)):
                raise ConfigError(
                    f"{path}: manager_id: expected a 26-character ULID, got {raw_id!r}",
                    path=str(path),
                    field="manager_id",
                )
            self.manager_id = str(raw_id)
        return self

    # ------------------------------------------------------------------ derived

    @property
    def database_url(self) -> str:
        """The database URL in effect (the embedded SQLite file when none is set)."""
        return self.db_url or f"sqlite:///{self.data_dir / 'labledger.sqlite3'}"

    @property
    def backups(self) -> Path:
        """The backup folder in effect."""
        return self.backup_dir or self.data_dir / "backups"

    @property
    def results_path(self) -> Path:
        """The folder of result files in effect."""
        return self.results_dir or self.data_dir / "results"

    @property
    def event_server(self) -> AnyHttpUrl | None:
        """The MADSci Event Manager in effect (event_server_url, else event_manager_url)."""
        return self.event_server_url or self.event_manager_url

    @property
    def host(self) -> str:
        """Host part of server_url."""
        return self.server_url.host or "127.0.0.1"

    @property
    def port(self) -> int:
        """Port part of server_url (8002 when it has none)."""
        return self.server_url.port or 8002

    def resolved_manager_id(self) -> str:
        """The manager id: the setting, or one kept in data_dir so it survives restarts."""
        if self.manager_id:
            return self.manager_id
        path = self.data_dir / "manager_id"
        try:
            existing = path.read_text(encoding="utf-8").strip()
            if is_ulid(existing):
                return existing
        except OSError:
            pass
        new = new_ulid()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new + "\n", encoding="utf-8")
        except OSError:
            pass  # a read-only data_dir: the id then lives as long as the process
        return new

    def public(self) -> dict[str, Any]:
        """The settings as ``GET /settings`` shows them, secrets redacted."""
        data = self.model_dump(mode="json")
        data["db_url"] = _redact_url(self.database_url)
        # webhook URLs often carry their secret in the path or query (e.g. chat webhooks)
        data["webhook_urls"] = [_redact_webhook(url) for url in self.webhook_urls]
        return data


def _redact_webhook(url: AnyHttpUrl) -> str:
    port = f":{url.port}" if url.port and str(url.port) not in ("80", "443") else ""
    hidden = "/…" if (url.path and url.path != "/") or url.query else ""
    return f"{url.scheme}://{url.host}{port}{hidden}"


def _redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def load_settings(**overrides: Any) -> Settings:
    """Settings from every source, with the ``overrides`` that are not None on top.

    A bad value raises :class:`ConfigError` naming the setting, its environment variable, what
    was expected and what was given.
    """
    given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise _setting_error(exc) from None


def _setting_error(exc: ValidationError) -> ConfigError:
    problems = []
    names = []
    for error in exc.errors(include_url=False):
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        names.append(name)
        env = f"{Settings.model_config.get('env_prefix', '')}{name}".upper()
        got = error.get("input")
        shown = f"{got!r}" if isinstance(got, str | int | float | bool) else "the value given"
        problems.append(f"setting {name} ({env}) is {shown}: {error['msg'].lower()}")
    return ConfigError(
        "Invalid " + "; ".join(problems) + ". Fix it in the environment or the settings file "
        "(see the settings table in the README), then run the command again",
        field=names[0] if names else None,
    )
