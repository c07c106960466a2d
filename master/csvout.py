"""The master's CSV outputs, as Locust's ``--csv`` and web UI downloads write them.

Responsibility: render :class:`~horde.master.stats.MergedStats` and the
:class:`~horde.master.exceptions.ExceptionBook` into Locust's CSV documents (requests,
failures, exceptions and stats history) with Locust's headers and row semantics, build the
download file names Locust suggests (:mod:`horde.master.csvfiles` keeps the ``--csv
PREFIX`` files on disk). Pure: ``now`` is an argument.

Deliberate differences from Locust: response times are ms rounded to microseconds (3
decimals) where Locust writes whole-ms percentiles and raw floats elsewhere, and always
floats (Locust writes ``0`` for an empty entry); every percentile, history rows included,
comes from the cumulative merged histogram (Locust's full-history rows use a ~10 s window);
failures are listed most frequent first (Locust orders them by a hash). horde adds
``PREFIX_stats_corrected.csv``: pacing users' response times from their intended starts
(coordinated omission), with the time columns of the requests CSV.

The percentile columns are the script's ``PERCENTILES_TO_REPORT``, read when a document is
made (:mod:`horde.master.statsconf`); the history file keeps the columns of its header.

Imports: the standard library, :mod:`horde.protocol` and :mod:`horde.master`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo

from horde.master.corrected import CorrectedStats
from horde.master.exceptions import GroupedException
from horde.master.report import PERCENTILES
from horde.master.stats import MergedEntry, MergedStats
from horde.master.statsconf import report_percentiles
from horde.master.units import round_ms

__all__ = [
    "CORRECTED_HEADER",
    "EXCEPTIONS_HEADER",
    "FAILURES_HEADER",
    "NOT_AVAILABLE",
    "REQUESTS_HEADER",
    "UNKNOWN_TIMESTAMP",
    "attachment_filename",
    "corrected_csv",
    "corrected_header",
    "corrected_rows",
    "exception_rows",
    "exceptions_csv",
    "failure_rows",
    "failures_csv",
    "format_safe_timestamp",
    "format_utc_timestamp",
    "history_header",
    "history_rows",
    "readable_percentiles",
    "requests_csv",
    "requests_header",
    "requests_rows",
    "safe_filename_part",
]

NOT_AVAILABLE = "N/A"
"""What a percentile cell holds for an entry without requests (as Locust writes)."""
UNKNOWN_TIMESTAMP = "unstarted"
"""The timestamp part of a download name while the run has no start time yet."""
_PART_LIMIT = 64
"""Longest locustfile or host part kept in a download name (file systems cap names)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._~+-]")


def readable_percentiles(percentiles: Iterable[float]) -> list[str]:
    """Return Locust's column titles for ``percentiles`` (0.5 -> ``50%``, 0.999 -> ``99.9%``)."""
    titles = []
    for p in percentiles:
        pct = p * 100
        titles.append(f"{int(pct) if pct.is_integer() else round(pct, 6)}%")
    return titles


_REQUESTS_COLUMNS = (
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
)


def requests_header(percentiles: Sequence[float]) -> tuple[str, ...]:
    """Header of ``PREFIX_stats.csv`` and ``/stats/requests/csv`` (Locust's ``StatsCSV``)."""
    return (*_REQUESTS_COLUMNS, *readable_percentiles(percentiles))


REQUESTS_HEADER = requests_header(PERCENTILES)
"""The requests CSV's header with the default percentiles."""
FAILURES_HEADER: tuple[str, ...] = (
    "Method",
    "Name",
    "Error",
    "Occurrences",
    "First Seen",
    "Last Seen",
)
"""Header of ``PREFIX_failures.csv`` and ``/stats/failures/csv``."""
EXCEPTIONS_HEADER: tuple[str, ...] = ("Count", "Message", "Traceback", "Nodes")
"""Header of ``PREFIX_exceptions.csv`` and ``/exceptions/csv``."""
_HISTORY_TOTALS = (
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
)


