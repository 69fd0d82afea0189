"""The local query index: one SQLite file, rebuilt from the run records whenever needed.

The record files are the truth; this index only makes listing and filtering fast. Every method
that reads it brings it up to date first, cheaply (a record whose file size or mtime changed is
read again), and ``labledger reindex`` rebuilds it from scratch. Commands that only write
records (``new``, ``run``, ``end``) leave the index to the next reader: updating it costs a
durable SQLite commit, and the next reader catches up with every record written since, in one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labledger.errors import InvalidInput

if TYPE_CHECKING:
    from labledger.runner.record import RunRecord

__all__ = ["RunIndex", "RunQuery", "VarFilter", "parse_var_filter"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    number INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    hypothesis TEXT NOT NULL,
    observations TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT,
    sealed_at TEXT,
    git_commit TEXT,
    git_branch TEXT,
    dirty INTEGER NOT NULL,
    rerun_of TEXT,
    record_mtime_ns INTEGER NOT NULL,
    record_size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_number ON runs(number);
CREATE TABLE IF NOT EXISTS variables (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value_text TEXT NOT NULL,
    value_num REAL,
    PRIMARY KEY (run_id, name)
);
CREATE INDEX IF NOT EXISTS variables_name ON variables(name, value_num);
CREATE TABLE IF NOT EXISTS outcomes (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    value_text TEXT NOT NULL,
    value_num REAL,
    PRIMARY KEY (run_id, kind, name)
);
CREATE INDEX IF NOT EXISTS outcomes_name ON outcomes(name, value_num);
"""

_OPS = {"=": "=", "==": "=", "!=": "!=", ">": ">", ">=": ">=", "<": "<", "<=": "<=", "~": "LIKE"}
_FILTER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(==|!=|>=|<=|=|>|<|~)\s*(.*?)\s*\Z", re.S)


@dataclass(frozen=True)
class VarFilter:
    """A variable expression such as ``lr>0.01``, ``opt=adam`` or ``note~warm`` (contains)."""

    name: str
    op: str
    value: str


def parse_var_filter(text: str) -> VarFilter:
    """Parse ``NAME OP VALUE`` where OP is one of = != > >= < <= ~ (contains)."""
    match = _FILTER.match(text)
    if not match:
        raise InvalidInput(
            f"--where: expected NAME OP VALUE with OP one of = != > >= < <= ~ "
            f"(for example lr>0.01), got {text!r}",
            field="where",
        )
    name, op, value = match.groups()
    return VarFilter(name, op, value.strip("'\""))


#: the number a run sorts by: a variable, else a result, else a metric's last value
_VALUE_OF = (
    "SELECT COALESCE((SELECT value_num FROM variables WHERE run_id = r.run_id AND name = ?), "
    "(SELECT value_num FROM outcomes WHERE run_id = r.run_id AND name = ? ORDER BY kind DESC "
    "LIMIT 1))"
)


