"""Plain-text stats tables for the console, laid out as Locust prints them.

Responsibility: render the requests table, the percentiles table and the error report of
:class:`~horde.master.stats.MergedStats` as strings (no printing, no terminal queries).
Names wider than their column are truncated with ``...``; times are ms with three
significant digits or so.

The percentile columns are the script's ``PERCENTILES_TO_REPORT``, read when a table is made.

Imports: the standard library and :mod:`horde.master` (corrected, stats, statsconf, units) only.
"""

from __future__ import annotations

from collections.abc import Sequence

from horde.master.corrected import CorrectedStats
from horde.master.stats import MergedEntry, MergedStats
from horde.master.statsconf import report_percentiles
from horde.master.units import format_ms

__all__ = [
    "ERROR_WIDTH",
    "NAME_WIDTH",
    "TYPE_WIDTH",
    "corrected_table",
    "errors_table",
    "percentiles_table",
    "requests_table",
]

TYPE_WIDTH = 8
"""Width of the Type (method) column."""
NAME_WIDTH = 50
"""Width of the Name column; longer names are truncated."""
ERROR_WIDTH = 120
"""Width of the error text in the error report; longer texts are truncated."""


def _fit(text: str, width: int) -> str:
    """Return ``text`` cut to ``width`` characters (ending in ``...`` when cut)."""
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


def _pct_header(p: float) -> str:
    """Return ``p`` as Locust's readable percentage (0.999 -> ``99.9%``)."""
    value = p * 100
    return f"{int(value)}%" if value.is_integer() else f"{round(value, 6)}%"


def _row_type(entry: MergedEntry) -> str:
    """Return the Type cell (empty for the Aggregated row)."""
    return _fit(entry.method, TYPE_WIDTH)


def _request_row(entry: MergedEntry, now: float) -> str:
    """Return one line of the requests table."""
    fails = f"{entry.num_failures}({entry.fail_ratio * 100:.2f}%)"
    return (
        f"{_row_type(entry):<{TYPE_WIDTH}} {_fit(entry.name, NAME_WIDTH):<{NAME_WIDTH}} "
        f"{entry.num_requests:>7d} {fails:>12} |"
        f"{format_ms(entry.avg_response_time_ms):>7} "
        f"{format_ms(entry.min_response_time_ms or 0.0):>7} "
        f"{format_ms(entry.max_response_time_ms):>7} {format_ms(entry.median_ms):>7} | "
        f"{entry.current_rps(now):>7.2f} {entry.current_fail_per_sec(now):>11.2f}"
    )


def requests_table(stats: MergedStats, now: float) -> str:
    """Return the requests table: one row per entry, then the Aggregated row."""
    stats.fold()
    header = (
        f"{'Type':<{TYPE_WIDTH}} {'Name':<{NAME_WIDTH}} {'# reqs':>7} {'# fails':>12} |"
        f"{'Avg':>7} {'Min':>7} {'Max':>7} {'Med':>7} | {'req/s':>7} {'failures/s':>11}"
    )
    sep = (
        f"{'-' * TYPE_WIDTH}|{'-' * NAME_WIDTH}|{'-' * 7}|{'-' * 13}|"
        f"{'-' * 7}|{'-' * 7}|{'-' * 7}|{'-' * 8}|{'-' * 8}|{'-' * 11}"
    )
    lines = [header, sep]
    lines += [_request_row(e, now) for e in stats.entries()]
    lines += [sep, _request_row(stats.total, now)]
    return "\n".join(lines)


def _percentile_row(entry: MergedEntry, percentiles: Sequence[float]) -> str:
    """Return one line of the percentiles table."""
    cells = " ".join(f"{format_ms(v):>7}" for v in entry.percentiles_ms(percentiles))
    return (
        f"{_row_type(entry):<{TYPE_WIDTH}} {_fit(entry.name, NAME_WIDTH):<{NAME_WIDTH}} "
        f"{cells} {entry.num_requests:>8d}"
    )


def _percentile_heading(percentiles: Sequence[float]) -> tuple[str, str]:
    """Return the header line and the separator of a percentiles table."""
    heads = " ".join(f"{_pct_header(p):>7}" for p in percentiles)
    header = f"{'Type':<{TYPE_WIDTH}} {'Name':<{NAME_WIDTH}} {heads} {'# reqs':>8}"
    sep = f"{'-' * TYPE_WIDTH}|{'-' * NAME_WIDTH}|" + "|".join(["-" * 7] * len(percentiles))
    return header, sep + "|" + "-" * 8


def percentiles_table(stats: MergedStats) -> str:
    """Return the response-time percentiles table (ms) for entries with timed requests."""
    stats.fold()
    ps = report_percentiles()
    header, sep = _percentile_heading(ps)
    lines = ["Response time percentiles (ms)", header, sep]
    lines += [_percentile_row(e, ps) for e in stats.entries() if e.hist.total]
    lines.append(sep)
    total = stats.total
    if total.hist.total:
        lines.append(_percentile_row(total, ps))
    return "\n".join(lines)


def _corrected_row(label_type: str, name: str, values: list[float], count: int) -> str:
    """Return one line of the corrected table."""
    cells = " ".join(f"{format_ms(v):>7}" for v in values)
    return (
        f"{_fit(label_type, TYPE_WIDTH):<{TYPE_WIDTH}} {_fit(name, NAME_WIDTH):<{NAME_WIDTH}} "
        f"{cells} {count:>8d}"
    )


def corrected_table(stats: MergedStats, corrected: CorrectedStats) -> str:
    """Return the pacing users' percentiles, raw and corrected, row beside row ('' if none).

    The corrected row times each request from its intended start: the raw time plus how
    late its task iteration started (coordinated omission).
    """
    stats.fold()
    if not corrected:
        return ""
    ps = report_percentiles()
    header, sep = _percentile_heading(ps)
    lines = [
        "Response time percentiles corrected for coordinated omission (ms), pacing users",
        header,
        sep,
    ]
    raw = {(e.method, e.name): e for e in stats.entries()}
    for c in corrected.entries():
        e = raw.get((c.method, c.name))
        if e is not None and e.hist.total:
            lines.append(_percentile_row(e, ps))
        lines.append(_corrected_row("", f"  corrected {c.name}", c.percentiles_ms(ps), c.count))
    if len(corrected.entries()) > 1:
        total = corrected.total
        lines.append(sep)
        lines.append(
            _corrected_row("", "corrected Aggregated", total.percentiles_ms(ps), total.count)
        )
    return "\n".join(lines)


def _error_text(method: str, name: str, error: str) -> str:
    """Return Locust's error label, with ``CatchResponseError(...)`` unwrapped."""
    prefix = "CatchResponseError("
    if error.startswith(prefix) and error.endswith(")"):
        error = error[len(prefix) : -1]
    return f"{method} {name}: {error}"


def errors_table(stats: MergedStats) -> str:
    """Return the error report: occurrences and ``method name: error``, most frequent first."""
    sep = f"{'-' * 18}|{'-' * (ERROR_WIDTH + 1)}"
    lines = [f"{'# occurrences':<18} {'Error'}", sep]
    lines += [
        f"{e.occurrences:<18d} {_fit(_error_text(e.method, e.name, e.error), ERROR_WIDTH)}"
        for e in stats.errors()
    ]
    lines.append(sep)
    return "\n".join(lines)
