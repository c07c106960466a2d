"""MergedStats: merging horde deltas and Locust reports, interning, windows and rates."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from horde.master.stats import PER_SEC_KEEP_SECONDS, RING_SECONDS, MergedStats
from horde.protocol.stats import EntryDelta, HordeStatsDelta
from horde.worker.stats import RequestRecorder
from tests.stats_samples import observable

T0 = 1_700_000_000.0


def delta(
    rec: RequestRecorder, now: float, *, announce_all: bool = False, seq: int = 1
) -> HordeStatsDelta:
    """Take a delta from ``rec`` (re-announcing every id first if asked)."""
    if announce_all:
        rec.forget_announcements()
    return rec.take_horde_delta(
        run_id="r", epoch=0, seq=seq, now=now, user_classes_count={}, user_count=0
    )


def bare(
    entries: tuple[EntryDelta, ...], names: tuple[tuple[int, str, str], ...] = ()
) -> HordeStatsDelta:
    """Build a delta around hand-made entries."""
    return HordeStatsDelta("r", 0, 1, T0, names, entries, (), {}, 0)


def busy_recorder(seed: int, start: float, seconds: int = 3) -> RequestRecorder:
    """Return a recorder holding random traffic over ``seconds`` seconds from ``start``."""
    rng = random.Random(seed)
    rec = RequestRecorder()
    for k in range(200):
        rt = None if k % 37 == 0 else rng.lognormvariate(3, 1)
        exc = ValueError(k % 3) if k % 11 == 0 else None
        rec.record(
            rng.choice("GP"), f"/p{rng.randint(0, 4)}", rt, k, exc, start + k * seconds / 200
        )
    return rec


def test_merge_sums_counters_and_total() -> None:
    """Entry figures add up per (method, name); the total adds every entry."""
    stats = MergedStats(started_at=T0)
    for worker in ("w1", "w2"):
        rec = RequestRecorder()
        rec.record("GET", "/a", 2.0, 10, None, T0 + 1)
        rec.record("GET", "/a", 4.0, 10, ValueError("x"), T0 + 1)
        rec.record("POST", "/b", None, 5, None, T0 + 2)
        assert stats.merge_horde(worker, delta(rec, T0 + 3), T0 + 3) == 2
    stats.fold()
    a, b = stats.entries()
    assert (a.method, a.name, a.num_requests, a.num_failures) == ("GET", "/a", 4, 2)
    assert (a.total_response_time_ms, a.min_response_time_ms, a.max_response_time_ms) == (12, 2, 4)
    assert a.avg_response_time_ms == 3.0 and a.avg_content_length == 10
    assert (b.num_requests, b.num_none_requests, b.min_response_time_ms) == (2, 2, None)
    assert b.avg_response_time_ms == 0.0 and b.percentile_ms(0.5) == 0.0
    total = stats.total
    assert (total.name, total.method, total.num_requests, total.num_failures) == (
        "Aggregated",
        "",
        6,
        2,
    )
    assert total.hist.total == 4 and total.fail_ratio == pytest.approx(2 / 6)
    (error,) = stats.errors()
    assert (error.occurrences, error.first_seen, error.last_seen) == (2, T0 + 1, T0 + 1)


def test_entries_are_sorted_by_name_then_method() -> None:
    """entries() follows Locust's (name, method) order."""
    rec = RequestRecorder()
    for method, name in [("POST", "/a"), ("GET", "/b"), ("GET", "/a")]:
        rec.record(method, name, 1.0, 0, None, T0)
    stats = MergedStats()
    stats.merge_horde("w", delta(rec, T0), T0)
    stats.fold()
    assert [(e.name, e.method) for e in stats.entries()] == [
        ("/a", "GET"),
        ("/a", "POST"),
        ("/b", "GET"),
    ]


def test_percentiles_are_nearest_rank_and_capped_by_max() -> None:
    """Merged percentiles match exact nearest-rank within 1% and never exceed the max."""
    rng = random.Random(3)
    values = [rng.uniform(0.05, 2000.0) for _ in range(997)]
    stats = MergedStats()
    for chunk in range(3):
        rec = RequestRecorder()
        for ms in values[chunk::3]:
            rec.record("GET", "/a", ms, 0, None, T0)
        stats.merge_horde(f"w{chunk}", delta(rec, T0), T0)
    stats.fold()
    (entry,) = stats.entries()
    exact_us = sorted(round(ms * 1000) for ms in values)
    for p in (0.01, 0.5, 0.9, 0.99, 0.999):
        want = exact_us[max(1, math.ceil(p * len(exact_us))) - 1] / 1000
        assert entry.percentile_ms(p) == pytest.approx(want, rel=0.01)
    assert entry.percentile_ms(1.0) == entry.max_response_time_ms == max(exact_us) / 1000
    assert entry.median_ms == entry.percentile_ms(0.5)
    assert all(v <= entry.max_response_time_ms for v in entry.percentiles_ms([0.9999, 1.0]))


