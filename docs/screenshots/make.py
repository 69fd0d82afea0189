"""Take a PNG of each page of the web UI with headless Chromium, over realistic demo data.

Starts ``labledger serve`` on a free loopback port with a throwaway SQLite database, records a
small campaign (a temperature sweep with yields), a few loose experiments in various states and
a queue, then saves ``docs/screenshots/<page>.png``. Needs Chromium and chromedriver
(``apt-get install chromium chromium-driver``) and selenium (in the dev extras).

    python docs/screenshots/make.py            # writes docs/screenshots/*.png
    python docs/screenshots/make.py --out /tmp/shots
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ACTOR = {"X-Labledger-Actor": "demo"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    code = "import sys; from labledger.cli.entry import main; sys.argv[0]='labledger'; main()"
    cmd = [
        sys.executable,
        "-c",
        code,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db-url",
        f"sqlite:///{workdir}/demo.sqlite3",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, cwd=workdir, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("labledger serve did not start")


def seed(base: str) -> dict[str, Any]:
    """Demo data through the public API; returns ids the pages need."""
    c = httpx.Client(base_url=base, headers=ACTOR, timeout=10)

    def experiment(name: str, run: str, **extra: Any) -> str:
        design = {
            "experiment_name": name,
            "experiment_description": extra.pop("desc", None),
            "parameters": extra.pop("design_parameters", {}),
        }
        r = c.post("/experiment", json={"experiment_design": design, "run_name": run, **extra})
        r.raise_for_status()
        return str(r.json()["_id"])

    def results(exp_id: str, values: dict[str, Any]) -> None:
        r = c.post(f"/experiment/{exp_id}/results", json={"values": values})
        if r.status_code == 404 and "No route" in r.text:  # a server without results yet
            current = c.get(f"/experiment/{exp_id}").json()["metadata"]
            c.patch(f"/experiment/{exp_id}", json={"metadata": {**current, "results": values}})

    campaign = c.post(
        "/campaign",
        json={
            "campaign_name": "Suzuki coupling: temperature sweep",
            "campaign_description": "Yield of the Pd-catalysed coupling from 40 to 100 °C, "
            "2 mol% catalyst.",
            "parameters": {"catalyst": "Pd(PPh3)4", "loading_mol_pct": 2},
        },
    ).json()["campaign_id"]
    ids = []
    temperatures = list(range(40, 101, 10))
    for temp in temperatures:  # the whole sweep first, as a sweep registers it
        exp_id = experiment(
            "Suzuki coupling",
            f"T = {temp} °C",
            campaign_id=campaign,
            desc="Aryl bromide + phenylboronic acid, K2CO3, dioxane/water.",
            design_parameters={"temperature_c": 60, "time_h": 4},
            parameters={"temperature_c": temp, "time_h": 4, "solvent": "dioxane/water"},
        )
        ids.append(exp_id)
    for exp_id, temp in list(zip(ids, temperatures, strict=True))[:5]:
        results(
            exp_id,
            {
                "yield_pct": round(18 + 1.1 * (temp - 40) - 0.004 * (temp - 40) ** 2 * 3, 1),
                "purity_pct": round(97.5 - 0.08 * (temp - 40), 1),
            },
        )
        c.post(f"/experiment/{exp_id}/end")
    c.post(f"/experiment/{ids[5]}/end", params={"status": "failed"})
    c.post(f"/experiment/{ids[6]}/pause")
    rec = experiment(
        "Catalyst screen",
        "screen-2026-11-21",
        desc="Which ligand gives the best turnover?",
        parameters={"ligand": "SPhos", "base": "K3PO4", "equiv": 2.0},
        metadata={
            "recorder.hypothesis": "Bulky biaryl phosphines raise turnover at low loading.",
            "recorder.observations": "Colour change to dark brown after 20 min; "
            "full conversion by TLC at 2 h.",
            "recorder.code_version": {"commit": "3f9c2d1", "branch": "main", "dirty": False},
            "recorder.outputs": ["hplc/trace.csv", "notes.md"],
        },
    )
    trace = "time_min,absorbance\n" + "".join(f"{t},{0.02 * t:.2f}\n" for t in range(0, 30, 5))
    c.post(
        f"/experiment/{rec}/files/hplc_trace",
        files={"file": ("trace.csv", trace.encode(), "text/csv")},
    )
    c.post(f"/experiment/{rec}/progress", json={"progress": 0.7, "message": "sampling"})
    for name, frac in (("weighed", 0.1), ("heated", 0.4), ("sampled", 0.7)):
        r = c.post(f"/experiment/{rec}/milestones", json={"name": name, "progress": frac})
        if r.status_code == 404 and "No route" in r.text:
            break
    results(
        rec,
        {
            "turnover_number": 870,
            "conversion_pct": 99.1,
            "series_conversion": [0, 35, 62, 81, 93, 99],
        },
    )
    for i in range(4):
        experiment(
            "Crystallisation",
            f"batch {i + 1}",
            status="queued",
            priority=5 - i,
            parameters={"cooling_rate_k_min": 0.5 * (i + 1)},
        )
    c.post("/queue/claim", json={"worker_id": "robot-arm-2", "lease_seconds": 600})
    other = experiment("Titration", "NaOH standardisation", parameters={"volume_ml": 25.0})
    c.post(f"/experiment/{other}/cancel")
    sweep = c.post("/campaign", json={"campaign_name": "Optimiser sweep"}).json()["campaign_id"]
    runs = []
    for opt, speed in (("adam", 1.0), ("sgd", 0.4)):
        for lr in (0.1, 0.03, 0.01):
            exp_id = experiment(
                "Yield model training",
                f"{opt} lr={lr}",
                campaign_id=sweep,
                parameters={"optimizer": opt, "lr": lr, "epochs": 200},
            )
            rate = speed * math.sqrt(lr) * 0.12
            points = [
                {"name": name, "value": value, "step": step}
                for step in range(200)
                for name, value in (
                    ("loss", 0.05 + math.exp(-rate * step) + 0.02 * math.sin(step / 3)),
                    ("val_accuracy", 0.95 - 0.45 * math.exp(-rate * step)),
                )
            ]
            c.post(f"/experiment/{exp_id}/metrics", json={"metrics": points}).raise_for_status()
            c.post(f"/experiment/{exp_id}/end")
            runs.append(exp_id)
    return {
        "campaign": campaign,
        "recorder": rec,
        "a": ids[2],
        "b": ids[4],
        "sweep": sweep,
        "training": ",".join(runs),
    }


GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada Chemist",
    "GIT_AUTHOR_EMAIL": "ada@lab.example",
    "GIT_COMMITTER_NAME": "Ada Chemist",
    "GIT_COMMITTER_EMAIL": "ada@lab.example",
    "GIT_CONFIG_NOSYSTEM": "1",
    "EDITOR": "false",
}
CLI = [sys.executable, "-c", "from labledger.cli.entry import main; main()"]
RUN_SH = """#!/usr/bin/env bash
set -eu
mkdir -p results
python3 - <<'PY'
import math, os
lr = float(os.environ.get("lr", "0.1"))
with open("results/loss.csv", "w") as f:
    f.write("epoch,loss\\n")
    for epoch in range(10):
        f.write(f"{epoch},{math.exp(-lr * 3 * epoch):.4f}\\n")
