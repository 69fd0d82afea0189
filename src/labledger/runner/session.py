"""The recorder's flow: start an experiment, open a run, run its four phases, recover orphans.

``labledger new`` opens a run (status ``planned``), ``labledger run`` moves it to
``in_progress`` and runs pre-run, run, post-run and fetch as real processes, then archives the
outputs and logs and ends it ``completed``, ``failed`` or ``cancelled``. A run whose recorder
was killed is found by the next command and ended ``unknown`` with what was there.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import msgspec

from labledger.archive.manifest import FileEntry, archive_tree
from labledger.archive.store import no_space_is_storage_full
from labledger.core.ids import new_ulid, utcnow
from labledger.core.lifecycle import ExperimentStatus as S
from labledger.core.vocabulary import EventType
from labledger.errors import AlreadyExists, ConfigError, Conflict, LabledgerError, StorageFull
from labledger.runner import templates
from labledger.runner.closing import seal
from labledger.runner.config import (
    EXPERIMENT_FILE,
    RUN_FILE,
    ExperimentConfig,
    RunConfig,
    Runners,
    check_config,
    env_value,
    load_run_config,
    render_experiment_config,
    render_run_config,
    validate_config,
)
from labledger.runner.outcomes import read_metrics_file, read_result_file
from labledger.runner.phases import GRACE_S, SignalGuard, Watchdog, command_for, run_phase
from labledger.runner.record import (
    CodeVersion,
    MetricSummary,
    PhaseResult,
    RunDesign,
    RunExperiment,
    RunRecord,
)
from labledger.runner.workspace import STATE_DIR, Workspace

__all__ = [
    "Echo",
    "execute_run",
    "finalize",
    "init_experiment",
    "new_run",
    "recover_orphan",
    "seal_run",
]

#: where phase output goes besides the log (the terminal, normally)
Echo = Callable[[bytes], None]

#: seconds fetch may take after a stopped run, before it is terminated (then killed)
FETCH_AFTER_STOP_S = 6 * GRACE_S


def init_experiment(root: Path, *, name: str | None, description: str = "") -> Workspace:
    """Make ``root`` an experiment folder: config, script templates, outputs/ and the store."""
    ws = Workspace(root)
    if ws.config_path.exists():
        raise AlreadyExists(
            f"{ws.config_path} exists already: this folder is an experiment. "
            "Start a run with `labledger new`."
        )
    root.mkdir(parents=True, exist_ok=True)
    # checked as a hand-written labledger.toml would be (the name's and description's length)
    try:
        cfg = check_config(
            ExperimentConfig, {"name": name or ws.root.name, "description": description}
        )
    except ConfigError as exc:
        option = f"--{exc.details['field']}"
        raise ConfigError(f"{option}: {exc.message}", field=option) from None
    ws.config_path.write_text(render_experiment_config(cfg), encoding="utf-8")
    for phase, script in cfg.runners.by_phase().items():
        path = ws.root / script
        if not path.exists():
            path.write_text(templates.SCRIPTS[phase], encoding="utf-8")
            path.chmod(0o755)
    ws.outputs.mkdir(exist_ok=True)
    ws.create_state()
    return ws


def _previous_config(ws: Workspace, exp_cfg: ExperimentConfig) -> RunConfig:
    ids = ws.run_ids()
    if not ids:
        return RunConfig(variables=dict(exp_cfg.variables), runners=exp_cfg.runners)
    last = ws.load(ids[-1])
    runners = Runners.from_phases(last.runners) if last.runners else exp_cfg.runners
    return RunConfig(hypothesis=last.hypothesis, variables=dict(last.variables), runners=runners)


def new_run(
    ws: Workspace,
    *,
    name: str | None = None,
    hypothesis: str | None = None,
    variables: dict[str, Any] | None = None,
    runners: dict[str, str] | None = None,
    base: RunRecord | None = None,
) -> RunRecord:
    """Open a new run prefilled from ``base`` (default: the previous run) and write run.toml."""
    exp_cfg = ws.config()
    current = ws.current_id()
    open_run = ws.load(current) if current is not None else None
    if open_run is not None and open_run.status is S.PLANNED:
        raise Conflict(
            f"Run {open_run.number} ({current}) is open and has not run yet. Edit "
            f"{RUN_FILE} and `labledger run` it, or close it with `labledger end`."
        )
    if open_run is not None and open_run.status is S.IN_PROGRESS:
        raise Conflict(f"Run {open_run.number} is still running; wait for it to finish.")
    if base is not None:
        prev = RunConfig(
            hypothesis=base.hypothesis,
            variables=dict(base.variables),
            runners=Runners.from_phases(base.runners),
        )
    else:
        prev = _previous_config(ws, exp_cfg)
    data: dict[str, Any] = msgspec.to_builtins(prev)
    data["name"] = name or ""
    if hypothesis is not None:
        data["hypothesis"] = hypothesis
    data["variables"].update(variables or {})
    data["runners"].update(runners or {})
    data["runners"] = {k: v for k, v in data["runners"].items() if v}
    # The merged values are checked exactly as a hand-edited run.toml would be.
    cfg = validate_config(RunConfig, data, ws.run_config_path)
    if open_run is not None:
        seal_run(ws, open_run, observations=None)  # ran but never ended: seal it as it is
    number = ws.next_number()
    experiment = RunExperiment(
        experiment_id=new_ulid(),
        status=S.PLANNED,
        experiment_design=RunDesign(
            experiment_name=exp_cfg.name,
            experiment_description=exp_cfg.description or None,
            parameters=dict(exp_cfg.variables),
        ),
        run_name=cfg.name or None,
        run_description=cfg.hypothesis or None,
        parameters=dict(cfg.variables),
    )
    record = RunRecord(
        experiment=experiment,
        number=number,
        experiment_dir=str(ws.root),
        hypothesis=cfg.hypothesis,
        runners=cfg.runners.by_phase(),
        rerun_of=base.run_id if base is not None else None,
    )
    record.add_event(EventType.CREATED, to_status=S.PLANNED.value)
    ws.save(record)
    text = render_run_config(cfg, run_id=record.run_id, number=number, experiment=exp_cfg.name)
    ws.run_config_path.write_text(text, encoding="utf-8")
    ws.set_current(record.run_id)
    return record


def _script_paths(ws: Workspace, runners: Runners, script_root: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    for phase, script in runners.by_phase().items():
        rel = Path(script)
        field = f"runners.{phase}"
        inside = (ws.root / rel).resolve()
        if rel.is_absolute() or ".." in rel.parts or not inside.is_relative_to(ws.root):
            raise ConfigError(
                f"{ws.run_config_path}: field '{field}': expected a script path inside "
                f"{ws.root}, got {script!r}",
                path=str(ws.run_config_path),
                field=field,
            )
        path = script_root / rel
        if not path.is_file():
            raise ConfigError(
                f"{ws.run_config_path}: field '{field}': script {path} does not exist. "
                f"Create it or point {field} at another script.",
                path=str(ws.run_config_path),
                field=field,
            )
        paths[phase] = path
    return paths


def _archive_inputs(
    ws: Workspace, record: RunRecord, scripts: dict[str, Path], script_root: Path
) -> None:
    config: list[FileEntry] = []
    for name in (RUN_FILE, EXPERIMENT_FILE):
        blob = ws.store.put_file(ws.root / name)
        config.append(FileEntry(path=name, size=blob.size, digest=blob.digest))
    entries: dict[str, FileEntry] = {}
    for path in scripts.values():
        rel = path.relative_to(script_root).as_posix()
        blob = ws.store.put_file(path)
        mode = path.stat().st_mode & 0o777
        entries[rel] = FileEntry(path=rel, size=blob.size, mode=mode, digest=blob.digest)
    record.files["config"] = config
    record.files["scripts"] = sorted(entries.values(), key=lambda e: e.path)


def _phase_env(ws: Workspace, record: RunRecord) -> dict[str, str]:
    env = dict(os.environ)
    # Phase output goes to a pipe, where Python would buffer it; unbuffered, it streams live.
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update({k: env_value(v) for k, v in record.variables.items()})
    env["LABLEDGER_RUN_ID"] = record.run_id
    env["LABLEDGER_RUN_NUMBER"] = str(record.number)
    env["LABLEDGER_EXPERIMENT_DIR"] = str(ws.root)
    env["LABLEDGER_OUTPUTS_DIR"] = str(ws.outputs)
    # scripts append JSON lines of metric points here; read live by `labledger metrics`
    env["LABLEDGER_METRICS"] = str(metrics_path(ws, record))
    return env


def metrics_path(ws: Workspace, record: RunRecord) -> Path:
    """Where a running run's scripts write metric points (``$LABLEDGER_METRICS``)."""
    return ws.live_dir / record.run_id / "metrics.jsonl"


