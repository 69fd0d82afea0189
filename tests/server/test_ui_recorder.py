"""A run recorded with the local recorder and pushed to a server shows on its experiment page."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from labledger_fixtures import LiveServerFactory
from runner.recorder_support import labledger, labledger_json, make_experiment

RUN = 'mkdir -p results && printf "yield=0.42\\n" > results/summary.txt && echo "ran with $lr"\n'


def test_pushed_recorder_run_shows_notes_phases_logs_and_outputs(
    tmp_path: Path, live_server: LiveServerFactory
) -> None:
    exp = make_experiment(tmp_path / "exp", run=RUN)
    run = labledger_json(
        exp,
        "new",
        "--name",
        "lr sweep",
        "--hypothesis",
        "a smaller lr converges",
        "--var",
        "lr=0.1",
    )
    labledger(exp, "run")
    labledger(exp, "end", "--observations", "loss flat after epoch 3")
    server = live_server()
    labledger_json(exp, "push", "--server", server.url)

    with httpx.Client(base_url=server.url.rstrip("/")) as http:
        html = http.get(f"/ui/experiments/{run['run_id']}").text
        assert "Recorder run" in html
        assert "a smaller lr converges" in html and "loss flat after epoch 3" in html
        assert '<table class="phases">' in html
        # variables, results and metric charts come before the raw records of the run
        sections = [html.index(f'id="{h}"') for h in ("metrics-h", "design-h", "results-h")]
        assert max(sections) < html.index('id="recorder-h"')
        downloads = dict(
            (label, href)
            for href, label in re.findall(r'<a href="(/blobs/[0-9a-f]+)" download="([^"]+)"', html)
        )
        output = next(href for label, href in downloads.items() if label.endswith("summary.txt"))
        assert http.get(output).content == b"yield=0.42\n"
        log = next(href for label, href in downloads.items() if label == "run.log")
        assert "ran with 0.1" in http.get(log).text
