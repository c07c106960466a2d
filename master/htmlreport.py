"""The self-contained HTML report of a run (``GET /stats/report``), as Locust's report.

Responsibility: :func:`report_data` gathers what the report shows from a snapshot of the
master (its history included) into a frozen :class:`ReportData` (pure), and
:func:`render_report` turns that into one HTML page that makes no external request: the
vendored uPlot script and stylesheet are inlined, every string is escaped with
:func:`html.escape`, and the chart data travel as JSON in a ``<script
type="application/json">`` with ``<``, ``>`` and ``&`` escaped.

Imports: the standard library and horde.master.
"""

from __future__ import annotations

import html
import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

from horde import __version__
from horde.master.arrivalsout import arrivals_html
from horde.master.dispatch import UserClassSpec
from horde.master.history import HistoryPoint
from horde.master.ratebook import ArrivalFigures
from horde.master.report import MAX_ROWS, PERCENTILES, stats_report
from horde.master.snapshot import MasterSnapshot
from horde.master.stats import ErrorRecord
from horde.master.statsconf import report_percentiles
from horde.master.units import format_ms
from horde.master.verdict import VerdictReport
from horde.master.verdict_out import format_value
from horde.master.view import workers_table

__all__ = ["PercentileRow", "ReportData", "render_report", "report_data"]

UPLOT_DIR = Path(__file__).parent / "static" / "vendor" / "uplot"
"""Where the vendored uPlot files live (package data)."""


class PercentileRow(NamedTuple):
    """Response-time percentiles (ms) of one entry, in the order of the report's columns."""

    method: str
    name: str
    num_requests: int
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything the report shows, gathered at ``generated_at``."""

    locustfile: str
    host: str
    start_time: float | None
    end_time: float | None
    generated_at: float
    stats: tuple[Mapping[str, Any], ...]
    percentiles: tuple[PercentileRow, ...]
    errors: tuple[ErrorRecord, ...]
    exceptions: tuple[Mapping[str, Any], ...]
    workers: tuple[Mapping[str, Any], ...]
    user_classes: tuple[UserClassSpec, ...]
    history: tuple[HistoryPoint, ...]
    show_download_link: bool
    version: str = __version__
    verdict: VerdictReport = field(default_factory=VerdictReport)
    """The thresholds and the generator's health (nothing shown without either)."""
    arrivals: tuple[ArrivalFigures, ...] = ()
    """Per arrival-rate class: the run's iterations (empty: no such class, no section)."""
    percentile_columns: tuple[float, ...] = PERCENTILES
    """The percentiles of the percentile table (the script's ``PERCENTILES_TO_REPORT``)."""


def report_data(
    snapshot: MasterSnapshot, *, locustfile: str, show_download_link: bool
) -> ReportData:
    """Gather the report's figures from ``snapshot`` (at its ``now``, with its history)."""
    stats, history, now = snapshot.stats, snapshot.history, snapshot.run.now
    stats.fold()
    entries = [*islice(stats.entries(), MAX_ROWS), stats.total]
    start = stats.start_time or (history[0].time if history else None)
    end = stats.last_request_timestamp or (history[-1].time if history else None)
    ps = report_percentiles()
    return ReportData(
        locustfile=locustfile,
        host=snapshot.run.host,
        start_time=start,
        end_time=end,
        generated_at=now,
        stats=tuple(stats_report(stats, now)["stats"]),
        percentiles=tuple(
            PercentileRow(e.method, e.name, e.num_requests, tuple(e.percentiles_ms(ps)))
            for e in entries
        ),
        errors=tuple(islice(stats.errors(), MAX_ROWS)),
        exceptions=tuple(g.to_json() for g in islice(snapshot.exceptions, MAX_ROWS)),
        workers=tuple(workers_table(snapshot)),
        user_classes=snapshot.user_classes,
        history=history,
        show_download_link=show_download_link,
        verdict=snapshot.verdict,
        arrivals=snapshot.arrivals,
        percentile_columns=ps,
    )


# --- formatting --------------------------------------------------------------------------


def _e(value: object) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def _rate(value: object) -> str:
    """A rate per second with one decimal."""
    return f"{value:.1f}" if isinstance(value, int | float) and math.isfinite(value) else ""


def _when(ts: float | None) -> str:
    """A unix time as local date and time ('unknown' when None)."""
    if ts is None:
        return "unknown"
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(ts)).strip()


def _pct(p: float) -> str:
    """0.999 -> '99.9%'."""
    value = round(p * 100, 6)
    return f"{int(value)}%" if value.is_integer() else f"{value}%"