def execute_run(
    ws: Workspace,
    echo: Echo,
    *,
    script_root: Path | None = None,
    workdir: Path | None = None,
    code: CodeVersion | None = None,
) -> RunRecord:
    """Run the open run's four phases and archive what they leave; return the final record.

    ``script_root`` runs the scripts from another folder (``rerun`` uses a restored copy);
    the working directory of every phase is the experiment folder, or ``workdir`` (a copy of
    the recorded code, with ``code`` its version, for ``rerun --at-recorded-code``).
    """
    # Imported here: `labledger new` and the rest need none of git's or the packages' capture.
    from labledger.runner.capture import CodeCapture, capture_environment

    with ws.locked(purpose="recording a run"):
        current = ws.current_id()
        if current is None:
            raise Conflict("No run is open. Start one with `labledger new`, then `labledger run`.")
        record = ws.load(current)
        if record.status is not S.PLANNED:
            raise Conflict(
                f"Run {record.number} has run already (status {record.status.value}). "
                "Close it with `labledger end` and start the next with `labledger new`."
            )
        cfg = load_run_config(ws.run_config_path)
        scripts = _script_paths(ws, cfg.runners, script_root or ws.root)
        exp_cfg = ws.config()
        # git's processes run while this thread archives the scripts and reads the packages
        with ExitStack() as stack:
            if code is None:
                exclude = ["outputs", STATE_DIR, RUN_FILE]
                pending = stack.enter_context(CodeCapture(ws.root, ws.store, exclude))
            record.experiment.run_name = cfg.name or None
            record.experiment.run_description = cfg.hypothesis or None
            record.experiment.parameters = dict(cfg.variables)
            record.hypothesis, record.runners = cfg.hypothesis, cfg.runners.by_phase()
            _archive_inputs(ws, record, scripts, script_root or ws.root)
            record.environment = capture_environment(exp_cfg.capture_env, ws.kept_packages)
            record.code = code or pending.result()
        record.phases = [PhaseResult(phase=p, script=record.runners[p]) for p in scripts]
        record.recorder_pid = os.getpid()
        ws.outputs.mkdir(exist_ok=True)
        if any(ws.outputs.iterdir()):
            record.add_event(EventType.UPDATED, data={"note": "outputs/ was not empty at start"})
        live = ws.live_dir / record.run_id
        live.mkdir(parents=True, exist_ok=True)
        record.set_status(S.IN_PROGRESS)
        ws.save(record)
        _run_phases(ws, record, scripts, live, echo, workdir or ws.root)
        return record