def test_merge_order_does_not_matter() -> None:
    """Merging the same deltas in shuffled order yields identical figures."""
    deltas = [
        (f"w{w}", delta(busy_recorder(w * 10 + k, T0 + 3 * k), T0 + 3 * k + 3, announce_all=True))
        for w in range(3)
        for k in range(4)
    ]
    results = []
    for seed in range(4):
        order = deltas[:]
        random.Random(seed).shuffle(order)
        stats = MergedStats(started_at=T0)
        for worker, d in order:
            stats.merge_horde(worker, d, T0 + 15)
        results.append(observable(stats, T0 + 15))
    assert all(r == results[0] for r in results[1:])


def test_two_deltas_merge_like_one_combined_delta() -> None:
    """Merging a period as two deltas equals merging it as one (deltas are associative)."""
    rng = random.Random(9)
    samples = [
        (rng.choice("GP"), f"/p{rng.randint(0, 3)}", rng.uniform(0.1, 900)) for _ in range(300)
    ]
    split, whole = RequestRecorder(), RequestRecorder()
    first: HordeStatsDelta | None = None
    for k, (method, name, ms) in enumerate(samples):
        when = T0 + k / 100
        exc = ValueError(k % 2) if k % 13 == 0 else None
        split.record(method, name, ms, k, exc, when)
        whole.record(method, name, ms, k, exc, when)
        if k == 150:
            first = delta(split, when)
    assert first is not None
    combined, parts = MergedStats(started_at=T0), MergedStats(started_at=T0)
    combined.merge_horde("w", delta(whole, T0 + 3), T0 + 4)
    parts.merge_horde("w", first, T0 + 4)
    parts.merge_horde("w", delta(split, T0 + 3, seq=2), T0 + 4)
    assert observable(parts, T0 + 4) == observable(combined, T0 + 4)


def test_unknown_ids_are_dropped_and_counted() -> None:
    """Entries whose id the worker never defined are skipped and counted, not crashed on."""
    stats = MergedStats()
    entry = EntryDelta(7, 1, 0, 0, 100, 100, 100, 0, (100, 1), (int(T0), 1, 0))
    assert stats.merge_horde("w", bare((entry,)), T0) == 0
    stats.fold()
    assert stats.unknown_ids == 1 and stats.entries() == [] and stats.total.num_requests == 0
    assert stats.merge_horde("w", bare((entry,), ((7, "GET", "/a"),)), T0) == 1
    assert stats.merge_horde("w", bare((entry,)), T0) == 1
    assert stats.merge_horde("other", bare((entry,)), T0) == 0
    stats.fold()
    assert stats.unknown_ids == 2 and stats.entries()[0].num_requests == 2


def test_intern_tables_are_per_worker() -> None:
    """The same id from two workers can name different entries."""
    stats = MergedStats()
    entry = EntryDelta(0, 1, 0, 0, 100, 100, 100, 0, (100, 1), ())
    stats.merge_horde("w1", bare((entry,), ((0, "GET", "/one"),)), T0)
    stats.merge_horde("w2", bare((entry,), ((0, "GET", "/two"),)), T0)
    stats.merge_horde("w1", bare((entry,)), T0)
    stats.fold()
    assert {e.name: e.num_requests for e in stats.entries()} == {"/one": 2, "/two": 1}


def test_forget_worker_drops_its_intern_table() -> None:
    """After forget_worker the worker's ids are unknown until it announces them again."""
    stats = MergedStats()
    entry = EntryDelta(0, 1, 0, 0, 100, 100, 100, 0, (100, 1), ())
    stats.merge_horde("w", bare((entry,), ((0, "GET", "/a"),)), T0)
    stats.forget_worker("w")
    stats.forget_worker("never-seen")
    assert stats.merge_horde("w", bare((entry,)), T0) == 0 and stats.unknown_ids == 1


