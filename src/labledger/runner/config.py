"""The two config files of an experiment folder, read with :mod:`tomllib`, checked with msgspec.

``labledger.toml`` describes the experiment (name, description, default variables and runners,
which environment variables to record). ``run.toml`` describes the current run (name,
hypothesis, variables, runners, observations). Both are plain TOML meant to be edited by hand;
labledger writes them with comments explaining every field. Any error names the file, the field
and what was expected; a key the file may not hold is refused, naming the keys it may.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec
import tomli_w
from msgspec import Meta, field

from labledger.core.vocabulary import MAX_NAME, MAX_TEXT
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
    "check_config",
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

#: a variable's value: TOML's scalars, taken as they are (no string is read as a number)
Value = bool | int | float | str
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_DEFAULT_CAPTURE_ENV = [
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "SLURM_JOB_ID",
    "VIRTUAL_ENV",
    "CONDA_DEFAULT_ENV",
]

Script = Annotated[str, Meta(min_length=1)]


class _Strict(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of the config files' tables: unknown keys are refused.

    Every table is built by keyword (``kw_only``, repeated on each class for type checkers).
    """


class Runners(_Strict, kw_only=True):
    """The scripts of the four phases, as paths relative to the experiment folder."""

    pre_run: str | None = field(default=None, name="pre-run")
    run: Script
    post_run: str | None = field(default=None, name="post-run")
    fetch: Script

    @classmethod
    def from_phases(cls, scripts: Mapping[str, str]) -> Runners:
        """The runners of a phase -> script mapping (a record's ``runners``), unchecked."""
        return cls(
            pre_run=scripts.get("pre-run"),
            run=scripts.get("run", ""),
            post_run=scripts.get("post-run"),
            fetch=scripts.get("fetch", ""),
        )

    def by_phase(self) -> dict[str, str]:
        """Phase name -> script, for the phases that have one."""
        scripts = {
            "pre-run": self.pre_run,
            "run": self.run,
            "post-run": self.post_run,
            "fetch": self.fetch,
        }
        return {phase: s for phase, s in scripts.items() if s}


def _default_runners() -> Runners:
    return Runners(pre_run="pre-run.sh", run="run.sh", post_run="post-run.sh", fetch="fetch.sh")


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


class ExperimentConfig(_Strict, kw_only=True):
    """``labledger.toml``: what the experiment is and the defaults of its runs."""

    name: Annotated[str, Meta(min_length=1, max_length=MAX_NAME)]
    description: Annotated[str, Meta(max_length=MAX_TEXT)] = ""
    capture_env: list[str] = field(default_factory=lambda: list(_DEFAULT_CAPTURE_ENV))
    variables: dict[str, Value] = field(default_factory=dict)
    runners: Runners = field(default_factory=_default_runners)


class RunConfig(_Strict, kw_only=True):
    """``run.toml``: one run's name, hypothesis, variables, runners and observations."""

    name: Annotated[str, Meta(max_length=MAX_NAME)] = ""
    hypothesis: Annotated[str, Meta(max_length=MAX_TEXT)] = ""
    variables: dict[str, Value] = field(default_factory=dict)
    runners: Runners
    observations: Annotated[str, Meta(max_length=MAX_TEXT)] = ""
    #: files the run writes whose values become its results (JSON, TOML or CSV)
    results: Annotated[
        list[Annotated[str, Meta(min_length=1, max_length=1000)]], Meta(max_length=100)
    ] = field(default_factory=list)


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


ConfigT = TypeVar("ConfigT", ExperimentConfig, RunConfig)


def validate_config(model: type[ConfigT], data: dict[str, Any], path: Path) -> ConfigT:
    """Check ``data`` against ``model``; a problem raises ConfigError naming file and field."""
    try:
        return check_config(model, data)
    except ConfigError as exc:
        field_name = exc.details["field"]
        raise ConfigError(
            f"{path}: field '{field_name}': {exc.message}. Edit the file and try again.",
            path=str(path),
            field=field_name,
        ) from None


