"""A readable difference between two runs: variables, scripts, outputs and code version."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from labledger.runner.closing import OutputsDiff, compare_outputs
from labledger.runner.record import RunRecord
from labledger.runner.workspace import Workspace

__all__ = ["CompareReport", "compare_runs"]

#: scripts larger than this are compared by digest only
_MAX_DIFF_BYTES = 1 << 20


@dataclass
class CompareReport:
    """What differs between run ``a`` and run ``b``."""

    a: RunRecord
    b: RunRecord
    variables: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    #: every result and metric (last value) of either run, side by side, differing or not
    outcomes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    script_diffs: dict[str, str] = field(default_factory=dict)
    outputs: OutputsDiff = field(default_factory=OutputsDiff)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "a": self.a.run_id,
            "b": self.b.run_id,
            "variables": {k: {"a": va, "b": vb} for k, (va, vb) in self.variables.items()},
            "outcomes": {k: {"a": va, "b": vb} for k, (va, vb) in self.outcomes.items()},
            "fields": {k: {"a": va, "b": vb} for k, (va, vb) in self.fields.items()},
            "scripts": self.script_diffs,
            "outputs": {
                "match": self.outputs.match,
                "only_a": self.outputs.only_a,
                "only_b": self.outputs.only_b,
                "changed": self.outputs.changed,
                "same": self.outputs.same,
            },
        }

    def render(self) -> str:
        """The report as text for a terminal."""
        a, b = self.a.number, self.b.number
        lines = [f"Comparing run {a} ({self.a.run_id}) with run {b} ({self.b.run_id})", ""]
        lines.append("variables:" if self.variables else "variables: same")
        for name, (va, vb) in self.variables.items():
            lines.append(f"  {name}: {_show(va)} -> {_show(vb)}")
        if self.outcomes:
            lines.append("results and metrics:")
        for name, (va, vb) in self.outcomes.items():
            mark = "" if va == vb else "   (differs)"
            lines.append(f"  {name}: {_show(va)} | {_show(vb)}{mark}")
        for name, (va, vb) in self.fields.items():
            lines.append(f"{name}: {_show(va)} -> {_show(vb)}")
        lines.append("scripts:" if self.script_diffs else "scripts: same")
        for text in self.script_diffs.values():
            lines.extend("  " + line for line in text.splitlines())
        out = self.outputs
        if out.match:
            lines.append(f"outputs: same ({out.same} files)")
        else:
            lines.append(f"outputs: {out.same} same, {len(out.changed)} changed")
            lines.extend(f"  changed   {p}" for p in out.changed)
            lines.extend(f"  only in {a} {p}" for p in out.only_a)
            lines.extend(f"  only in {b} {p}" for p in out.only_b)
        return "\n".join(lines)


def _show(value: Any) -> str:
    return "(none)" if value is None else repr(value)


def _text(ws: Workspace, digest: str | None, size: int) -> list[str] | None:
    if digest is None or size > _MAX_DIFF_BYTES:
        return None
    data = ws.store.get(digest)
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace").splitlines(keepends=True)


def compare_runs(ws: Workspace, a: RunRecord, b: RunRecord) -> CompareReport:
    """Compare runs ``a`` and ``b`` of the experiment folder ``ws``."""
    report = CompareReport(a, b)
    for name in sorted(a.variables.keys() | b.variables.keys()):
        va, vb = a.variables.get(name), b.variables.get(name)
        if va != vb:
            report.variables[name] = (va, vb)
    for kind, of_a, of_b in (
        ("", a.results, b.results),
        (
            "metric ",
            {k: m.last for k, m in a.metrics.items()},
            {k: m.last for k, m in b.metrics.items()},
        ),
    ):
        for name in sorted(of_a.keys() | of_b.keys()):
            report.outcomes[f"{kind}{name}"] = (of_a.get(name), of_b.get(name))
    ca, cb = a.code, b.code
    candidates = {
        "status": (a.status.value, b.status.value),
        "hypothesis": (a.hypothesis, b.hypothesis),
        "git commit": (ca.commit if ca else None, cb.commit if cb else None),
        "git branch": (ca.branch if ca else None, cb.branch if cb else None),
        "uncommitted patch": (ca.patch_digest if ca else None, cb.patch_digest if cb else None),
    }
    report.fields = {k: v for k, v in candidates.items() if v[0] != v[1]}
    sa = {e.path: e for e in a.files.get("scripts", [])}
    sb = {e.path: e for e in b.files.get("scripts", [])}
    for path in sorted(sa.keys() | sb.keys()):
        ea, eb = sa.get(path), sb.get(path)
        if ea is not None and eb is not None and ea.digest == eb.digest:
            continue
        la = _text(ws, ea.digest, ea.size) if ea else []
        lb = _text(ws, eb.digest, eb.size) if eb else []
        if la is None or lb is None:
            report.script_diffs[path] = f"{path}: binary or large file differs\n"
            continue
        diff = difflib.unified_diff(
            la, lb, fromfile=f"run {a.number}/{path}", tofile=f"run {b.number}/{path}"
        )
        report.script_diffs[path] = "".join(diff)
    report.outputs = compare_outputs(a, b)
    return report
