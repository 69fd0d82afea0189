"""The five stages of a run, walked with the real CLI in a real git repository."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from runner.recorder_support import git, labledger, labledger_json, make_experiment, write_script

# every test here drives several real labledger processes: seconds each
pytestmark = pytest.mark.slow

RUN = """\
mkdir -p results
python3 -c "import os; print('loss', 1.0 / float(os.environ['lr']))" > results/metrics.txt
echo "epochs=$epochs run=$LABLEDGER_RUN_ID dir=$LABLEDGER_EXPERIMENT_DIR"
"""


def test_five_stages_start_configure_run_observe_end(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run=RUN)

    # 1. start: a run with its config file, prefilled from the experiment defaults
    created = labledger_json(exp, "new", "--name", "baseline", "--hypothesis", "lr 0.1 is fine")
    assert created["status"] == "planned"
    assert Path(created["run_config"]) == exp / "run.toml"

    # 2. configure: edit the file by hand, as a user would
    text = (exp / "run.toml").read_text()
    text = text.replace("[variables]\n", '[variables]\nlr = 0.1\nepochs = 3\nopt = "adam"\n')
    (exp / "run.toml").write_text(text)
    (exp / "notes.txt").write_text("an untracked file\n")  # uncommitted changes are recorded

    # 3. run: the four phases as real processes, with variables in their environment
    ran = labledger(exp, "run")
    assert f"epochs=3 run={created['run_id']} dir={exp}" in ran.stdout

    # 4. observe
    shown = labledger_json(exp, "show")
    assert shown["experiment"]["experiment_id"] == created["run_id"]
    assert shown["experiment"]["status"] == "completed"
    assert shown["experiment"]["run_name"] == "baseline"
    assert shown["experiment"]["parameters"] == {"lr": 0.1, "epochs": 3, "opt": "adam"}
    assert shown["experiment"]["experiment_design"]["experiment_name"] == "demo"
    assert [p["exit_code"] for p in shown["phases"]] == [0, 0, 0, 0]
    assert shown["code"]["commit"] == git(exp, "rev-parse", "HEAD").strip()
    assert shown["code"]["branch"] == "main"
    assert shown["code"]["dirty"] is True
    assert "notes.txt" in shown["code"]["changed_files"]
    assert shown["environment"]["python_version"]
    scripts = {e["path"] for e in shown["files"]["scripts"]}
    assert scripts == {"pre-run.sh", "run.sh", "post-run.sh", "fetch.sh"}
    assert [e["path"] for e in shown["files"]["outputs"]] == ["outputs/metrics.txt"]
    assert "loss 10.0" in (exp / "outputs" / "metrics.txt").read_text()
    assert "outputs/metrics.txt" in labledger(exp, "ls").stdout

    # 5. end: observations recorded, run sealed, folder ready for the next run
    ended = labledger_json(exp, "end", "--observations", "loss 10, as expected")
    assert ended["sealed"] is True
    assert not (exp / "run.toml").exists()
    assert not (exp / "outputs" / "metrics.txt").exists()
    assert labledger_json(exp, "show", "1")["observations"] == "loss 10, as expected"

    # a second run, prefilled from the first, with a changed script and variable
    second = labledger_json(exp, "new", "--var", "lr=0.5", "--hypothesis", "lr 0.5 is faster")
    assert second["number"] == 2
    assert second["variables"] == {"lr": 0.5, "epochs": 3, "opt": "adam"}
    write_script(exp / "run.sh", RUN + "echo changed\n")
    labledger(exp, "run")
    labledger(exp, "end", "-o", "loss 2")

    listed = labledger_json(exp, "list")
    assert [r["number"] for r in listed] == [2, 1]
    assert [r["number"] for r in labledger_json(exp, "list", "--where", "lr>0.2")] == [2]
    assert [r["number"] for r in labledger_json(exp, "list", "--where", "opt=adam")] == [2, 1]
    assert [r["number"] for r in labledger_json(exp, "list", "--text", "as expected")] == [1]
    assert labledger_json(exp, "list", "--status", "failed") == []

    diff = labledger(exp, "compare", "1", "2").stdout
    assert "lr: 0.1 -> 0.5" in diff
    assert "+echo changed" in diff
    assert "changed   outputs/metrics.txt" in diff

    rows = list(csv.DictReader(io.StringIO(labledger(exp, "export", "--format", "csv").stdout)))
    assert [(r["number"], r["var:lr"], r["observations"]) for r in rows] == [
        ("2", "0.5", "loss 2"),
        ("1", "0.1", "loss 10, as expected"),
    ]
    exported = json.loads(labledger(exp, "export", "--format", "json").stdout)
    assert exported[1]["hypothesis"] == "lr 0.1 is fine"


def test_checkout_restores_scripts_config_and_outputs_and_rerun_reports_a_match(
    tmp_path: Path,
) -> None:
    exp = make_experiment(tmp_path / "exp", run=RUN)
    labledger(exp, "new", "--var", "lr=0.25", "--var", "epochs=1")
    labledger(exp, "run")
    labledger(exp, "end", "-o", "first")
    write_script(exp / "run.sh", "echo 'a different experiment now'\n")

    labledger(exp, "checkout", "1", str(tmp_path / "co"))
    co = tmp_path / "co"
    assert "loss 4.0" in (co / "outputs" / "metrics.txt").read_text()
    assert (co / "run.sh").read_text().endswith(RUN)
    assert "lr = 0.25" in (co / "run.toml").read_text()
    assert (co / "logs" / "run.log").is_file()

    rerun = labledger_json(exp, "rerun", "1")
    assert rerun["outputs_match"] is True
    assert rerun["rerun_of"] == labledger_json(exp, "show", "1")["experiment"]["experiment_id"]
    # the folder's own run.sh was not touched by the rerun
    assert "a different experiment" in (exp / "run.sh").read_text()


def test_rerun_reports_outputs_that_differ(tmp_path: Path) -> None:
    exp = make_experiment(
        tmp_path / "exp", run="mkdir -p results; date +%s%N > results/clock.txt\n"
    )
    labledger(exp, "new")
    labledger(exp, "run")
    result = labledger(exp, "rerun", "1", ok=False)
    assert result.returncode == 1
    assert "outputs differ" in result.stdout
    assert "outputs/clock.txt" in result.stdout


def test_end_without_text_takes_the_observations_from_the_editor(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run="echo hi\n")
    labledger(exp, "new")
    labledger(exp, "run")
    editor = tmp_path / "editor.sh"
    write_script(editor, 'printf "seen in the editor\\n# a comment line\\n" > "$1"\n')
    labledger(exp, "end", EDITOR=str(editor))
    assert labledger_json(exp, "show", "1")["observations"] == "seen in the editor"


def test_end_takes_the_observations_typed_into_run_toml(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run="echo hi\n")
    labledger(exp, "new")
    labledger(exp, "run")
    text = (exp / "run.toml").read_text().replace('observations = ""', 'observations = "by hand"')
    (exp / "run.toml").write_text(text)
    labledger(exp, "end")
    assert labledger_json(exp, "show", "1")["observations"] == "by hand"


def test_rerun_says_when_todays_code_differs_and_can_run_at_the_recorded_code(
    tmp_path: Path,
) -> None:
    exp = make_experiment(
        tmp_path / "exp",
        run='mkdir -p results && python3 -c "import model; model.main()"\n',
    )
    model = exp / "model.py"
    model.write_text("def main():\n    open('results/out.txt', 'w').write('base')\n")
    git(exp, "add", "model.py")
    git(exp, "commit", "-q", "-m", "base model")
    # run 1 uses an uncommitted change: its code is the commit plus a patch
    model.write_text("def main():\n    open('results/out.txt', 'w').write('v1')\n")
    labledger_json(exp, "new")
    labledger(exp, "run")
    labledger(exp, "end", "-o", "v1")
    model.write_text("def main():\n    open('results/out.txt', 'w').write('v2')\n")
    git(exp, "commit", "-q", "-am", "v2 model")
    status_before = git(exp, "status", "--porcelain")

    today = labledger(exp, "rerun", "1", "--json", ok=False)
    assert "differs from run 1's recorded code" in today.stderr
    assert "labledger rerun 1 --at-recorded-code" in today.stderr
    answer = json.loads(today.stdout)
    assert answer["outputs_match"] is False and answer["code_differs"]
    labledger(exp, "end", "-o", "today's code")

    recorded = labledger_json(exp, "rerun", "1", "--at-recorded-code")
    assert recorded["outputs_match"] is True and recorded["at_recorded_code"] is True
    shown = labledger_json(exp, "show", str(recorded["number"]))
    original = labledger_json(exp, "show", "1")
    assert shown["code"]["commit"] == original["code"]["commit"]
    assert shown["code"]["patch_digest"] == original["code"]["patch_digest"]
    # the repository was not touched: same files, same status, no worktree left behind
    assert "v2" in model.read_text()
    assert git(exp, "diff", "HEAD") == ""
    assert set(git(exp, "status", "--porcelain").splitlines()) - set(
        status_before.splitlines()
    ) <= {"?? outputs/", "?? run.toml"}  # the open run's own files
    assert git(exp, "worktree", "list").count("\n") == 1
