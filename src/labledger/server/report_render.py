"""Render the reports of :mod:`labledger.core.reports` as Markdown or as a standalone HTML page.

HTML is autoescaped (names and values come from users); Markdown escapes table pipes. Both are
readable without the JSON: counts, success rate, durations, the results table, the timeline.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from jinja2 import Environment, StrictUndefined

__all__ = ["FORMATS", "render_report", "results_csv"]

#: format name -> media type
FORMATS = {
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) and "digest" in value and "file" in value:
        return f"{value['file']} ({value.get('size')} B, blake3 {str(value['digest'])[:12]})"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _md(value: Any) -> str:
    return _cell(value).replace("|", "\\|").replace("\n", " ")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _secs(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.2f} h"


_MD_CAMPAIGN = """\
# Campaign report: {{ r.campaign.campaign_name | md }}

- Campaign: `{{ r.campaign.campaign_id }}` ({{ r.campaign.status }})
- Generated: {{ r.generated_at }}
{% if r.campaign.campaign_description %}- Description: {{ r.campaign.campaign_description | md }}
{% endif %}
## Status

| status | experiments |
|---|---|
{% for status, n in r.counts.items() if status != "total" and n %}| {{ status }} | {{ n }} |
{% endfor %}| **total** | **{{ r.counts.total }}** |

- Finished: {{ r.finished }} of {{ r.counts.total }} ({{ r.progress | pct }})
- Success rate (completed of finished): {{ r.success_rate | pct }}
- Retried after a lost worker: {{ r.retried }}
- Durations: mean {{ r.durations.mean_s | secs }}, median {{ r.durations.median_s | secs }}, \
min {{ r.durations.min_s | secs }}, max {{ r.durations.max_s | secs }}, \
total {{ r.durations.total_s | secs }}

## Results

| experiment | status |{% for p in r.parameter_names %} {{ p | md }} |{% endfor %}\
{% for n in r.result_names %} {{ n | md }} |{% endfor %} duration |
|---|---|{% for p in r.parameter_names %}---|{% endfor %}{% for n in r.result_names %}---|\
{% endfor %}---|
{% for row in r.rows %}| {{ (row.run_name or row.experiment_id) | md }} | {{ row.status }} |\
{% for p in r.parameter_names %} {{ row.parameters.get(p) | md }} |{% endfor %}\
{% for n in r.result_names %} {{ row.results.get(n) | md }} |{% endfor %} \
{{ row.duration_s | secs }} |
{% endfor %}
## Timeline

| time | experiment | change | by |
|---|---|---|---|
{% for t in r.timeline %}| {{ t.at }} | {{ t.experiment_id or "campaign" }} | \
{{ t.from_status or "" }} → {{ t.to_status or "" }} ({{ t.type }}) | \
{{ (t.worker_id or t.actor or "") | md }} |
{% endfor %}"""

_MD_EXPERIMENT = """\
# Experiment summary: {{ (r.name or r.experiment._id) | md }}

- Experiment: `{{ r.experiment._id }}`{% if r.experiment.run_name %} \
({{ r.experiment.run_name | md }}){% endif %}
- Status: **{{ r.status }}**, attempts {{ r.attempts }}, duration {{ r.duration_s | secs }}
- Generated: {{ r.generated_at }}
{% if r.error %}- Error: {{ r.error.type | md }}: {{ r.error.message | md }}
{% endif %}
## Parameters

| name | value |
|---|---|
{% for k, v in r.experiment.parameters.items() %}| {{ k | md }} | {{ v | md }} |
{% endfor %}
## Results

| name | value |
|---|---|
{% for k, v in r.results.items() %}| {{ k | md }} | {{ v | md }} |
{% endfor %}
## Milestones

| time | name | progress |
|---|---|---|
{% for m in r.milestones %}| {{ m.at }} | {{ m.name | md }} | {{ m.progress | pct }} |
{% endfor %}
## Resources used