def test_reset_clears_figures_and_keeps_intern_tables() -> None:
    """reset() zeroes every figure and restarts the span; interned ids still resolve."""
    stats = MergedStats(started_at=T0)
    rec = busy_recorder(5, T0)
    stats.merge_horde("w", delta(rec, T0 + 3), T0 + 3)
    stats.reset(T0 + 10)
    assert stats.total.num_requests == 0 and stats.errors() == []
    assert all(e.num_requests == 0 for e in stats.entries())
    assert stats.start_time == T0 + 10 and stats.last_request_timestamp is None
    assert stats.current_percentile_ms(0.5, T0 + 10) == 0.0
    rec.record("G", "/p1", 1.0, 0, None, T0 + 11)
    assert stats.merge_horde("w", delta(rec, T0 + 12, seq=2), T0 + 12) == 1
    stats.fold()
    assert stats.total.num_requests == 1


def steady(stats: MergedStats, first: int, last: int, per_sec: int, fails: int = 0) -> None:
    """Merge ``per_sec`` requests (``fails`` failing) in each second first..last, as received."""
    for sec in range(first, last + 1):
        rec = RequestRecorder()
        for k in range(per_sec):
            rec.record("GET", "/a", 1.0, 0, ValueError() if k < fails else None, sec + k / per_sec)
        stats.merge_horde(f"w{sec}", delta(rec, sec + 1), sec + 1)
    stats.fold()


def test_current_rates_average_the_window_before_now() -> None:
    """current_rps is the mean of per-second counts over [now-13, now-3)."""
    stats = MergedStats(started_at=T0)
    base = int(T0)
    steady(stats, base, base + 29, per_sec=10, fails=2)
    now = base + 30.5
    for entry in (stats.entries()[0], stats.total):
        assert entry.current_rps(now) == pytest.approx(10.0)
        assert entry.current_fail_per_sec(now) == pytest.approx(2.0)
    # Only 5 of the 10 window seconds (base+17 .. base+21) have traffic at now = base + 30.
    sparse = MergedStats(started_at=T0)
    steady(sparse, base + 17, base + 21, per_sec=10)
    assert sparse.total.current_rps(base + 30.0) == pytest.approx(5.0)


def test_current_rates_are_clipped_to_the_run_start() -> None:
    """Early in a run the window starts at the run start, as Locust's does."""
    base = int(T0)
    stats = MergedStats(started_at=base + 10)
    steady(stats, base + 10, base + 14, per_sec=4)
    assert stats.total.current_rps(base + 15.2) == pytest.approx(4.0)
    assert stats.total.current_rps(base + 12.0) == 0.0


def test_total_rates_use_the_run_span() -> None:
    """total_rps is requests over (last request - start), capped at now, zero without a span."""
    assert MergedStats().total.total_rps(T0) == 0.0
    base = int(T0)
    stats = MergedStats(started_at=base)
    steady(stats, base, base + 9, per_sec=10, fails=1)
    assert stats.last_request_timestamp == base + 10
    assert stats.total.total_rps(base + 100) == pytest.approx(100 / 10)
    assert stats.total.total_fail_per_sec(base + 100) == pytest.approx(10 / 10)
    assert stats.entries()[0].total_rps(base + 5) == pytest.approx(100 / 5)


def test_start_defaults_to_the_first_activity() -> None:
    """Without a start time the span starts at the earliest second seen."""
    stats = MergedStats()
    steady(stats, int(T0) + 3, int(T0) + 4, per_sec=1)
    assert stats.start_time == int(T0) + 3


def test_per_second_counts_stay_bounded() -> None:
    """Per-second counts older than the keep window, or far in the future, are dropped."""
    base = int(T0)
    stats = MergedStats(started_at=base)
    steady(stats, base, base + 99, per_sec=1)
    entry = stats.entries()[0]
    assert len(entry.req_per_sec) <= PER_SEC_KEEP_SECONDS + 2
    assert min(entry.req_per_sec) >= base + 100 - PER_SEC_KEEP_SECONDS
    skewed = EntryDelta(0, 1, 0, 0, 1000, 1000, 1000, 0, (bucket := 640, 1), (base + 10_000, 1, 0))
    stats.merge_horde("x", bare((skewed,), ((0, "GET", "/a"),)), base + 100)
    stats.fold()
    assert base + 10_000 not in entry.req_per_sec and entry.hist.counts[bucket] >= 1
    assert entry.num_requests == 101