def _table(table_id: str, headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> str:
    """An HTML table of already escaped cells; ``empty`` fills it when there are no rows."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        body = f'<tr class="empty"><td colspan="{len(headers)}">{_e(empty)}</td></tr>'
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _json_for_script(value: object) -> str:
    """JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` left raw."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _chart_data(history: Sequence[HistoryPoint]) -> dict[str, list[float | None]]:
    """The history as columns for uPlot."""
    columns = {
        "time": "time",
        "rps": "current_rps",
        "fail": "current_fail_per_sec",
        "p50": "response_time_percentile_50",
        "p95": "response_time_percentile_95",
        "users": "user_count",
    }
    return {
        key: [_finite(float(getattr(p, attr))) for p in history] for key, attr in columns.items()
    }


@cache
def _vendored(name: str) -> str:
    """A vendored uPlot file, made safe to inline in a ``<script>`` or ``<style>``."""
    text = (UPLOT_DIR / name).read_text(encoding="utf-8")
    return re.sub(r"</(script|style)", r"<\\/\1", text, flags=re.IGNORECASE)


# --- sections -----------------------------------------------------------------------------


def _stats_section(data: ReportData) -> str:
    headers = ["Type", "Name", "# Requests", "# Fails", "Average (ms)", "Min (ms)", "Max (ms)"]
    headers += ["Average size (bytes)", "RPS", "Failures/s"]
    rows = [
        [
            _e(r["method"]),
            _e(r["name"]),
            _e(r["num_requests"]),
            _e(r["num_failures"]),
            format_ms(r["avg_response_time"]),
            format_ms(r["min_response_time"]),
            format_ms(r["max_response_time"]),
            f"{r['avg_content_length']:.0f}",
            _rate(r["total_rps"]),
            _rate(r["total_fail_per_sec"]),
        ]
        for r in data.stats
    ]
    return "<h2>Request statistics</h2>" + _table("stats-table", headers, rows, "No requests.")


def _percentiles_section(data: ReportData) -> str:
    headers = ["Type", "Name", *(_pct(p) for p in data.percentile_columns)]
    rows = [[_e(r.method), _e(r.name), *(format_ms(v) for v in r.values)] for r in data.percentiles]
    table = _table("percentiles-table", headers, rows, "No requests.")
    return "<h2>Response time statistics (ms)</h2>" + table


def _errors_section(data: ReportData) -> str:
    rows = [[_e(r.method), _e(r.name), _e(r.error), _e(r.occurrences)] for r in data.errors]
    table = _table("failures-table", ["Method", "Name", "Error", "Occurrences"], rows, "None.")
    return "<h2>Failures statistics</h2>" + table


def _exceptions_section(data: ReportData) -> str:
    rows = [
        [_e(x["count"]), _e(x["msg"]), f"<pre>{_e(x['traceback'])}</pre>", _e(x["nodes"])]
        for x in data.exceptions
    ]
    headers = ["Count", "Message", "Traceback", "Workers"]
    return "<h2>Exceptions statistics</h2>" + _table("exceptions-table", headers, rows, "None.")


def _workers_section(data: ReportData) -> str:
    rows = [
        [
            _e(w["id"]),
            _e(w["state"]),
            _e(w["user_count"]),
            f"{w['cpu_usage']:.1f}",
            f"{w['memory_usage'] / 2**20:.1f}",
            f"{(w['loop_lag'] or 0) * 1000:.1f}",
            _e(w["requests"]),
        ]
        for w in data.workers
    ]
    headers = ["Worker", "State", "Users", "CPU %", "Memory (MiB)", "Loop lag (ms)", "Requests"]
    return "<h2>Workers</h2>" + _table("workers-table", headers, rows, "No workers.")


def _verdict_section(data: ReportData) -> str:
    """The thresholds, each with its value and verdict, and the saturation warning."""
    report, parts = data.verdict, []
    if report.saturation is not None:
        parts.append(f'<p style="color:#c62828">Warning: {_e(report.saturation.describe())}.</p>')
    if report.results:
        rows = [
            [
                _e(r.threshold.text),
                _e(format_value(r)),
                "pass"
                if r.ok
                else f'<b style="color:#c62828">FAIL</b> after {r.first_failed_after:g} s',
            ]
            for r in report.results
        ]
        table = _table("thresholds-table", ["Threshold", "Value", "Result"], rows, "None.")
        verdict = "passed" if report.passed else "failed"
        parts.insert(0, f"<h2>Thresholds: {verdict}</h2>{table}")
    return "".join(parts)


def _classes_section(data: ReportData) -> str:
    rows = [[_e(c.name), _e(c.weight), _e(c.fixed_count or "")] for c in data.user_classes]
    table = _table("classes-table", ["User class", "Weight", "Fixed count"], rows, "None.")
    return "<h2>User classes</h2>" + table


def _charts_section(data: ReportData) -> str:
    if not data.history:
        return '<h2>Charts</h2><p class="note">No history was recorded.</p>'
    charts = "".join(
        f'<div class="chart" id="{name}"></div>'
        for name in ("chart-rps", "chart-response-times", "chart-users")
    )
    return f"<h2>Charts</h2>{charts}"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;font-size:14px;
color:#1d2330;margin:0 auto;padding:20px 28px;max-width:1400px}
h1{font-size:24px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 10px}
.info{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:12px 0}
.info dt{color:#5f6b7a}.info dd{margin:0;word-break:break-all}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:6px 9px;border-bottom:1px solid #dde1e7;text-align:left;vertical-align:top}
th{font-size:12px;color:#5f6b7a;background:#fafbfc;white-space:nowrap}
td{word-break:break-word}
#stats-table tbody tr:last-child td,#percentiles-table tbody tr:last-child td{font-weight:700}
tr.empty td{color:#5f6b7a;text-align:center!important;font-weight:400!important}
pre{margin:0;white-space:pre-wrap;font-size:12px}.chart{margin:0 0 16px}
.note{color:#5f6b7a}a{color:#1565c0}
#stats-table :is(td,th):nth-child(n+3),#percentiles-table :is(td,th):nth-child(n+3),
#workers-table :is(td,th):nth-child(n+3),#failures-table :is(td,th):nth-child(4),
#exceptions-table :is(td,th):first-child,#classes-table :is(td,th):nth-child(n+2){text-align:right}
"""

_CHART_JS = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var h = data.history;
  if (!h.time.length || typeof uPlot !== "function") return;
  var INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400];
  function chart(id, title, unit, series) {
    var el = document.getElementById(id);
    var opts = {
      title: title, width: Math.max(320, el.clientWidth), height: 260,
      scales: {x: {time: true}}, axes: [{incrs: INCRS}, {label: unit, size: 60}],
      legend: {live: false},
      series: [{}].concat(series.map(function (s) {
        return {label: s[0], stroke: s[1], width: 2};
      }))
    };
    new uPlot(opts, [h.time].concat(series.map(function (s) { return h[s[2]]; })), el);
  }
  chart("chart-rps", "Total requests per second", "per second",
        [["RPS", "#2e7d32", "rps"], ["Failures/s", "#c62828", "fail"]]);
  chart("chart-response-times", "Response times (ms)", "ms",
        [["50th percentile", "#1565c0", "p50"], ["95th percentile", "#ef6c00", "p95"]]);
  chart("chart-users", "Number of users", "users", [["Users", "#6a1b9a", "users"]]);
})();
"""


def render_report(data: ReportData) -> str:
    """The report as one self-contained HTML page."""
    download = (
        '<p><a href="?download=1" download>Download the report</a></p>'
        if data.show_download_link
        else ""
    )
    info = (
        f"<dt>During</dt><dd>{_e(_when(data.start_time))} &ndash; {_e(_when(data.end_time))}</dd>"
        f"<dt>Target host</dt><dd>{_e(data.host or '(none)')}</dd>"
        f"<dt>Script</dt><dd>{_e(data.locustfile)}</dd>"
        f"<dt>Generated</dt><dd>{_e(_when(data.generated_at))} by horde {_e(data.version)}</dd>"
    )
    sections = (
        _verdict_section(data),
        _stats_section(data),
        arrivals_html(data.arrivals),
        _percentiles_section(data),
        _errors_section(data),
        _exceptions_section(data),
        _charts_section(data),
        _workers_section(data),
        _classes_section(data),
    )
    chart_json = _json_for_script({"history": _chart_data(data.history)})
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no favicon request either
        f"<title>horde test report: {_e(data.locustfile)}</title>"
        f"<style>{_vendored('uPlot.min.css')}</style><style>{_CSS}</style></head><body>"
        f'<h1>horde test report</h1><dl class="info">{info}</dl>{download}'
        + "".join(sections)
        + f'<script type="application/json" id="report-data">{chart_json}</script>'
        f"<script>{_vendored('uPlot.iife.min.js')}</script><script>{_CHART_JS}</script>"
        "</body></html>\n"
    )