| resource | type | quantity |
|---|---|---|
{% for u in r.resources %}| {{ u.resource_id | md }} | {{ u.resource_type }} | \
{{ u.quantity if u.quantity is not none else "" }} {{ u.unit or "" }} |
{% endfor %}
## Timeline

| time | change | by |
|---|---|---|
{% for t in r.timeline %}| {{ t.at }} | {{ t.from_status or "" }} → {{ t.to_status or "" }} \
({{ t.type }}) | {{ (t.worker_id or t.actor or "") | md }} |
{% endfor %}{% if r.error and r.error.traceback %}
## Traceback

```
{{ r.error.traceback }}
```
{% endif %}"""

_HTML = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;
color:#1a1a1a}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:14px}
th,td{border:1px solid #bbb;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#eef}
code,pre{font-family:ui-monospace,monospace}
pre{background:#f4f4f4;padding:1rem;overflow:auto}
.s-completed{color:#0a6b2d}.s-failed{color:#a4161a}.s-cancelled{color:#6b4e00}
</style></head>
<body>
{{ body }}
</body></html>
"""

_HTML_CAMPAIGN = """\
<h1>Campaign report: {{ r.campaign.campaign_name }}</h1>
<p>Campaign <code>{{ r.campaign.campaign_id }}</code> is <strong>{{ r.campaign.status }}</strong>.
Generated {{ r.generated_at }}.</p>
{% if r.campaign.campaign_description %}<p>{{ r.campaign.campaign_description }}</p>{% endif %}
<h2>Status</h2>
<table><caption>Experiments by status</caption>
<tr><th scope="col">status</th><th scope="col">experiments</th></tr>
{% for status, n in r.counts.items() if status != "total" and n %}
<tr><td class="s-{{ status }}">{{ status }}</td><td>{{ n }}</td></tr>{% endfor %}
<tr><th scope="row">total</th><td>{{ r.counts.total }}</td></tr></table>
<ul>
<li>Finished: {{ r.finished }} of {{ r.counts.total }} ({{ r.progress | pct }})</li>
<li>Success rate (completed of finished): {{ r.success_rate | pct }}</li>
<li>Retried after a lost worker: {{ r.retried }}</li>
<li>Durations: mean {{ r.durations.mean_s | secs }}, median {{ r.durations.median_s | secs }},
min {{ r.durations.min_s | secs }}, max {{ r.durations.max_s | secs }}</li>
</ul>
<h2>Results</h2>
<table><caption>Parameters and results of each experiment</caption>
<tr><th scope="col">experiment</th><th scope="col">status</th>
{% for p in r.parameter_names %}<th scope="col">{{ p }}</th>{% endfor %}
{% for n in r.result_names %}<th scope="col">{{ n }}</th>{% endfor %}
<th scope="col">duration</th></tr>
{% for row in r.rows %}<tr><td>{{ row.run_name or row.experiment_id }}</td>
<td class="s-{{ row.status }}">{{ row.status }}</td>
{% for p in r.parameter_names %}<td>{{ row.parameters.get(p) | cell }}</td>{% endfor %}
{% for n in r.result_names %}<td>{{ row.results.get(n) | cell }}</td>{% endfor %}
<td>{{ row.duration_s | secs }}</td></tr>{% endfor %}
</table>
<h2>Timeline</h2>
<table><caption>Status changes, oldest first</caption>
<tr><th scope="col">time</th><th scope="col">experiment</th><th scope="col">change</th>
<th scope="col">by</th></tr>
{% for t in r.timeline %}<tr><td>{{ t.at }}</td><td>{{ t.experiment_id or "campaign" }}</td>
<td>{{ t.from_status or "" }} → {{ t.to_status or "" }} ({{ t.type }})</td>
<td>{{ t.worker_id or t.actor or "" }}</td></tr>{% endfor %}
</table>"""