def _run_phases(
    ws: Workspace,
    record: RunRecord,
    scripts: dict[str, Path],
    live: Path,
    echo: Echo,
    workdir: Path,
) -> None:
    env = _phase_env(ws, record)
    guard = SignalGuard()
    failed: str | None = None
    # One watchdog serves every phase. A phase's outcome is saved with the next phase's start,
    # which follows at once, or after the last phase: one save per phase rather than two.
    with guard.installed(), Watchdog() as watchdog:
        for result in record.phases:
            # fetch runs after a failure, and after a stop (time-bounded), to keep what exists
            stopped = guard.count
            if result.phase != "fetch" and (guard.cancelled or failed):
                result.status = "skipped"
                continue
            result.status, result.started_at = "running", utcnow()
            ws.save(record)  # an orphan recovery must know which phase was running
            if guard.cancelled:
                guard.bound(FETCH_AFTER_STOP_S)
                result.note = "ran after the run was stopped, to keep partial outputs"
                echo(
                    f"==> labledger: {result.phase} ({result.script}) to keep partial outputs; "
                    f"at most {FETCH_AFTER_STOP_S:g} s, Ctrl-C again to skip\n".encode()
                )
            else:
                echo(f"==> labledger: {result.phase} ({result.script})\n".encode())
            outcome = run_phase(
                command_for(scripts[result.phase]),
                cwd=workdir,
                env=env,
                log_path=live / f"{result.phase}.log",
                echo=echo,
                guard=guard,
                watchdog=watchdog,
            )
            result.exit_code, result.duration_s = outcome.exit_code, round(outcome.duration_s, 3)
            result.ended_at = utcnow()
            # a stop during this phase, or the time bound of a fetch after a stop
            if guard.count > stopped or (outcome.cancelled and outcome.exit_code < 0):
                result.status = "cancelled"
            elif outcome.exit_code != 0:
                result.status = "failed"
                failed = failed or result.phase
            else:
                result.status = "ok"
        ws.save(record)
        if guard.cancelled:
            status, note = S.CANCELLED, _stop_note(guard.signal)
        elif failed:
            status, note = S.FAILED, f"phase {failed} failed; later phases skipped except fetch"
        else:
            status, note = S.COMPLETED, None
        try:
            finalize(ws, record, status, note=note)
        except StorageFull:
            # outputs/ and the logs stay where they are: the next command archives them
            record.pending_status, record.pending_note = status, note
            with suppress(OSError):
                ws.save(record)
            raise


def _stop_note(signum: int | None) -> str:
    names: dict[int, str] = {
        signal.SIGINT: "Ctrl-C (SIGINT)",
        signal.SIGHUP: "a closed terminal (SIGHUP)",
        signal.SIGTERM: "SIGTERM",
    }
    what = names.get(signum or 0, "a signal")
    return f"cancelled by {what}; later phases skipped except fetch"


#: what to do when the disk is full while a run is archived
DISK_FULL_THEN = (
    "free some space there, then run any labledger command: it archives the run's outputs "
    "and logs, which are kept where they are until then"
)


