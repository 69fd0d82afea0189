"""Run and experiment config files: errors name file, field and what was expected."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labledger.errors import ConfigError
from labledger.runner.config import (
    ExperimentConfig,
    RunConfig,
    Runners,
    load_experiment_config,
    load_run_config,
    parse_var,
    render_experiment_config,
    render_run_config,
)

RUNNERS = '[runners]\nrun = "run.sh"\nfetch = "fetch.sh"\n'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ('[runners]\nrun = "run.sh"\n', "runners.fetch", "required"),
        ('[runners]\nfetch = "fetch.sh"\n', "runners.run", "required"),
        ("hypothesis = 'x'\n", "runners", "required"),
        ('colour = "blue"\n' + RUNNERS, "colour", "expected one of: name, hypothesis"),
        (RUNNERS + 'train = "t.sh"\n', "runners.train", "expected one of: pre-run, run"),
        ("hypothesis = 3\n" + RUNNERS, "hypothesis", "expected `str`, got 3"),
        ('[variables]\n"bad-name" = 1\n' + RUNNERS, "variables", "environment variable"),
        ("[variables]\nLABLEDGER_X = 1\n" + RUNNERS, "variables", "reserved"),
        ("[variables]\nlr = [1, 2]\n" + RUNNERS, "variables.lr", "got [1, 2]"),
        ("[variables]\nday = 2026-01-01\n" + RUNNERS, "variables.day", "a float or a string"),
        ('[variables]\nx = "a\\u0000b"\n' + RUNNERS, "variables", "NUL byte"),
        ('[runners]\nrun = ""\nfetch = "f.sh"\n', "runners.run", "length >= 1, got ''"),
        (
            '[runners]\npre_run = "p.sh"\npre-run = "q.sh"\nrun = "r.sh"\nfetch = "f.sh"\n',
            "runners.pre_run",
            "expected one of: pre-run, run, post-run, fetch",
        ),
        ('results = ["a", ""]\n' + RUNNERS, "results.1", "length >= 1"),
        (f"name = '{'n' * 1001}'\n" + RUNNERS, "name", "length <= 1000"),
        (f"results = {['r'] * 101}\n" + RUNNERS, "results", "length <= 100"),
    ],
    ids=[
        "missing-fetch",
        "missing-run",
        "missing-runners",
        "unknown-field",
        "unknown-phase",
        "bad-type",
        "bad-variable-name",
        "reserved-variable",
        "list-variable",
        "date-variable",
        "nul-in-variable",
        "empty-run",
        "phase-spelt-both-ways",
        "empty-result-file",
        "long-name",
        "too-many-result-files",
    ],
)
def test_a_bad_run_config_names_the_file_field_and_expectation(
    tmp_path: Path, text: str, field: str, expected: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_run_config(path)
    message = info.value.message
    assert str(path) in message
    assert f"'{field}" in message
    assert expected in message
    assert info.value.path == str(path)


def test_phases_spelt_as_field_names_are_read_as_the_phases(tmp_path: Path) -> None:
    # run.toml and labledger.toml have always taken pre_run and post_run for pre-run and post-run
    runners = '[runners]\npre_run = "p.sh"\nrun = "r.sh"\npost_run = "o.sh"\nfetch = "f.sh"\n'
    run = load_run_config(_write(tmp_path, runners)).runners
    assert run.by_phase() == {"pre-run": "p.sh", "run": "r.sh", "post-run": "o.sh", "fetch": "f.sh"}
    path = tmp_path / "labledger.toml"
    path.write_text("name = 'x'\n" + runners)
    assert load_experiment_config(path).runners == run


def test_variables_keep_their_toml_types_without_coercion(tmp_path: Path) -> None:
    text = '[variables]\nn = "1"\nf = 1.0\ni = 1\nb = false\n' + RUNNERS
    loaded = load_run_config(_write(tmp_path, text)).variables
    assert [(k, type(v)) for k, v in loaded.items()] == [
        ("n", str),
        ("f", float),
        ("i", int),
        ("b", bool),
    ]


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("capture_env = 'HOME'\n", "capture_env", "expected `array`, got 'HOME'"),
        ("description = 'x'\n", "name", "required"),
        ("name = ''\n", "name", "length >= 1"),
        ("name = 'x'\n[runners]\nfetch = 'f.sh'\n", "runners.run", "required"),
        ("name = 'x'\nruns = 3\n", "runs", "expected one of: name, description, capture_env"),
    ],
    ids=["capture-env-not-a-list", "missing-name", "empty-name", "missing-run", "unknown-field"],
)
def test_a_bad_experiment_config_names_the_file_field_and_expectation(
    tmp_path: Path, text: str, field: str, expected: str
) -> None:
    path = tmp_path / "labledger.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_experiment_config(path)
    assert f"{path}: field '{field}': " in info.value.message
    assert expected in info.value.message
    assert info.value.details["field"] == field


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "name = 'x'\nhypothesis = \n")
    with pytest.raises(ConfigError, match=r"run\.toml: not valid TOML.*line 2"):
        load_run_config(path)


def test_a_missing_experiment_config_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_experiment_config(tmp_path / "labledger.toml")


def test_the_experiment_template_reads_back_as_written(tmp_path: Path) -> None:
    cfg = ExperimentConfig(name="sweep", description="why\nmulti-line", variables={"lr": 0.1})
    path = tmp_path / "labledger.toml"
    path.write_text(render_experiment_config(cfg))
    assert load_experiment_config(path) == cfg
    assert path.read_text().count("#") > 5  # commented for humans


@pytest.mark.parametrize(
    ("text", "name", "value"),
    [
        ("lr=0.01", "lr", 0.01),
        ("epochs=10", "epochs", 10),
        ("fast=true", "fast", True),
        ("opt=adam", "opt", "adam"),
        ('msg="a b"', "msg", "a b"),
        ("path=/data/x", "path", "/data/x"),
        ("empty=", "empty", ""),
    ],
)
def test_var_options_read_toml_values_or_bare_words(text: str, name: str, value: object) -> None:
    assert parse_var(text) == (name, value)


@pytest.mark.parametrize("text", ["novalue", "=3", "1x=3", "LABLEDGER_RUN_ID=1"])
def test_bad_var_options_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--var"):
        parse_var(text)


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True).filter(
    lambda n: not n.startswith("LABLEDGER_")
)
values = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=40).filter(lambda s: "\x00" not in s),  # NUL cannot be in an env var
)
scripts = st.text(min_size=1, max_size=30).filter(lambda s: s.strip() == s)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.text(max_size=40),
    hypothesis=st.text(max_size=200),
    observations=st.text(max_size=200),
    variables=st.dictionaries(names, values, max_size=6),
    run=scripts,
    pre_run=st.none() | scripts,
)
def test_any_run_config_written_reads_back_equal(
    tmp_path: Path,
    name: str,
    hypothesis: str,
    observations: str,
    variables: dict[str, bool | int | float | str],
    run: str,
    pre_run: str | None,
) -> None:
    cfg = RunConfig(
        name=name,
        hypothesis=hypothesis,
        observations=observations,
        variables=variables,
        runners=Runners(run=run, fetch="fetch.sh", pre_run=pre_run),
    )
    path = _write(tmp_path, render_run_config(cfg, run_id="01J0", number=1, experiment="e"))
    loaded = load_run_config(path)
    assert loaded == cfg
    for key, value in variables.items():
        if isinstance(value, float) and math.isinf(value):
            assert math.isinf(loaded.variables[key])  # type: ignore[arg-type]


@settings(max_examples=150)
@given(st.text(max_size=300))
def test_arbitrary_text_either_loads_or_raises_a_config_error(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            cfg = load_run_config(path)
        except ConfigError as exc:
            assert str(path) in exc.message
        else:
            assert cfg.runners.run and cfg.runners.fetch
            assert tomllib.loads(text)