_HTML_EXPERIMENT = """\
<h1>Experiment summary: {{ r.name or r.experiment._id }}</h1>
<p>Experiment <code>{{ r.experiment._id }}</code>{% if r.experiment.run_name %}
({{ r.experiment.run_name }}){% endif %} is
<strong class="s-{{ r.status }}">{{ r.status }}</strong>; attempts {{ r.attempts }},
duration {{ r.duration_s | secs }}. Generated {{ r.generated_at }}.</p>
{% if r.error %}<p>Error: <strong>{{ r.error.type }}</strong>: {{ r.error.message }}</p>{% endif %}
<h2>Parameters</h2>
<table><tr><th scope="col">name</th><th scope="col">value</th></tr>
{% for k, v in r.experiment.parameters.items() %}<tr><td>{{ k }}</td><td>{{ v | cell }}</td></tr>
{% endfor %}</table>
<h2>Results</h2>
<table><tr><th scope="col">name</th><th scope="col">value</th></tr>
{% for k, v in r.results.items() %}<tr><td>{{ k }}</td><td>{{ v | cell }}</td></tr>{% endfor %}
</table>
<h2>Milestones</h2>
<table><tr><th scope="col">time</th><th scope="col">name</th><th scope="col">progress</th></tr>
{% for m in r.milestones %}<tr><td>{{ m.at }}</td><td>{{ m.name }}</td>
<td>{{ m.progress | pct }}</td></tr>{% endfor %}</table>
<h2>Resources used</h2>
<table><tr><th scope="col">resource</th><th scope="col">type</th><th scope="col">quantity</th></tr>
{% for u in r.resources %}<tr><td>{{ u.resource_id }}</td><td>{{ u.resource_type }}</td>
<td>{{ u.quantity if u.quantity is not none else "" }} {{ u.unit or "" }}</td></tr>{% endfor %}
</table>
<h2>Timeline</h2>
<table><tr><th scope="col">time</th><th scope="col">change</th><th scope="col">by</th></tr>
{% for t in r.timeline %}<tr><td>{{ t.at }}</td>
<td>{{ t.from_status or "" }} → {{ t.to_status or "" }} ({{ t.type }})</td>
<td>{{ t.worker_id or t.actor or "" }}</td></tr>{% endfor %}</table>
{% if r.error and r.error.traceback %}<h2>Traceback</h2><pre>{{ r.error.traceback }}</pre>
{% endif %}"""


_MD_LAB = """
## The lab

{% for name, s in lab.items() %}- {{ name }}: {{ s.note | md }}
{% endfor %}
### Workflows

| workflow | name | experiment | status | steps |
|---|---|---|---|---|
{% for w in lab.workflows["items"] %}| `{{ w.workflow_id }}` | {{ w.name | md }} | \
`{{ w.experiment_id }}` | {{ w.status }} | \
{% for st in w.steps %}{{ st.name | md }} ({{ st.status }}){% if not loop.last %}, {% endif %}\
{% endfor %} |
{% endfor %}
### Data points

| data point | label | value | workflow |
|---|---|---|---|
{% for p in lab.datapoints["items"] %}| `{{ p._id }}` | {{ p.label | md }} | \
{{ (p.value if p.data_type != "file" else p.path) | md }} | {{ p.workflow_id or "" }} |
{% endfor %}
### Resources on the Resource Manager

| resource | type | quantity |
|---|---|---|
{% for r in lab.resources["items"] %}| {{ r.resource_name | md }} | {{ r.base_type }} | \
{{ r.quantity if r.quantity is not none else "" }} |
{% endfor %}
Events on the Event Manager: {{ lab.events["items"] | length }}
"""