def finalize(ws: Workspace, record: RunRecord, status: S, *, note: str | None) -> None:
    """Archive outputs/ and the phase logs, set the final status and save the record.

    The store's folders of every blob the record names are synced before the record is saved,
    so a power cut cannot leave the record naming a blob whose file is lost: a blob found
    stored already may be one another recorder renamed into place and has not synced yet.

    On a full disk this raises :class:`~labledger.errors.StorageFull` having changed nothing
    that was recorded: outputs/ and the logs stay, and the run can be finalized again.
    """
    with no_space_is_storage_full(ws.root, DISK_FULL_THEN):
        _finalize(ws, record, status, note=note)


def _finalize(ws: Workspace, record: RunRecord, status: S, *, note: str | None) -> None:
    notes: list[str] = []
    record.files["outputs"], skipped = archive_tree(
        ws.store, ws.outputs, prefix="outputs/", notes=notes
    )
    record.skipped_files, record.archive_notes = skipped, notes
    live = ws.live_dir / record.run_id
    logs: list[FileEntry] = []
    for result in record.phases:
        log = live / f"{result.phase}.log"
        if log.is_file():
            blob = ws.store.put_file(log)
            result.log_digest = blob.digest
            logs.append(
                FileEntry(path=f"logs/{result.phase}.log", size=blob.size, digest=blob.digest)
            )
    record.files["logs"] = logs
    _collect_outcomes(ws, record, live)
    if record.code and record.code.patch_digest:
        patch = FileEntry(
            path="code/patch.diff", size=record.code.patch_size, digest=record.code.patch_digest
        )
        record.files["code"] = [patch]
    ws.store.sync_dirs({ws.store.path_of(d).parent for d in record.digests() if ws.store.has(d)})
    record.set_status(status, note=note)
    ws.save(record)
    for leftover in live.iterdir():
        leftover.unlink()
    live.rmdir()


def _collect_outcomes(ws: Workspace, record: RunRecord, live: Path) -> None:
    """Keep the run's metric series (summaries in the record, points as a file) and read the
    result files run.toml names. A bad file is noted on the run, never fatal: the run ran."""
    metrics_file = live / "metrics.jsonl"
    parsed = read_metrics_file(metrics_file)
    record.metrics = {
        name: MetricSummary(
            count=len(points),
            first_step=min(s for s, _ in points),
            last_step=max(s for s, _ in points),
            last=max(points, key=lambda p: p[0])[1],
            min=min(v for _, v in points),
            max=max(v for _, v in points),
        )
        for name, points in parsed.series.items()
    }
    if metrics_file.is_file():
        blob = ws.store.put_file(metrics_file)
        record.files["metrics"] = [
            FileEntry(path="metrics/metrics.jsonl", size=blob.size, digest=blob.digest)
        ]
    if parsed.skipped:
        note = f"{parsed.skipped} metric values in $LABLEDGER_METRICS were not finite numbers"
        record.add_event(EventType.UPDATED, data={"note": note})
    try:
        cfg = load_run_config(ws.run_config_path)
    except LabledgerError:
        return
    for name in cfg.results:
        try:
            record.results.update(read_result_file(ws.root / name, root=ws.root))
        except LabledgerError as exc:
            record.add_event(EventType.UPDATED, data={"note": exc.message})


def recover_orphan(ws: Workspace) -> RunRecord | None:
    """End the current run ``unknown`` if its recorder died mid-run; return it if so."""
    current = ws.current_id()
    if current is None or ws.is_locked():
        return None
    record = ws.load(current)
    if record.status is not S.IN_PROGRESS:
        return None
    env = record.environment
    if env is not None and env.host and env.host != socket.gethostname():
        return None  # recorded on another machine (a synced folder): not ours to judge
    with ws.locked(purpose="recovering an orphaned run"):
        record = ws.load(current)
        if record.status is not S.IN_PROGRESS:
            return None
        if record.pending_status is not None:  # its recorder found the disk full
            status, note = record.pending_status, record.pending_note
            record.pending_status = record.pending_note = None
            finalize(ws, record, status, note=note)
            return record
        running = [r.phase for r in record.phases if r.status == "running"]
        for result in record.phases:
            if result.status == "running":
                result.status, result.ended_at = "interrupted", utcnow()
                result.note = "labledger was killed while this phase ran"
            elif result.status == "pending":
                result.status = "skipped"
        note = (
            f"labledger (pid {record.recorder_pid}) was killed during phase "
            f"{running[0] if running else '(between phases)'}; outputs and logs are as found"
        )
        finalize(ws, record, S.UNKNOWN, note=note)
        return record


def seal_run(ws: Workspace, record: RunRecord, *, observations: str | None) -> RunRecord:
    """Record the observations, seal the run and clear the folder for the next one."""
    return seal(ws, record, observations=observations)
