"""The container image and the compose stack, built and run on a real Docker engine.

The image is built from a local Debian base made with mmdebstrap (no registry is needed; the
base is cached by its tag), PostgreSQL from the same base (``compose.ci.yaml``), and the stack is
driven from outside as a lab would: the official MADSci client and ours, a file upload and
download, a restart of the labledger container, a backup. The build context is a copy of the
repository's files in a temp folder, with the host's extra CA certificates added to ``certs/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from labledger.client import ExperimentClient
from labledger_fixtures import free_port, server_env, unavailable

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "local/debian:bookworm"
IMAGE = "labledger-test:latest"
CONTEXT = [
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "README.md",
    "src",
    "docker",
    "certs",
    "compose.yaml",
    "compose.ci.yaml",
]
HOST_CERTS = Path("/usr/local/share/ca-certificates")
READY_TIMEOUT = 180.0
MADSCI_SCRIPT = """
import json, sys
from madsci.client.experiment_client import ExperimentClient
from madsci.common.types.experiment_types import ExperimentDesign

client = ExperimentClient(sys.argv[1])
made = client.start_experiment(ExperimentDesign(experiment_name="Compose check"), run_name="r1")
client.pause_experiment(made.experiment_id)
got = client.get_experiment(made.experiment_id)
print(json.dumps({"id": made.experiment_id, "status": got.status.value}))
"""


def _run(
    cmd: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 900,
) -> str:
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    shown = " ".join(cmd)
    assert proc.returncode == 0, (
        f"{shown} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    return proc.stdout


def _engine() -> None:
    for tool, package in (("docker", "docker.io"), ("docker-compose", "docker-compose")):
        if shutil.which(tool) is None:
            unavailable(f"{tool} not found (apt-get install {package}; .ci/run installs it)")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        unavailable(
            f"no Docker engine answers (start dockerd; .ci/run does): {info.stderr.strip()}"
        )


def _debian_mirror() -> str:
    for source in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        match = re.search(r"^URIs:\s*(\S+)", source.read_text(), re.MULTILINE)
        if match and "security" not in match.group(1):
            return match.group(1)
    listing = Path("/etc/apt/sources.list")
    if listing.exists():
        match = re.search(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", listing.read_text(), re.MULTILINE)
        if match:
            return match.group(1)
    return "http://deb.debian.org/debian"


def _base_image() -> None:
    """Make the local Debian base once; later runs find it by its tag."""
    known = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True)
    if known.returncode == 0:
        return
    if shutil.which("mmdebstrap") is None:
        unavailable("mmdebstrap not found (apt-get install mmdebstrap; .ci/run installs it)")
    pipeline = (
        f"mmdebstrap --quiet --variant=minbase bookworm - {_debian_mirror()} "
        f"| docker import - {BASE_IMAGE}"
    )
    _run(["bash", "-o", "pipefail", "-c", pipeline], timeout=600)


@dataclass
class Stack:
    folder: Path
    project: str
    url: str
    env: dict[str, str]

    def compose(self, *args: str, timeout: float = 900) -> str:
        files = ["-f", "compose.yaml", "-f", "compose.ci.yaml"]
        return _run(
            ["docker-compose", "-p", self.project, *files, *args],
            cwd=self.folder,
            env=self.env,
            timeout=timeout,
        )

    def container(self) -> str:
        return self.compose("ps", "-q", "labledger").strip()

    def wait_healthy(self) -> None:
        """Until Docker's own HEALTHCHECK says healthy and /health answers from outside."""
        deadline = time.monotonic() + READY_TIMEOUT
        state = "not started"
        while time.monotonic() < deadline:
            state = _run(
                ["docker", "inspect", "--format", "{{.State.Health.Status}}", self.container()]
            ).strip()
            if state == "healthy":
                try:
                    if httpx.get(f"{self.url}health", timeout=5).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            time.sleep(0.5)
        raise AssertionError(f"labledger is {state!r}:\n{self.compose('logs', '--no-color')}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _engine()
    _base_image()
    folder = tmp_path_factory.mktemp("compose")
    for name in CONTEXT:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, folder / name)
    for cert in HOST_CERTS.glob("*.crt"):
        shutil.copy2(cert, folder / "certs" / cert.name)
    port = free_port()
    env = server_env(
        {"LABLEDGER_PORT": str(port), "LABLEDGER_IMAGE": IMAGE, "BASE_IMAGE": BASE_IMAGE}
    )
    running = Stack(folder, f"lltest{uuid.uuid4().hex[:10]}", f"http://127.0.0.1:{port}/", env)
    try:
        running.compose("up", "-d", "--build")
        running.wait_healthy()
        yield running
    finally:
        running.compose("down", "--volumes", "--remove-orphans", timeout=300)


