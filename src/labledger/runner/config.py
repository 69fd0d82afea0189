"""The two config files of an experiment folder, read with :mod:`tomllib`, checked with pydantic.

``labledger.toml`` describes the experiment (name, description, default variables and runners,
which environment variables to record). ``run.toml`` describes the current run (name,
hypothesis, variables, runners, observations). Both are plain TOML meant to be edited by hand;
labledger writes them with comments explaining every field. Any error names the file, the field
and what was expected.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from labledger.core.models import MAX_NAME, MAX_TEXT
from labledger.errors import ConfigError
from labledger.runner.files import EXPERIMENT_FILE, RUN_FILE

__all__ = [
    "EXPERIMENT_FILE",
    "PHASES",
    "RUN_FILE",
    "ExperimentConfig",
    "RunConfig",
    "Runners",
    "Value",
    "env_value",
    "load_experiment_config",
    "load_run_config",
    "parse_var",
    "render_experiment_config",
    "render_run_config",
    "validate_config",
]

#: the four phases, in the order they run
PHASES = ("pre-run", "run", "post-run", "fetch")

#: a variable's value: TOML's scalars
Value = StrictBool | StrictInt | StrictFloat | StrictStr
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_DEFAULT_CAPTURE_ENV = [
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "SLURM_JOB_ID",
    "VIRTUAL_ENV",
    "CONDA_DEFAULT_ENV",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Runners(_Strict):
    """The scripts of the four phases, as paths relative to the experiment folder."""

    pre_run: str | None = Field(default=None, alias="pre-run")
    run: Annotated[str, Field(min_length=1)]
    post_run: str | None = Field(default=None, alias="post-run")
    fetch: Annotated[str, Field(min_length=1)]

    def by_phase(self) -> dict[str, str]:
        """Phase name -> script, for the phases that have one."""
        scripts = {
            "pre-run": self.pre_run,
            "run": self.run,
            "post-run": self.post_run,
            "fetch": self.fetch,
        }
        return {phase: s for phase, s in scripts.items() if s}


def _check_variables(value: dict[str, Any]) -> dict[str, Any]:
    for name in value:
        if not _VAR_NAME.match(name):
            raise ValueError(
                f"variable name {name!r} must be usable as an environment variable "
                "(letters, digits and _, not starting with a digit)"
            )
        if name.startswith("LABLEDGER_"):
            raise ValueError(f"variable name {name!r}: the LABLEDGER_ prefix is reserved")
        if isinstance(value[name], str) and "\x00" in value[name]:
            raise ValueError(f"variable {name!r}: an environment variable cannot hold a NUL byte")
    return value


class ExperimentConfig(_Strict):
    """``labledger.toml``: what the experiment is and the defaults of its runs."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
    description: Annotated[str, Field(max_length=MAX_TEXT)] = ""
    capture_env: list[str] = Field(default_factory=lambda: list(_DEFAULT_CAPTURE_ENV))
    variables: dict[str, Value] = Field(default_factory=dict)
    runners: Runners = Field(
        default_factory=lambda: Runners.model_validate(
            {
                "pre-run": "pre-run.sh",
                "run": "run.sh",
                "post-run": "post-run.sh",
                "fetch": "fetch.sh",
            }
        )
    )

    _vars = field_validator("variables")(_check_variables)


class RunConfig(_Strict):
    """``run.toml``: one run's name, hypothesis, variables, runners and observations."""

    name: Annotated[str, Field(max_length=MAX_NAME)] = ""
    hypothesis: Annotated[str, Field(max_length=MAX_TEXT)] = ""
    variables: dict[str, Value] = Field(default_factory=dict)
    runners: Runners
    observations: Annotated[str, Field(max_length=MAX_TEXT)] = ""
    #: files the run writes whose values become its results (JSON, TOML or CSV)
    results: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(
        default_factory=list, max_length=100
    )

    _vars = field_validator("variables")(_check_variables)


def env_value(value: Value) -> str:
    """A variable's value as its environment string (booleans as ``true``/``false``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_var(text: str, *, option: str = "--var") -> tuple[str, Value]:
    """Parse ``NAME=VALUE`` from the command line; the value is read as TOML if it can be."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise ConfigError(f"{option}: expected NAME=VALUE, got {text!r}", field=option)
    try:
        value: Value = tomllib.loads(f"v = {raw}")["v"]
        if not isinstance(value, bool | int | float | str):
            value = raw
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as adam is a string
    _check_one(name, option)
    return name.strip(), value