@dataclass
class RunQuery:
    """Filters for listing runs; all optional and combined with AND."""

    statuses: list[str] = field(default_factory=list)
    text: str | None = None
    where: list[VarFilter] = field(default_factory=list)
    limit: int | None = None
    #: a variable, result or metric name, '-' first for descending (runs without it last)
    sort: str | None = None


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class RunIndex:
    """The SQLite index at ``path`` over the record files in ``runs_dir``."""

    def __init__(self, path: Path, runs_dir: Path) -> None:
        self.path = path
        self.runs_dir = runs_dir
        #: the index kept in memory for this process when the disk is too full to update it
        self._memory: sqlite3.Connection | None = None

    @contextlib.contextmanager
    def _connect(self, path: Path | None = None) -> Iterator[sqlite3.Connection]:
        if path is None and self._memory is not None:
            with self._memory:
                yield self._memory
            return
        conn = sqlite3.connect(path or self.path, timeout=30)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.executescript(_SCHEMA)
            with conn:
                yield conn
        finally:
            conn.close()

    def _record_files(self) -> dict[str, os.stat_result]:
        found: dict[str, os.stat_result] = {}
        if self.runs_dir.is_dir():
            with os.scandir(self.runs_dir) as it:
                for entry in it:
                    if entry.name.endswith(".json") and not entry.name.startswith("."):
                        found[entry.name[:-5]] = entry.stat()
        return found

    @staticmethod
    def _upsert(conn: sqlite3.Connection, rec: RunRecord, st: os.stat_result) -> None:
        exp = rec.experiment
        conn.execute("DELETE FROM runs WHERE run_id = ?", (rec.run_id,))
        conn.execute(
            "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                rec.run_id,
                rec.number,
                exp.run_name or "",
                exp.status.value,
                rec.hypothesis,
                rec.observations,
                exp.created_at.isoformat(),
                exp.started_at.isoformat() if exp.started_at else None,
                exp.ended_at.isoformat() if exp.ended_at else None,
                rec.sealed_at.isoformat() if rec.sealed_at else None,
                rec.code.commit if rec.code else None,
                rec.code.branch if rec.code else None,
                int(bool(rec.code and rec.code.dirty)),
                rec.rerun_of,
                st.st_mtime_ns,
                st.st_size,
            ),
        )
        conn.executemany(
            "INSERT INTO variables VALUES (?,?,?,?)",
            [(rec.run_id, k, _text(v), _num(v)) for k, v in rec.variables.items()],
        )
        # results and the last value of each metric series, queryable like variables
        outcomes = [(rec.run_id, k, "result", _text(v), _num(v)) for k, v in rec.results.items()]
        outcomes += [
            (rec.run_id, k, "metric", _text(m.last), m.last) for k, m in rec.metrics.items()
        ]
        conn.executemany("INSERT INTO outcomes VALUES (?,?,?,?,?)", outcomes)

    def sync(self) -> None:
        """Bring the index up to date with the record files (reads only changed records).

        When the disk is too full to update the index file, the index is built in memory for
        this process instead (it is a cache of the records), so reading commands keep working.
        """
        try:
            self._sync()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_FULL or self._memory is not None:
                raise
            self._memory = sqlite3.connect(":memory:")
            self._memory.executescript(_SCHEMA)
            self._sync()

    def _sync(self) -> None:
        files = self._record_files()
        with self._connect() as conn:
            known = {
                row[0]: (row[1], row[2])
                for row in conn.execute("SELECT run_id, record_mtime_ns, record_size FROM runs")
            }
            for run_id in known.keys() - files.keys():
                conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            changed = {
                run_id: st
                for run_id, st in files.items()
                if known.get(run_id) != (st.st_mtime_ns, st.st_size)
            }
            if changed:
                # Reading records needs their structs; an index up to date never imports them.
                from labledger.runner.record import read_record
            for run_id, st in changed.items():
                self._upsert(conn, read_record(self.runs_dir / f"{run_id}.json"), st)

    def rebuild(self) -> int:
        """Build a fresh index from every record file and swap it in; return the run count."""
        tmp = self.path.with_name(self.path.name + ".new")
        tmp.unlink(missing_ok=True)
        files = self._record_files()
        from labledger.runner.record import read_record

        try:
            with self._connect(tmp) as conn:
                for run_id, st in sorted(files.items()):
                    self._upsert(conn, read_record(self.runs_dir / f"{run_id}.json"), st)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, self.path)
        return len(files)

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, sorted (to compare two indexes), once up to date."""
        self.sync()
        with self._connect() as conn:
            return {
                table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall())
                for table in ("runs", "variables", "outcomes")
            }

    def numbers(self) -> list[int]:
        """The number of every run, leaving the index as it is: the indexed number of each
        record unchanged since, the number read from each record written since.

        For `labledger new`, which needs only the highest number: updating the index would cost
        it a durable SQLite commit, which the next query pays once for every record written.
        """
        from labledger.runner.record import read_record

        files = self._record_files()
        with self._connect() as conn:
            known = {
                row[0]: (row[1], row[2], row[3])
                for row in conn.execute(
                    "SELECT run_id, record_mtime_ns, record_size, number FROM runs"
                )
            }
        found: list[int] = []
        for run_id, st in files.items():
            indexed = known.get(run_id)
            if indexed is not None and indexed[:2] == (st.st_mtime_ns, st.st_size):
                found.append(indexed[2])
                continue
            found.append(read_record(self.runs_dir / f"{run_id}.json").number)
        return found

    def ids_with_number(self, number: int) -> list[str]:
        """The ids of the runs numbered ``number`` (one, unless folders were merged)."""
        self.sync()
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT run_id FROM runs WHERE number = ? ORDER BY run_id", (number,)
            )
            return [row[0] for row in rows]

    def query(self, q: RunQuery) -> list[dict[str, Any]]:
        """Runs matching ``q``, newest first, each with its variables."""
        self.sync()
        sql = ["SELECT * FROM runs r WHERE 1=1"]
        args: list[Any] = []
        if q.statuses:
            sql.append(f"AND r.status IN ({','.join('?' * len(q.statuses))})")
            args.extend(q.statuses)
        if q.text:
            sql.append("AND (r.name LIKE ? OR r.hypothesis LIKE ? OR r.observations LIKE ?)")
            args.extend([f"%{q.text}%"] * 3)
        for f in q.where:
            clause, values = self._var_clause(f)
            sql.append(clause)
            args.extend(values)
        if q.sort:
            name = q.sort.removeprefix("-")
            order = "DESC" if q.sort.startswith("-") else "ASC"
            sql.append(f"ORDER BY ({_VALUE_OF}) IS NULL, ({_VALUE_OF}) {order}, r.number DESC")
            args.extend([name, name, name, name])
        else:
            sql.append("ORDER BY r.number DESC")
        if q.limit is not None:
            sql.append("LIMIT ?")
            args.append(q.limit)
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            rows = [dict(row) for row in conn.execute(" ".join(sql), args)]
            by_id: dict[str, dict[str, Any]] = {}
            for row in rows:
                row["variables"] = by_id[row["run_id"]] = {}
                row["results"], row["metrics"] = {}, {}
            ids = list(by_id)
            rows_by_id = {row["run_id"]: row for row in rows}
            # One query per 500 runs rather than one per run.
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for run_id, name, text, num in conn.execute(
                    "SELECT run_id, name, value_text, value_num FROM variables "
                    f"WHERE run_id IN ({marks}) ORDER BY run_id, name",
                    chunk,
                ):
                    by_id[run_id][name] = json.loads(text) if num is not None else text
                for run_id, kind, name, text, num in conn.execute(
                    "SELECT run_id, kind, name, value_text, value_num FROM outcomes "
                    f"WHERE run_id IN ({marks}) ORDER BY run_id, name",
                    chunk,
                ):
                    key = "results" if kind == "result" else "metrics"
                    rows_by_id[run_id][key][name] = json.loads(text) if num is not None else text
        return rows

    @staticmethod
    def _var_clause(f: VarFilter) -> tuple[str, list[Any]]:
        # a name is looked up among the variables, then the results and metrics
        base = (
            "AND EXISTS (SELECT 1 FROM (SELECT run_id, name, value_text, value_num FROM variables "
            "UNION ALL SELECT run_id, name, value_text, value_num FROM outcomes) v "
            "WHERE v.run_id = r.run_id AND v.name = ? AND "
        )
        op = _OPS[f.op]
        if op == "LIKE":
            return base + "v.value_text LIKE ?)", [f.name, f"%{f.value}%"]
        try:
            number = float(f.value)
        except ValueError:
            if op not in ("=", "!="):
                raise InvalidInput(
                    f"--where {f.name}{f.op}{f.value}: {f.op} compares numbers, got {f.value!r}; "
                    "compare text with = != or ~ (contains)",
                    field="where",
                ) from None
            return base + f"v.value_text {op} ?)", [f.name, f.value]
        return base + f"v.value_num {op} ?)", [f.name, number]