print(f"trained 10 epochs with lr={lr}")
PY
"""
FETCH_SH = """#!/usr/bin/env bash
set -eu
cp -r results/. "$LABLEDGER_OUTPUTS_DIR"/
"""


def recorded_run(base: str, root: Path) -> str:
    """A run made with the local recorder (init, new, run, end) and pushed; returns its id."""

    def cli(*args: str) -> str:
        env = {**os.environ, **GIT_ENV}
        done = subprocess.run([*CLI, *args], cwd=root, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"labledger {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def git(*args: str) -> None:
        env = {**os.environ, **GIT_ENV}
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)

    root.mkdir(parents=True)
    git("init", "-q", "-b", "main")
    cli("init", "--name", "lr-study", "--description", "Learning-rate study of the yield model")
    for name, body in (("run.sh", RUN_SH), ("fetch.sh", FETCH_SH)):
        (root / name).write_text(body)
        (root / name).chmod(0o755)
    git("add", "-A")
    git("commit", "-q", "-m", "yield model training")
    run = json.loads(
        cli(
            "new",
            "--json",
            "--name",
            "lr=0.3",
            "--hypothesis",
            "A larger learning rate reaches a low loss within 5 epochs.",
            "--var",
            "lr=0.3",
        )
    )
    cli("run")
    cli("end", "--observations", "Loss fell below 0.02 by epoch 5; no divergence.")
    cli("push", "--server", base)
    return str(run["run_id"])


def driver(profile: Path, width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium whose profile lives in ``profile`` (removed with the caller's temp)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--window-size={width},{height}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def shoot(browser: Any, url: str, path: Path) -> None:
    """A full-page PNG, through the DevTools protocol (beyond the window's height)."""
    browser.get(url)
    time.sleep(0.5)
    size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = start_server(Path(tmp))
        try:
            ids = seed(base)
            ids["pushed"] = recorded_run(base, Path(tmp) / "lr-study")
            browser = driver(Path(tmp) / "chromium-profile")
            try:
                pages = {
                    "experiments": "/ui/experiments",
                    "experiment": f"/ui/experiments/{ids['recorder']}",
                    "campaign": f"/ui/campaigns/{ids['campaign']}"
                    "?x=parameters.temperature_c&y=results.yield_pct",
                    "recorder-run": f"/ui/experiments/{ids['pushed']}",
                    "compare": f"/ui/compare?ids={ids['a']},{ids['b']}",
                    "queue": "/ui/queue",
                    "experiment-metrics": f"/ui/experiments/{ids['training'].split(',')[0]}",
                    "compare-metrics": f"/ui/compare?ids={ids['training']}",
                    "campaign-plots": f"/ui/campaigns/{ids['sweep']}",
                }
                for name, path in pages.items():
                    shoot(browser, base + path, args.out / f"{name}.png")
                    print(f"wrote {args.out / (name + '.png')}")
            finally:
                browser.quit()
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