def render_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Return ``header`` and ``rows`` as CSV text (Locust's ``csv.writer`` dialect)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _figures(entry: MergedEntry, percentiles: Sequence[float]) -> tuple[float, list[object]]:
    """Return the entry's median and its percentile cells (N/A without requests)."""
    median, *values = entry.percentiles_ms((0.5, *percentiles))
    if not entry.num_requests:
        return round_ms(median), [NOT_AVAILABLE] * len(percentiles)
    return round_ms(median), [round_ms(v) for v in values]


def _avg_content(entry: MergedEntry) -> float | int:
    """Mean content size; ``0`` without requests, as Locust writes it."""
    return entry.avg_content_length if entry.num_requests else 0


def _all_rows(stats: MergedStats) -> list[MergedEntry]:
    """Every entry sorted as Locust sorts them, then the ``Aggregated`` total (folded first)."""
    stats.fold()
    return [*stats.entries(), stats.total]


def requests_rows(
    stats: MergedStats, now: float, percentiles: Sequence[float] | None = None
) -> list[list[object]]:
    """Return the data rows of the requests CSV: one per entry, then ``Aggregated``.

    ``percentiles`` defaults to the script's ``PERCENTILES_TO_REPORT``.
    """
    if percentiles is None:
        percentiles = report_percentiles()
    rows: list[list[object]] = []
    for e in _all_rows(stats):
        median, cells = _figures(e, percentiles)
        rows.append(
            [
                e.method,
                e.name,
                e.num_requests,
                e.num_failures,
                median,
                round_ms(e.avg_response_time_ms),
                round_ms(e.min_response_time_ms or 0.0),
                round_ms(e.max_response_time_ms),
                _avg_content(e),
                e.total_rps(now),
                e.total_fail_per_sec(now),
                *cells,
            ]
        )
    return rows


_CORRECTED_COLUMNS = (
    "Type",
    "Name",
    "Request Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
)


def corrected_header(percentiles: Sequence[float]) -> tuple[str, ...]:
    """Header of ``PREFIX_stats_corrected.csv``: the time columns of the requests CSV."""
    return (*_CORRECTED_COLUMNS, *readable_percentiles(percentiles))


CORRECTED_HEADER = corrected_header(PERCENTILES)
"""The corrected CSV's header with the default percentiles."""


def corrected_rows(
    corrected: CorrectedStats, percentiles: Sequence[float] | None = None
) -> list[list[object]]:
    """Rows of the corrected CSV: one per pacing entry, then ``Aggregated`` (if any).

    ``percentiles`` defaults to the script's ``PERCENTILES_TO_REPORT``.
    """
    if percentiles is None:
        percentiles = report_percentiles()
    rows: list[list[object]] = []
    entries = corrected.entries()
    for c in [*entries, corrected.total] if entries else []:
        median, *values = c.percentiles_ms((0.5, *percentiles))
        rows.append(
            [
                c.method,
                c.name,
                c.count,
                round_ms(median),
                round_ms(c.avg_ms),
                round_ms(c.min_ms or 0.0),
                round_ms(c.max_ms),
                *(round_ms(v) for v in values),
            ]
        )
    return rows


def corrected_csv(corrected: CorrectedStats) -> str:
    """Return ``PREFIX_stats_corrected.csv``: pacing users' times from intended starts."""
    ps = report_percentiles()
    return render_csv(corrected_header(ps), corrected_rows(corrected, ps))


def requests_csv(stats: MergedStats, now: float) -> str:
    """Return the requests CSV (Locust's ``requests_csv``), header included."""
    ps = report_percentiles()
    return render_csv(requests_header(ps), requests_rows(stats, now, ps))


def format_utc_timestamp(unix_time: float) -> str:
    """Return ``unix_time`` (whole seconds) as Locust's ``%Y-%m-%dT%H:%M:%SZ`` in UTC."""
    return datetime.fromtimestamp(int(unix_time), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def failure_rows(stats: MergedStats) -> list[list[object]]:
    """Return the data rows of the failures CSV, most frequent first."""
    return [
        [
            e.method,
            e.name,
            e.error,
            e.occurrences,
            "" if e.first_seen is None else format_utc_timestamp(e.first_seen),
            "" if e.last_seen is None else format_utc_timestamp(e.last_seen),
        ]
        for e in stats.errors()
    ]


def failures_csv(stats: MergedStats) -> str:
    """Return the failures CSV (Locust's ``failures_csv``), header included."""
    return render_csv(FAILURES_HEADER, failure_rows(stats))


def exception_rows(groups: Iterable[GroupedException]) -> list[list[object]]:
    """Return the data rows of the exceptions CSV, from ``groups`` most frequent first."""
    rows: list[list[object]] = []
    for group in groups:
        doc = group.to_json()
        rows.append([doc["count"], doc["msg"], doc["traceback"], doc["nodes"]])
    return rows


def exceptions_csv(groups: Iterable[GroupedException]) -> str:
    """Return the exceptions CSV (Locust's ``exceptions_csv``), header included."""
    return render_csv(EXCEPTIONS_HEADER, exception_rows(groups))


def history_header(percentiles: Sequence[float] | None = None) -> list[str]:
    """Return the header of ``PREFIX_stats_history.csv`` (Locust's ``StatsCSVFileWriter``).

    ``percentiles`` defaults to the script's ``PERCENTILES_TO_REPORT``.
    """
    if percentiles is None:
        percentiles = report_percentiles()
    return [
        "Timestamp",
        "User Count",
        "Type",
        "Name",
        "Requests/s",
        "Failures/s",
        *readable_percentiles(percentiles),
        *_HISTORY_TOTALS,
    ]


def history_rows(
    stats: MergedStats,
    user_count: int,
    now: float,
    *,
    full_history: bool = True,
    percentiles: Sequence[float] | None = None,
) -> list[list[object]]:
    """Return one interval's history rows: each entry (if ``full_history``), then ``Aggregated``.

    As Locust: the timestamp is ``int(now)``, rates are current rates formatted ``:2f``
    and an entry without requests has ``N/A`` percentiles (``percentiles`` defaults to the
    script's ``PERCENTILES_TO_REPORT``).
    """
    if percentiles is None:
        percentiles = report_percentiles()
    stats.fold()
    entries = _all_rows(stats) if full_history else [stats.total]
    stamp = int(now)
    rows: list[list[object]] = []
    for e in entries:
        median, cells = _figures(e, percentiles)
        rows.append(
            [
                stamp,
                user_count,
                e.method or "",
                e.name,
                f"{e.current_rps(now):2f}",
                f"{e.current_fail_per_sec(now):2f}",
                *cells,
                e.num_requests,
                e.num_failures,
                median,
                round_ms(e.avg_response_time_ms),
                round_ms(e.min_response_time_ms or 0.0),
                round_ms(e.max_response_time_ms),
                _avg_content(e),
            ]
        )
    return rows


def format_safe_timestamp(unix_time: float, tz: tzinfo | None = None) -> str:
    """Return Locust's file-name timestamp ``%Y-%m-%d-%Hh%M`` (local time unless ``tz``)."""
    return datetime.fromtimestamp(int(unix_time), tz).strftime("%Y-%m-%d-%Hh%M")


def safe_filename_part(text: str, limit: int = _PART_LIMIT) -> str:
    """Return ``text`` with every character but ``[A-Za-z0-9._~+-]`` made ``_``, cut to ``limit``.

    What is left is an HTTP token safe in an unquoted ``Content-Disposition`` file name:
    no quotes, separators, whitespace, control or non-ASCII characters.
    """
    return _UNSAFE.sub("_", text[:limit])


def attachment_filename(
    start_time: float | None,
    locustfile: str,
    host: str,
    kind: str,
    ext: str = "csv",
    *,
    tz: tzinfo | None = None,
) -> str:
    """Return Locust's suggested download name, made safe for a ``Content-Disposition`` header.

    ``Locust_<timestamp>_<locustfile>[_<host>]_<kind>.<ext>``; with ``kind=""`` (the HTML
    report) there is no kind part. The timestamp is the run start in local time (or ``tz``),
    :data:`UNKNOWN_TIMESTAMP` before the run has one. Locust puts the host there verbatim;
    a browser saving the file replaces what a file name cannot hold, so this does it first.
    """
    stamp = UNKNOWN_TIMESTAMP if start_time is None else format_safe_timestamp(start_time, tz)
    parts = [f"Locust_{stamp}", safe_filename_part(locustfile)]
    if host:
        parts.append(safe_filename_part(host))
    if kind:
        parts.append(safe_filename_part(kind))
    return "_".join(parts) + "." + safe_filename_part(ext)