def _token(stack: Stack) -> str:
    logs = stack.compose("logs", "--no-color", "labledger")
    secrets: list[str] = re.findall(r"\blbl_[A-Za-z0-9_\-]{20,}", logs)
    assert len(secrets) == 1, f"expected the first start to print one token:\n{logs}"
    return secrets[0]


@pytest.mark.madsci
def test_the_stack_serves_both_clients_keeps_everything_across_a_restart_and_restores(
    stack: Stack, madsci_python: Path, tmp_path: Path
) -> None:
    assert httpx.get(f"{stack.url}experiments").status_code == 401, "open on a network address"
    token = _token(stack)
    madsci_env = {
        k: v
        for k, v in server_env().items()
        if not k.startswith(("MADSCI_", "EXPERIMENT_CLIENT_", "VIRTUAL_ENV", "PYTHON"))
    }
    with_credentials = stack.url.replace("http://", f"http://token:{token}@")
    out = _run(
        [str(madsci_python), "-c", MADSCI_SCRIPT, with_credentials], env=madsci_env, timeout=240
    )
    madsci = json.loads(out.strip().splitlines()[-1])
    assert madsci["status"] == "paused"

    payload = os.urandom(3 << 20)
    source = tmp_path / "spectrum.bin"
    source.write_bytes(payload)
    with ExperimentClient(stack.url, token=token, timeout=60) as client:
        assert client.get_experiment(madsci["id"]).status == "paused"
        ours = client.start_experiment({"experiment_name": "Compose check"}, run_name="ours")
        client.pause_experiment(ours.experiment_id)
        uploaded = client.upload_file(ours.experiment_id, "spectrum", source)
        client.download_file(ours.experiment_id, "spectrum", tmp_path / "before.bin")
    assert (tmp_path / "before.bin").read_bytes() == payload

    stack.compose("restart", "labledger", timeout=300)
    stack.wait_healthy()

    assert _token(stack) == token, "a restart must not print (or make) another token"
    with ExperimentClient(stack.url, token=token, timeout=60) as client:
        assert client.get_experiment(madsci["id"]).status == "paused"
        assert client.get_experiment(ours.experiment_id).status == "paused"
        client.continue_experiment(ours.experiment_id)
        assert client.get_result(ours.experiment_id, "spectrum").digest == uploaded.digest
        client.download_file(ours.experiment_id, "spectrum", tmp_path / "after.bin")
    assert (tmp_path / "after.bin").read_bytes() == payload

    said = stack.compose(
        "exec", "-T", "labledger", "labledger", "db", "backup", "--to", "/var/lib/labledger/backups"
    ).strip()
    assert said.startswith("Backed up /var/lib/labledger/backups/labledger-"), said
    assert "PostgreSQL database" in said and "result files" in said
    backup = said.removeprefix("Backed up ").split(": ", 1)[0]
    with ExperimentClient(stack.url, token=token, timeout=60) as client:
        later = client.start_experiment({"experiment_name": "After the backup"})

    # the restore of docs/deploy.md: stop the service, restore in a one-off container, start
    stack.compose("stop", "labledger", timeout=300)
    stack.compose(
        "run", "--rm", "--entrypoint", "labledger", "labledger", "db", "restore", backup, "--yes"
    )
    stack.compose("start", "labledger", timeout=300)
    stack.wait_healthy()
    with ExperimentClient(stack.url, token=token, timeout=60) as client:
        assert client.get_experiment(ours.experiment_id).status == "in_progress"
        assert client.get_experiment(madsci["id"]).status == "paused"
        assert later.experiment_id not in {e.experiment_id for e in client.get_experiments(100)}
