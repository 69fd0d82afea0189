"""`labledger campaign` against a real `labledger serve`: create from YAML, control, report."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from labledger.client import ExperimentClient
from labledger_fixtures import LiveServerFactory, serve_command

SPEC = """\
campaign_name: buffer screen
campaign_description: pH against salt
experiment_design:
  experiment_name: titration
  parameters: {volume_ml: 10}
status: queued
sweep:
  grid:
    ph: [6, 7]
    salt: [NaCl, KCl]
  list:
    - {ph: 9}
"""


def labledger(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_")}
    return subprocess.run(
        [*serve_command(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=cwd,
    )


def test_create_from_yaml_then_pause_resume_and_report(
    live_server: LiveServerFactory, tmp_path: Path
) -> None:
    server = live_server()
    spec = tmp_path / "screen.campaign.yaml"
    spec.write_text(SPEC)
    made = labledger("campaign", "create", str(spec), "--server-url", server.url, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "with 5 experiment(s)" in made.stdout
    cid = made.stdout.split()[1]
    paused = labledger("campaign", "pause", cid, "--server-url", server.url, cwd=tmp_path)
    assert paused.returncode == 0 and "is now paused" in paused.stdout
    with ExperimentClient(server.url) as client:
        assert client.claim("w") is None  # held
    labledger("campaign", "resume", cid, "--server-url", server.url, cwd=tmp_path)
    shown = labledger("campaign", "show", cid, "--server-url", server.url, cwd=tmp_path)
    assert "0 of 5 finished; queued 5" in shown.stdout
    with ExperimentClient(server.url) as client:
        held = client.claim("bench-robot-1")
        assert held is not None
    queue = labledger("queue", "--server-url", server.url, cwd=tmp_path)
    assert queue.returncode == 0, queue.stderr
    assert "running (1)" in queue.stdout and "queued (4)" in queue.stdout
    assert "bench-robot-1" in queue.stdout and held.experiment_id in queue.stdout
    out = tmp_path / "report.html"
    report = labledger(
        "campaign",
        "report",
        cid,
        "--format",
        "html",
        "-o",
        str(out),
        "--server-url",
        server.url,
        cwd=tmp_path,
    )
    assert report.returncode == 0 and "buffer screen" in out.read_text()
    listed = labledger("campaign", "list", "--server-url", server.url, cwd=tmp_path)
    assert cid in listed.stdout


def test_bad_spec_and_refused_change_say_what_is_wrong(
    live_server: LiveServerFactory, tmp_path: Path
) -> None:
    server = live_server()
    bad = tmp_path / "bad.campaign.yaml"
    bad.write_text("campaign_name: x\nsweep: {grid: {ph: [1, 2]}}\n")
    result = labledger("campaign", "create", str(bad), "--server-url", server.url, cwd=tmp_path)
    assert result.returncode != 0 and "experiment_design" in result.stderr
    broken = tmp_path / "broken.campaign.yaml"
    broken.write_text("campaign_name: [unclosed\n")
    result = labledger("campaign", "create", str(broken), "--server-url", server.url, cwd=tmp_path)
    assert result.returncode == 2 and "not valid YAML" in result.stderr
    good = tmp_path / "good.campaign.yaml"
    good.write_text(SPEC)
    cid = labledger(
        "campaign", "create", str(good), "--server-url", server.url, cwd=tmp_path
    ).stdout.split()[1]
    labledger("campaign", "cancel", cid, "--server-url", server.url, cwd=tmp_path)
    again = labledger("campaign", "pause", cid, "--server-url", server.url, cwd=tmp_path)
    assert again.returncode == 1 and "'cancelled'" in again.stderr
