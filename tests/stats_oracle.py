"""The tests' oracle: the master's merge written plainly in Python, one value at a time.

The master merges every report through the numpy stage (``horde.master.stage``); these
functions are the plain merge it replaced, kept only to check on random inputs that the
staged figures are exactly the ones a value-by-value merge gives.
"""

from __future__ import annotations

from collections.abc import Sequence

from horde.master.stats import FUTURE_SKEW_SECONDS, PER_SEC_KEEP_SECONDS, MergedEntry, MergedStats
from horde.protocol.histogram import Histogram, bucket_index
from horde.protocol.locust_stats import LocustEntry, LocustStatsReport
from horde.protocol.stats import EntryDelta, HordeStatsDelta


def merge_entries(
    table: dict[int, MergedEntry],
    entries: Sequence[EntryDelta],
    total: MergedEntry,
    ring: Histogram,
    *,
    lo: int,
    hi: int,
) -> tuple[int, int | None, int | None]:
    """Merge entry deltas into their entries, the total and the ring slot ``ring``.

    Per-second counts outside ``[lo, hi]`` are dropped; entries whose id is not in
    ``table`` are skipped. Returns (entries merged, earliest second, latest second).
    The total's histogram is not touched: it is rebuilt from the ring when read.
    """
    rcounts = ring.counts
    rget = rcounts.get
    t_reqs, t_fails = total.req_per_sec, total.fail_per_sec
    t_req = t_none = t_fail = t_rt = t_len = merged = 0
    t_min, t_max = total.min_rt_us, total.max_rt_us
    first: int | None = None
    last: int | None = None
    for d in entries:
        e = table.get(d[0])
        if e is None:
            continue
        _, nreq, nnone, nfail, rt, low, high, length, pairs, triples, _ = d
        e.num_requests += nreq
        e.num_none_requests += nnone
        e.num_failures += nfail
        e.total_rt_us += rt
        e.total_content_length += length
        t_req += nreq
        t_none += nnone
        t_fail += nfail
        t_rt += rt
        t_len += length
        if low is not None:
            if e.min_rt_us is None or low < e.min_rt_us:
                e.min_rt_us = low
            if t_min is None or low < t_min:
                t_min = low
        e.max_rt_us = max(e.max_rt_us, high)
        t_max = max(t_max, high)
        if pairs:
            hist = e.hist
            counts = hist.counts
            get = counts.get
            it = iter(pairs)
            for i, n in zip(it, it, strict=True):
                counts[i] = get(i, 0) + n
                rcounts[i] = rget(i, 0) + n
            hist.total += nreq - nnone  # validated: the bucket counts add up to this
        reqs, fails = e.req_per_sec, e.fail_per_sec
        for k in range(0, len(triples), 3):
            sec = triples[k]
            if first is None or sec < first:
                first = sec
            if last is None or sec > last:
                last = sec
            if lo <= sec <= hi:
                n = triples[k + 1]
                reqs[sec] = reqs.get(sec, 0) + n
                t_reqs[sec] = t_reqs.get(sec, 0) + n
                n = triples[k + 2]
                if n:
                    fails[sec] = fails.get(sec, 0) + n
                    t_fails[sec] = t_fails.get(sec, 0) + n
        merged += 1
    ring.total += t_req - t_none
    total.num_requests += t_req
    total.num_none_requests += t_none
    total.num_failures += t_fail
    total.total_rt_us += t_rt
    total.total_content_length += t_len
    total.min_rt_us, total.max_rt_us = t_min, t_max
    return merged, first, last


def add_locust_entry(entry: MergedEntry, src: LocustEntry, hist: Histogram, sec: int) -> None:
    """Merge one Locust entry (ms, Locust buckets) into ``entry`` and ``hist`` (µs)."""
    entry.num_requests += src.num_requests
    entry.num_none_requests += src.num_none_requests
    entry.num_failures += src.num_failures
    entry.total_rt_us += round(src.total_response_time * 1000)
    entry.total_content_length += src.total_content_length
    if src.min_response_time is not None:
        low = round(src.min_response_time * 1000)
        if entry.min_rt_us is None or low < entry.min_rt_us:
            entry.min_rt_us = low
    entry.max_rt_us = max(entry.max_rt_us, round(src.max_response_time * 1000))
    counts = hist.counts
    for ms, n in src.response_times.items():
        i = bucket_index(ms * 1000)
        counts[i] = counts.get(i, 0) + n
    hist.total += sum(src.response_times.values())
    lo, hi = sec - PER_SEC_KEEP_SECONDS, sec + FUTURE_SKEW_SECONDS
    for target, source in (
        (entry.req_per_sec, src.num_reqs_per_sec),
        (entry.fail_per_sec, src.num_fail_per_sec),
    ):
        for s, n in source.items():
            if lo <= s <= hi:
                target[s] = target.get(s, 0) + n


def oracle_merge_horde(
    stats: MergedStats, worker_id: str, delta: HordeStatsDelta, now: float
) -> int:
    """Merge a horde delta into ``stats`` value by value (what ``merge_horde`` must equal)."""
    table = stats.define_names(worker_id, delta.names)
    sec = int(now)
    stats.fold()
    stats._prune(sec)
    lo, hi = sec - PER_SEC_KEEP_SECONDS, sec + FUTURE_SKEW_SECONDS
    merged, first, last = merge_entries(
        table, delta.entries, stats._total, stats._ring_slot(sec), lo=lo, hi=hi
    )
    stats.unknown_ids += len(delta.entries) - merged
    if first is not None and last is not None:
        stats._touch_span(first, max(last, min(last + 1, delta.sent_at)))
    for err in delta.errors:
        stats._add_error(
            (err.method, err.name, err.error), err.occurrences, err.first_seen, err.last_seen
        )
    return merged


def oracle_merge_locust(stats: MergedStats, report: LocustStatsReport, now: float) -> int:
    """Merge a Locust report into ``stats`` value by value (what ``merge_locust`` must equal)."""
    sec = int(now)
    stats.fold()
    stats._prune(sec)
    for src in report.stats:
        entry = stats._entry(src.method, src.name)
        add_locust_entry(entry, src, entry.hist, sec)
    total = report.stats_total
    add_locust_entry(stats._total, total, stats._ring_slot(sec), sec)
    stats._touch_span(total.start_time, total.last_request_timestamp)
    for err in report.errors.values():
        stats._add_error(
            (err.method, err.name, err.error), err.occurrences, err.first_seen, err.last_seen
        )
    return len(report.stats)
