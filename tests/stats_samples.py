"""Merged stats built from known request samples, and Locust's report keys: for the tests
of what the master shows."""

from __future__ import annotations

from typing import Any

from horde.master.stats import MergedEntry, MergedStats
from horde.worker.stats import RequestRecorder

# Keys of Locust's GET /stats/requests that come from the stats (locust/web.py:
# request_stats); state, user_count, workers and worker_count are added by the caller.
LOCUST_STATS_KEYS = {
    "stats",
    "errors",
    "current_rps",
    "current_fail_per_sec",
    "total_rps",
    "total_fail_per_sec",
    "fail_ratio",
    "current_response_time_percentiles",
}

T0 = 1_700_000_000.0
Sample = tuple[str, str, float | None, Any]
"""One request: method, name, response time in ms (None: untimed), exception or None."""


def merged(*samples: Sample, now: float = T0 + 1) -> MergedStats:
    """Return MergedStats holding ``samples`` (made at ``T0``) from one worker's delta."""
    rec = RequestRecorder()
    for method, name, ms, exc in samples:
        rec.record(method, name, ms, 100, exc, T0)
    stats = MergedStats(started_at=T0 - 1)
    delta = rec.take_horde_delta(
        run_id="r", epoch=0, seq=1, now=now, user_classes_count={}, user_count=0
    )
    stats.merge_horde("w", delta, now)
    stats.fold()
    return stats


def observable(stats: MergedStats, now: float) -> dict[str, Any]:
    """Every observable figure of ``stats`` for equality checks (zero counts left out)."""
    stats.fold()

    def one(e: MergedEntry) -> tuple[Any, ...]:
        return (
            e.method,
            e.name,
            e.num_requests,
            e.num_none_requests,
            e.num_failures,
            e.total_rt_us,
            e.min_rt_us,
            e.max_rt_us,
            e.total_content_length,
            {i: n for i, n in e.hist.counts.items() if n},
            e.hist.total,
            {s: n for s, n in e.req_per_sec.items() if n},
            {s: n for s, n in e.fail_per_sec.items() if n},
            e.current_rps(now),
            e.total_rps(now),
        )

    return {
        "entries": [one(e) for e in stats.entries()],
        "total": one(stats.total),
        "errors": stats.errors(),
        "current_p95": stats.current_percentile_ms(0.95, now),
        "span": (stats.start_time, stats.last_request_timestamp),
        "unknown": stats.unknown_ids,
    }
