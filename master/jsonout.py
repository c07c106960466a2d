"""The master's ``--json`` output: Locust's serialized request entries, from merged stats.

Responsibility: build what Locust prints with ``--json`` (and writes with ``--json-file``)
at the end of a headless run, ``RequestStats.serialize_stats()``: a list with one
``StatsEntry.serialize()`` dict per entry that saw a request or a failure, without the
``Aggregated`` total, dumped with ``indent=4``. Pure.

Deliberate differences from Locust: times are ms rounded to microseconds (3 decimals)
rather than raw floats; ``response_times`` is rebuilt from the µs histogram (each bucket's
midpoint, clamped to the entry's min and max, keyed as Locust keys a response time);
``start_time`` and ``last_request_timestamp`` are the run's, shared by every entry (horde
does not track them per entry); ``num_reqs_per_sec`` and ``num_fail_per_sec`` hold only the
recent seconds the master keeps; entries are sorted by (name, method). Entries of pacing
users carry one extra key, ``corrected``: the coordinated-omission corrected series.

The ``corrected`` percentiles are the script's ``PERCENTILES_TO_REPORT``, read when made.

Imports: the standard library, :mod:`horde.protocol` and horde.master (stats, corrected,
statsconf, units).
"""

from __future__ import annotations

import json
from typing import Any

from horde.master.corrected import CorrectedEntry, CorrectedStats
from horde.master.stats import MergedEntry, MergedStats
from horde.master.statsconf import report_percentiles
from horde.master.units import round_ms, us_to_ms
from horde.protocol.histogram import bucket_mid
from horde.protocol.locust_stats import locust_bucket

__all__ = [
    "JSON_INDENT",
    "corrected_json",
    "dumps",
    "entry_json",
    "locust_json",
    "response_times",
    "summary_json",
]

JSON_INDENT = 4
"""Indentation Locust's ``print_stats_json`` and ``save_stats_json`` use."""


def _whole(value: float) -> float | int:
    """Return ``value`` as an int when it is whole (Locust's content lengths are ints)."""
    return int(value) if float(value).is_integer() else value


def response_times(entry: MergedEntry) -> dict[int, int]:
    """Return Locust's ``{rounded ms: count}`` for ``entry``, keys ascending.

    Each histogram bucket counts at its midpoint, clamped into the entry's exact min and
    max, rounded with Locust's ``bucket_response_time`` rule; the counts add up to the
    histogram's total (the timed requests).
    """
    low, high = entry.min_rt_us, entry.max_rt_us
    out: dict[int, int] = {}
    for index, count in entry.hist.counts.items():
        if count <= 0:
            continue
        us = bucket_mid(index)
        if low is not None:
            us = min(max(us, low), high)
        key = locust_bucket(us / 1000)
        out[key] = out.get(key, 0) + count
    return dict(sorted(out.items()))


def entry_json(
    entry: MergedEntry, start_time: float | None, last_request_timestamp: float | None
) -> dict[str, Any]:
    """Return ``entry`` as Locust's ``StatsEntry.serialize()`` dict, keys in Locust's order."""
    return {
        "name": entry.name,
        "method": entry.method,
        "last_request_timestamp": last_request_timestamp,
        "start_time": start_time or 0.0,
        "num_requests": entry.num_requests,
        "num_none_requests": entry.num_none_requests,
        "num_failures": entry.num_failures,
        "total_response_time": us_to_ms(entry.total_rt_us),
        "max_response_time": us_to_ms(entry.max_rt_us),
        "min_response_time": None if entry.min_rt_us is None else us_to_ms(entry.min_rt_us),
        "total_content_length": _whole(entry.total_content_length),
        "response_times": response_times(entry),
        "num_reqs_per_sec": dict(sorted(entry.req_per_sec.items())),
        "num_fail_per_sec": dict(sorted(entry.fail_per_sec.items())),
    }


def corrected_json(entry: CorrectedEntry) -> dict[str, Any]:
    """Return the ``corrected`` extra key of an entry: its coordinated-omission series (ms).

    Times from each request's intended start (raw time plus its iteration's lateness):
    count, average, min, max and the CSV's percentiles, keyed as ``/stats/requests`` keys
    its percentiles.
    """
    percentiles = report_percentiles()
    median, *values = entry.percentiles_ms((0.5, *percentiles))
    out: dict[str, Any] = {
        "num_requests": entry.count,
        "avg_response_time": round_ms(entry.avg_ms),
        "min_response_time": None if entry.min_us is None else us_to_ms(entry.min_us),
        "max_response_time": us_to_ms(entry.max_us),
        "median_response_time": round_ms(median),
    }
    for p, value in zip(percentiles, values, strict=True):
        out[f"response_time_percentile_{p}"] = round_ms(value)
    return out


def locust_json(
    stats: MergedStats, corrected: CorrectedStats | None = None
) -> list[dict[str, Any]]:
    """Return Locust's ``serialize_stats()`` list: active entries only, no ``Aggregated``.

    An entry of pacing users also has a ``corrected`` key (:func:`corrected_json`); every
    other key is Locust's.
    """
    stats.fold()
    start, last = stats.start_time, stats.last_request_timestamp
    out = []
    for e in stats.entries():
        if not (e.num_requests or e.num_failures):
            continue
        row = entry_json(e, start, last)
        fixed = corrected.get(e.method, e.name) if corrected else None
        if fixed is not None:
            row["corrected"] = corrected_json(fixed)
        out.append(row)
    return out


def dumps(stats: MergedStats, corrected: CorrectedStats | None = None) -> str:
    """Return :func:`locust_json` as the text Locust's ``--json`` prints (``indent=4``)."""
    return json.dumps(locust_json(stats, corrected), indent=JSON_INDENT)


def summary_json(stats: MergedStats, corrected: CorrectedStats | None = None) -> dict[str, Any]:
    """Return the final summary as the master's ``summary`` log line carries it (with
    ``--log-format json``): the ``Aggregated`` entry as ``total`` and :func:`locust_json`'s
    entries as ``entries``, each in :func:`entry_json`'s form."""
    entries = locust_json(stats, corrected)
    total = entry_json(stats.total, stats.start_time, stats.last_request_timestamp)
    return {"total": total, "entries": entries}
