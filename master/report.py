"""The stats part of Locust's ``GET /stats/requests`` document, built from merged stats.

Responsibility: turn :class:`~horde.master.stats.MergedStats` into the JSON-ready dict
Locust's web UI and API clients read: the same keys, with response times in ms as floats
that keep microsecond precision (Locust rounds to whole ms). Pure: ``now`` is an argument.

Which percentiles it carries is read when it is made (:mod:`horde.master.statsconf`): a
script's ``PERCENTILES_TO_STATISTICS`` and ``PERCENTILES_TO_CHART`` take effect.

Imports: the standard library and horde.master (stats, statsconf, units) only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any

from horde.master.stats import MergedEntry, MergedStats
from horde.master.statsconf import (
    DEFAULT_PERCENTILES_TO_CHART,
    DEFAULT_PERCENTILES_TO_REPORT,
    DEFAULT_PERCENTILES_TO_STATISTICS,
    chart_percentiles,
    current_window,
    statistics_percentiles,
)
from horde.master.units import round_ms

__all__ = [
    "MAX_ROWS",
    "PERCENTILES",
    "PERCENTILES_TO_CHART",
    "PERCENTILES_TO_STATISTICS",
    "entry_row",
    "error_rows",
    "stats_report",
]

PERCENTILES = DEFAULT_PERCENTILES_TO_REPORT
"""Default percentiles of the summary tables (Locust's ``PERCENTILES_TO_REPORT``)."""
PERCENTILES_TO_STATISTICS = DEFAULT_PERCENTILES_TO_STATISTICS
"""Default percentiles each ``/stats/requests`` row carries."""
PERCENTILES_TO_CHART = DEFAULT_PERCENTILES_TO_CHART
"""Default percentiles of ``current_response_time_percentiles`` (the UI's chart)."""
MAX_ROWS = 500
"""Most entries (and errors) one document lists, as Locust's UI does."""
ROW_SLICE = 5
"""Rows computed between two calls of the pause of a pausing :func:`stats_report`."""


def entry_row(
    entry: MergedEntry, now: float, percentiles: Sequence[float] | None = None
) -> dict[str, Any]:
    """Return one row of ``stats`` with Locust's keys, in Locust's order.

    ``percentiles`` are the ``response_time_percentile_<p>`` keys (default: the script's
    ``PERCENTILES_TO_STATISTICS``).
    """
    if percentiles is None:
        percentiles = statistics_percentiles()
    median, *stat_ps = entry.percentiles_ms((0.5, *percentiles))
    row: dict[str, Any] = {
        "method": entry.method,
        "name": entry.name,
        "num_requests": entry.num_requests,
        "num_failures": entry.num_failures,
        "min_response_time": round_ms(entry.min_response_time_ms or 0.0),
        "max_response_time": round_ms(entry.max_response_time_ms),
        "current_rps": entry.current_rps(now),
        "current_fail_per_sec": entry.current_fail_per_sec(now),
        "avg_response_time": round_ms(entry.avg_response_time_ms),
        "median_response_time": round_ms(median),
        "total_rps": entry.total_rps(now),
        "total_fail_per_sec": entry.total_fail_per_sec(now),
    }
    for p, value in zip(percentiles, stat_ps, strict=True):
        row[f"response_time_percentile_{p}"] = round_ms(value)
    row["avg_content_length"] = entry.avg_content_length
    return row


def error_rows(stats: MergedStats, limit: int = MAX_ROWS) -> list[dict[str, Any]]:
    """Return up to ``limit`` errors in Locust's ``StatsError.serialize()`` form."""
    return [
        {
            "name": e.name,
            "method": e.method,
            "error": e.error,
            "occurrences": e.occurrences,
            "first_seen": e.first_seen,
            "last_seen": e.last_seen,
        }
        for e in islice(stats.errors(), limit)
    ]


def stats_report(
    stats: MergedStats, now: float, *, pause: Callable[[], object] | None = None
) -> dict[str, Any]:
    """Return the stats keys of ``/stats/requests``: rows, errors, rates, percentiles.

    ``stats`` holds at most :data:`MAX_ROWS` entries sorted by (name, method), followed by
    the ``Aggregated`` row. The caller adds ``state``, ``user_count`` and worker keys.
    With ``pause`` (a yield to other greenlets), rows come from a snapshot of the figures
    and ``pause`` is called after folding (before the snapshot) and after every
    :data:`ROW_SLICE` rows: merging goes on between slices, and the document still
    describes one moment, the snapshot's.
    """
    stats.fold()
    if pause is None:
        entries, total = list(islice(stats.entries(), MAX_ROWS)), stats.total
    else:
        pause()
        entries, total = stats.snapshot(MAX_ROWS)
    chart, statistics = chart_percentiles(), statistics_percentiles()
    current = stats.current_percentiles_ms(chart, now, current_window())  # the snapshot's moment
    errors = error_rows(stats)
    rows = []
    for k, entry in enumerate(entries, 1):
        rows.append(entry_row(entry, now, statistics))
        if pause is not None and k % ROW_SLICE == 0:
            pause()
    total_row = entry_row(total, now, statistics)
    rows.append(total_row)
    return {
        "stats": rows,
        "errors": errors,
        "total_rps": total_row["total_rps"],
        "total_fail_per_sec": total_row["total_fail_per_sec"],
        "fail_ratio": total.fail_ratio,
        "current_rps": total_row["current_rps"],
        "current_fail_per_sec": total_row["current_fail_per_sec"],
        "current_response_time_percentiles": {
            f"response_time_percentile_{p}": round_ms(value)
            for p, value in zip(chart, current, strict=True)
        },
    }