def check_config(model: type[ConfigT], data: dict[str, Any]) -> ConfigT:
    """``data`` as a ``model``; the first problem raises ConfigError with its ``field`` and a
    message saying what was expected and got (:func:`validate_config` adds the file)."""
    problem = _variables_problem(data)
    if problem is None:
        try:
            return msgspec.convert(_runners_by_name(data), type=model, strict=True)
        except msgspec.ValidationError as exc:
            problem = _explain(model, data, str(exc))
    field_name, detail = problem
    raise ConfigError(detail, field=field_name)


#: the phases' field names, which a config may use for their keys (``pre_run = "..."``)
_PHASE_FIELDS = {"pre_run": "pre-run", "post_run": "post-run"}


def _runners_by_name(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with a ``[runners]`` key spelt as the field's name (``pre_run``) renamed to the
    phase's (``pre-run``). A table giving both spellings keeps both: the field's name is then
    refused as an unknown key."""
    runners = data.get("runners")
    if not isinstance(runners, dict) or not any(key in runners for key in _PHASE_FIELDS):
        return data
    renamed: dict[str, Any] = {}
    for key, value in runners.items():
        phase = _PHASE_FIELDS.get(key)
        renamed[phase if phase is not None and phase not in runners else key] = value
    return {**data, "runners": renamed}


def _variables_problem(data: dict[str, Any]) -> tuple[str, str] | None:
    """The first bad variable of ``data`` (its field and what is wrong), if any.

    Checked here rather than by msgspec, whose errors do not name the key of a table's value.
    """
    variables = data.get("variables")
    if not isinstance(variables, dict):
        return None  # missing (the default) or not a table: msgspec says so
    for name, value in variables.items():
        if not isinstance(value, bool | int | float | str):
            return (
                f"variables.{name}",
                f"expected a boolean, an integer, a float or a string, got {_shown(value)}",
            )
    try:
        _check_variables(variables)
    except ValueError as exc:
        return "variables", str(exc)
    return None


#: ``<message> - at `$.runners.run``` or ``<message>`` (at the top of the file)
_AT = re.compile(r"\A(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?\Z", re.DOTALL)
_PART = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_NAMED = re.compile(
    r"\AObject (?P<what>missing required|contains unknown) field `(?P<name>[^`]*)`\Z"
)
_GOT = re.compile(r", got `[^`]*`\Z")


def _explain(model: type[msgspec.Struct], data: Any, error: str) -> tuple[str, str]:
    """(field, what was expected and got) of msgspec's first validation error."""
    found = _AT.match(error)
    message, path = (found["message"], found["path"] or "") if found else (error, "")
    loc: list[str | int] = [
        name or (int(index) if index.isdigit() else index) for name, index in _PART.findall(path)
    ]
    named = _NAMED.match(message)
    if named:
        field_name = ".".join(str(p) for p in [*loc, named["name"]])
        if named["what"] == "missing required":
            return field_name, "this field is required and is missing"
        allowed = ", ".join(_allowed_keys(model, loc))
        return field_name, f"unknown field; expected one of: {allowed}"
    detail = message[:1].lower() + message[1:]
    value, ok = _value_at(data, loc)
    if ok:
        detail = _GOT.sub("", detail) + f", got {_shown(value)}"
    return ".".join(str(p) for p in loc) or "(file)", detail


def _value_at(data: Any, loc: list[str | int]) -> tuple[Any, bool]:
    for part in loc:
        try:
            data = data[part]
        except (LookupError, TypeError):
            return None, False
    return data, True


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _allowed_keys(model: type[msgspec.Struct], loc: list[str | int]) -> list[str]:
    current: type[msgspec.Struct] = model
    for part in loc:
        sub = next((f.type for f in msgspec.structs.fields(current) if f.encode_name == part), None)
        if isinstance(sub, type) and issubclass(sub, msgspec.Struct):
            current = sub
        else:
            return []
    return [f.encode_name for f in msgspec.structs.fields(current)]


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
    return validate_config(ExperimentConfig, _load(path), path)


def load_run_config(path: Path) -> RunConfig:
    """Read and check ``run.toml``."""
    return validate_config(RunConfig, _load(path), path)


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
