"""The arrival-rate figures in every output: console table, CSV, JSON, HTML and metrics.

Responsibility: render a snapshot's :class:`~horde.master.ratebook.ArrivalFigures` (per
arrival-rate class, then ``Total``): target rate, iterations scheduled, started and
dropped (``dropped_iterations``), achieved rate. Each output shows them only when the run
has an arrival-rate class, so nothing else changes otherwise: the console summary gets
:func:`arrivals_table`, ``--csv`` writes ``PREFIX_arrivals.csv`` (:func:`arrivals_csv`,
beside Locust's files, which stay as they are), ``--json`` appends one element
``{"arrivals": [...]}`` (:func:`arrivals_json`), the HTML report a section and
``/metrics`` the ``horde_arrival_*`` families (:func:`arrival_families`). Pure.

Imports: the standard library, prometheus_client and horde.master.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from horde.master.ratebook import ArrivalFigures, total

ARRIVALS_HEADER = (
    "User class",
    "Target rate/s",
    "Scheduled",
    "Started",
    "Dropped",
    "Achieved rate/s",
)
"""Columns of ``PREFIX_arrivals.csv`` and of the summary's arrivals table."""


def arrival_rows(figures: Sequence[ArrivalFigures]) -> list[ArrivalFigures]:
    """Each class, then the total (none without classes)."""
    return [*figures, total(tuple(figures))] if figures else []


def _cells(row: ArrivalFigures) -> list[object]:
    return [
        row.user_class,
        round(row.target_rate, 2),
        row.scheduled,
        row.started,
        row.dropped,
        round(row.achieved_rate, 2),
    ]


def arrivals_csv(figures: Sequence[ArrivalFigures]) -> str:
    """``PREFIX_arrivals.csv``: the header, a row per class and ``Total``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ARRIVALS_HEADER)
    writer.writerows(_cells(row) for row in arrival_rows(figures))
    return out.getvalue()


def arrivals_table(figures: Sequence[ArrivalFigures]) -> str:
    """The console table of arrival-rate iterations ('' when the run had none)."""
    rows = arrival_rows(figures)
    if not rows:
        return ""
    lines = [
        "Arrival-rate iterations (latency is timed from each iteration's scheduled start in"
        " the corrected table)",
        f"{'User class':<30} {'Target/s':>10} {'Scheduled':>10} {'Started':>10}"
        f" {'Dropped':>10} {'Achieved/s':>11}",
    ]
    for row in rows:
        lines.append(
            f"{row.user_class[:30]:<30} {row.target_rate:>10.1f} {row.scheduled:>10d}"
            f" {row.started:>10d} {row.dropped:>10d} {row.achieved_rate:>11.1f}"
        )
    return "\n".join(lines)


def arrivals_json(figures: Sequence[ArrivalFigures]) -> list[dict[str, Any]]:
    """The arrival figures as JSON objects, per class and ``Total``."""
    return [
        {
            "user_class": row.user_class,
            "target_rate": row.target_rate,
            "scheduled_iterations": row.scheduled,
            "iterations_started": row.started,
            "dropped_iterations": row.dropped,
            "achieved_rate": row.achieved_rate,
        }
        for row in arrival_rows(figures)
    ]


def with_arrivals(entries: list[dict[str, Any]], figures: Sequence[ArrivalFigures]) -> list[Any]:
    """``--json``'s list: Locust's entries, then ``{"arrivals": [...]}`` when there are any."""
    return [*entries, {"arrivals": arrivals_json(figures)}] if figures else entries


def arrivals_html(figures: Sequence[ArrivalFigures]) -> str:
    """The HTML report's section ('' when the run had no arrival-rate class)."""
    rows = arrival_rows(figures)
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ARRIVALS_HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in _cells(row)) + "</tr>"
        for row in rows
    )
    return (
        "<h2>Arrival-rate iterations</h2>"
        f'<table id="arrivals-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def arrival_families(figures: Sequence[ArrivalFigures]) -> list[Metric]:
    """``/metrics`` families per arrival-rate class (none when the run has none)."""
    if not figures:
        return []
    labels = ("user_class",)
    target = GaugeMetricFamily(
        "horde_arrival_target_rate", "Iterations per second the schedule asks for.", labels=labels
    )
    scheduled = CounterMetricFamily(
        "horde_arrival_scheduled_iterations", "Iterations the schedule asked for.", labels=labels
    )
    started = CounterMetricFamily(
        "horde_arrival_iterations_started", "Iterations started on time.", labels=labels
    )
    dropped = CounterMetricFamily(
        "horde_arrival_dropped_iterations",
        "Iterations not started: no free user within the max start delay.",
        labels=labels,
    )
    achieved = GaugeMetricFamily(
        "horde_arrival_achieved_rate", "Iterations started per second of schedule.", labels=labels
    )
    for row in figures:
        name = [row.user_class]
        target.add_metric(name, row.target_rate)
        scheduled.add_metric(name, row.scheduled)
        started.add_metric(name, row.started)
        dropped.add_metric(name, row.dropped)
        achieved.add_metric(name, row.achieved_rate)
    return [target, scheduled, started, dropped, achieved]