def _check_one(name: str, option: str) -> None:
    try:
        _check_variables({name.strip(): None})
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}", field=option) from None


def _field_of(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(file)"


def validate_config(model: type[_Strict], data: dict[str, Any], path: Path) -> Any:
    """Check ``data`` against ``model``; a problem raises ConfigError naming file and field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = _field_of(err["loc"])
        kind = err["type"]
        if kind == "missing":
            detail = "this field is required and is missing"
        elif kind == "extra_forbidden":
            allowed = ", ".join(_allowed_keys(model, err["loc"][:-1]))
            detail = f"unknown field; expected one of: {allowed}"
        else:
            detail = f"{err['msg']} (got {err.get('input')!r})"
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise ConfigError(
            f"{path}: field '{field}': {detail}{more}. Edit the file and try again.",
            path=str(path),
            field=field,
        ) from None


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    current: type[BaseModel] = model
    for part in loc:
        info = current.model_fields.get(str(part))
        sub = getattr(info, "annotation", None) if info else None
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            current = sub
        else:
            return []
    return [f.alias or name for name, f in current.model_fields.items()]


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML: {exc}. Fix the syntax and try again.", path=str(path)
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded); TOML files are "
            "UTF-8. Save it as UTF-8 and try again.",
            path=str(path),
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}", path=str(path)) from None


def load_experiment_config(path: Path) -> ExperimentConfig:
    """Read and check ``labledger.toml``."""
    result: ExperimentConfig = validate_config(ExperimentConfig, _load(path), path)
    return result


def load_run_config(path: Path) -> RunConfig:
    """Read and check ``run.toml``."""
    result: RunConfig = validate_config(RunConfig, _load(path), path)
    return result


# ---------------------------------------------------------------------------- writing


def _value(key: str, value: Any) -> str:
    # tomli-w quotes and escapes values correctly; we only add the layout and the comments.
    # Multi-line strings read best, but TOML turns a \r\n inside them into \n: text holding
    # a \r is written as one escaped line instead, so it reads back exactly.
    multiline = not (isinstance(value, str) and "\r" in value)
    return tomli_w.dumps({key: value}, multiline_strings=multiline).rstrip("\n")


def _table(name: str, values: dict[str, Any]) -> list[str]:
    return [f"[{name}]", *(_value(k, v) for k, v in values.items())]


def _runner_lines(runners: Runners) -> list[str]:
    lines = ["[runners]"]
    for phase in PHASES:
        script = runners.by_phase().get(phase)
        note = "required" if phase in ("run", "fetch") else "optional; remove the line to skip"
        lines.append(f"# {phase}: {note}")
        lines.append(_value(phase, script) if script else f'# {phase} = "{phase}.sh"')
    return lines


def render_experiment_config(cfg: ExperimentConfig) -> str:
    """``labledger.toml`` text with a comment on every field."""
    lines = [
        "# labledger experiment config. Edit freely; `labledger new` copies the defaults below",
        "# into each new run's run.toml.",
        "",
        "# A short name and what the experiment is for.",
        _value("name", cfg.name),
        _value("description", cfg.description),
        "",
        "# Environment variables whose values every run records (names; * matches any text).",
        _value("capture_env", cfg.capture_env),
        "",
        "# Default variables of new runs. Runner scripts see each one as an environment variable.",
        *_table("variables", cfg.variables),
        "",
        "# Default scripts of the four phases, relative to this folder. fetch must copy the",
        "# outputs to keep into $LABLEDGER_OUTPUTS_DIR (the outputs/ folder).",
        *_runner_lines(cfg.runners),
    ]
    return "\n".join(lines) + "\n"


def render_run_config(cfg: RunConfig, *, run_id: str, number: int, experiment: str) -> str:
    """``run.toml`` text with a comment on every field."""
    lines = [
        f"# Run {number} of experiment {experiment!r}  (id {run_id})",
        "# Edit this file, then `labledger run`. `labledger end` records the observations.",
        "",
        "# A short name for this run.",
        _value("name", cfg.name),
        "",
        "# Why this run: what do you expect to see, and why?",
        _value("hypothesis", cfg.hypothesis),
        "",
        "# What you saw (filled in by `labledger end --observations ...` or by hand).",
        _value("observations", cfg.observations),
        "",
        "# Variables: each is an environment variable of the runner scripts, under its own name.",
        *_table("variables", cfg.variables),
        "",
        "# Scripts of the four phases, relative to the experiment folder.",
        *_runner_lines(cfg.runners),
    ]
    return "\n".join(lines) + "\n"