def test_current_percentile_uses_the_last_ten_received_seconds() -> None:
    """The current percentile covers what arrived in the last 10 s, from a bounded ring."""
    stats = MergedStats()
    slow, fast = RequestRecorder(), RequestRecorder()
    slow.record("GET", "/a", 900.0, 0, None, T0)
    fast.record("GET", "/a", 10.0, 0, None, T0 + 20)
    stats.merge_horde("w1", delta(slow, T0 + 1), T0 + 1)
    stats.fold()
    assert stats.current_percentile_ms(0.99, T0 + 5) == pytest.approx(900.0, rel=0.01)
    stats.merge_horde("w2", delta(fast, T0 + 21), T0 + 21)
    stats.fold()
    assert stats.current_percentile_ms(0.99, T0 + 21) == pytest.approx(10.0, rel=0.01)
    assert stats.current_percentile_ms(0.99, T0 + 40) == 0.0
    assert stats.total.percentile_ms(1.0) == 900.0
    for sec in range(100):
        rec = RequestRecorder()
        rec.record("GET", "/a", 5.0, 0, None, T0 + sec)
        stats.merge_horde("w3", delta(rec, T0 + sec, announce_all=True), T0 + 30 + sec)
    assert len(stats._ring) <= RING_SECONDS
    stats.fold()
    assert stats.total.hist.total == stats.total.num_requests == 102


def test_current_window_sees_late_data_for_a_second_it_already_merged() -> None:
    """The cached window of past seconds is rebuilt when one of them receives more data."""
    stats = MergedStats()
    fast, slow, again = RequestRecorder(), RequestRecorder(), RequestRecorder()
    fast.record("GET", "/a", 10.0, 0, None, T0)
    stats.merge_horde("w1", delta(fast, T0 + 1), T0 + 3)
    stats.fold()
    p50, p99 = stats.current_percentiles_ms((0.5, 0.99), T0 + 5)
    assert p50 == p99 == pytest.approx(10.0, rel=0.01)
    for _ in range(3):
        slow.record("GET", "/a", 900.0, 0, None, T0 + 1)
    stats.merge_horde("w2", delta(slow, T0 + 2), T0 + 3)  # received in a second already cached
    stats.fold()
    assert stats.current_percentile_ms(0.5, T0 + 5) == pytest.approx(900.0, rel=0.01)
    again.record("GET", "/a", 10.0, 0, None, T0 + 4)
    stats.merge_horde("w3", delta(again, T0 + 5), T0 + 5)  # the current second, not cached
    stats.fold()
    assert stats.current_percentiles_ms((0.5,), T0 + 5) == [pytest.approx(900.0, rel=0.01)]
    assert stats.current_percentile_ms(0.2, T0 + 5) == pytest.approx(10.0, rel=0.01)


def locust_report_from(rec: RequestRecorder, now: float) -> Any:
    """Return the Locust-format report of ``rec``."""
    return rec.take_locust_report(now=now, user_classes_count={}, user_count=0)


def test_merge_locust_converts_ms_to_microseconds() -> None:
    """Locust reports merge with ms figures converted to µs and buckets re-binned."""
    rec = RequestRecorder(exact_locust_buckets=True)
    rec.record("GET", "/a", 12.345, 10, None, T0 + 1)
    rec.record("GET", "/a", 155.0, 10, ValueError("x"), T0 + 2)
    rec.record("GET", "/a", None, 10, None, T0 + 2)
    stats = MergedStats(started_at=T0)
    assert stats.merge_locust("w", locust_report_from(rec, T0 + 3), T0 + 3) == 1
    stats.fold()
    (entry,) = stats.entries()
    assert (entry.num_requests, entry.num_none_requests, entry.num_failures) == (3, 1, 1)
    assert (entry.min_rt_us, entry.max_rt_us, entry.total_rt_us) == (12_345, 155_000, 167_345)
    assert entry.percentile_ms(0.5) == pytest.approx(12.345, rel=0.03)
    assert entry.percentile_ms(1.0) == 155.0
    assert entry.req_per_sec == {int(T0) + 1: 1, int(T0) + 2: 2}
    assert entry.fail_per_sec == {int(T0) + 2: 1}
    assert stats.total.num_requests == 3 and stats.total.hist.total == 2
    assert stats.last_request_timestamp == T0 + 2
    (error,) = stats.errors()
    assert (error.error, error.occurrences) == ("ValueError('x')", 1)


def test_errors_merge_across_workers_and_formats() -> None:
    """Occurrences add up, first_seen takes the min and last_seen the max."""
    stats = MergedStats()
    for worker, when in (("w1", T0 + 5), ("w2", T0 + 1), ("w3", T0 + 9)):
        rec = RequestRecorder()
        rec.record("GET", "/a", 1.0, 0, ValueError("x"), when)
        if worker == "w3":
            stats.merge_locust(worker, locust_report_from(rec, when), when)
        else:
            stats.merge_horde(worker, delta(rec, when), when)
    (error,) = stats.errors()
    assert (error.occurrences, error.first_seen, error.last_seen) == (3, T0 + 1, T0 + 9)