_HTML_LAB = """
<h2>The lab</h2>
<ul>{% for name, s in lab.items() %}<li>{{ name }}: {{ s.note }}</li>{% endfor %}</ul>
<h3>Workflows</h3>
<table><tr><th scope="col">workflow</th><th scope="col">name</th><th scope="col">experiment</th>
<th scope="col">status</th><th scope="col">steps</th></tr>
{% for w in lab.workflows["items"] %}<tr><td><code>{{ w.workflow_id }}</code></td>
<td>{{ w.name }}</td><td><code>{{ w.experiment_id }}</code></td><td>{{ w.status }}</td>
<td>{% for st in w.steps %}{{ st.name }} ({{ st.status }}){% if not loop.last %}, {% endif %}
{% endfor %}</td></tr>{% endfor %}</table>
<h3>Data points</h3>
<table><tr><th scope="col">data point</th><th scope="col">label</th><th scope="col">value</th>
<th scope="col">workflow</th></tr>
{% for p in lab.datapoints["items"] %}<tr><td><code>{{ p._id }}</code></td><td>{{ p.label }}</td>
<td>{{ (p.value if p.data_type != "file" else p.path) | cell }}</td>
<td>{{ p.workflow_id or "" }}</td></tr>{% endfor %}</table>
<h3>Resources on the Resource Manager</h3>
<table><tr><th scope="col">resource</th><th scope="col">type</th><th scope="col">quantity</th></tr>
{% for r in lab.resources["items"] %}<tr><td>{{ r.resource_name }}</td><td>{{ r.base_type }}</td>
<td>{{ r.quantity if r.quantity is not none else "" }}</td></tr>{% endfor %}</table>
<p>Events on the Event Manager: {{ lab.events["items"] | length }}</p>
"""


def _env(autoescape: bool) -> Environment:
    env = Environment(autoescape=autoescape, undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters.update(md=_md, pct=_pct, secs=_secs, cell=_cell)
    return env


_MD_ENV = _env(False)
_HTML_ENV = _env(True)


def render_report(report: dict[str, Any], fmt: str) -> str:
    """The report as ``json``, ``md`` or ``html`` text."""
    if fmt == "json":
        return json.dumps(report, ensure_ascii=False, indent=2)
    campaign = report["kind"] == "campaign_report"
    lab = report.get("lab")
    if fmt == "md":
        template = _MD_CAMPAIGN if campaign else _MD_EXPERIMENT
        text = _MD_ENV.from_string(template).render(r=report)
        return text + _MD_ENV.from_string(_MD_LAB).render(lab=lab) if lab else text
    if fmt == "html":
        body = _HTML_ENV.from_string(_HTML_CAMPAIGN if campaign else _HTML_EXPERIMENT).render(
            r=report
        )
        if lab:
            body += _HTML_ENV.from_string(_HTML_LAB).render(lab=lab)
        title = (
            f"Campaign report: {report['campaign']['campaign_name']}"
            if campaign
            else f"Experiment summary: {report['name'] or report['experiment']['_id']}"
        )
        from markupsafe import Markup

        return _HTML_ENV.from_string(_HTML).render(title=title, body=Markup(body))
    raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")


def results_csv(table: dict[str, Any]) -> str:
    """A results table as CSV: identity columns, then ``param.<name>``, then ``result.<name>``.

    Values that are not text or numbers are written as JSON; a file result as its digest.
    """

    def flat(value: Any) -> Any:
        if value is None or isinstance(value, str | int | float | bool):
            return value
        if isinstance(value, dict) and "digest" in value and "file" in value:
            return f"blake3:{value['digest']}"
        return json.dumps(value, ensure_ascii=False, sort_keys=True)

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    params, names = table["parameter_names"], table["result_names"]
    writer.writerow(
        ["experiment_id", "run_name", "status", "duration_s", "attempts"]
        + [f"param.{p}" for p in params]
        + [f"result.{n}" for n in names]
    )
    for row in table["rows"]:
        writer.writerow(
            [
                row["experiment_id"],
                row["run_name"],
                row["status"],
                row["duration_s"],
                row["attempts"],
            ]
            + [flat(row["parameters"].get(p)) for p in params]
            + [flat(row["results"].get(n)) for n in names]
        )
    return out.getvalue()
