"""The master's merged request statistics: per-entry figures, the total, errors and windows.

Responsibility: :class:`MergedStats` folds workers' ``horde.stats`` deltas and Locust
``stats`` reports into per-(method, name) figures plus the ``Aggregated`` total, keeping
µs histograms, bounded per-second counts and a bounded ring of per-second total histograms
for current-window percentiles. Merging is adding counts (min/max for extremes), so it is
associative and order-independent. It is pure: ``now`` is always an argument. Validated
deltas are staged in bulk (:mod:`horde.master.stage`, numpy) and folded into the entries
when they are read. At most ``max_names`` distinct (method, name) entries are kept; later
names are merged into the :data:`~horde.protocol.counters.OVERFLOW_NAME` entry of their
method, so totals stay exact.

Imports: the standard library, structlog, :mod:`horde.protocol` and :mod:`horde.master.stage`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import structlog

from horde.master.stage import SAFE_VALUE, Stage
from horde.protocol.counters import DEFAULT_MAX_NAMES, OVERFLOW_NAME, EntryCounters
from horde.protocol.histogram import Histogram, bucket_index
from horde.protocol.stats import (
    EntryColumns,
    EntryDelta,
    HordeStatsDelta,
    LocustEntry,
    LocustStatsReport,
)

log = structlog.get_logger("horde.master")

__all__ = [
    "CURRENT_WINDOW_SECONDS",
    "PER_SEC_KEEP_SECONDS",
    "RATE_LAG_SECONDS",
    "ErrorRecord",
    "MergedEntry",
    "MergedStats",
]

CURRENT_WINDOW_SECONDS = 10
"""Length of the window behind ``current_*`` rates and percentiles."""
RATE_LAG_SECONDS = 3
"""The current rate window ends this many seconds before ``now`` (reports arrive late)."""
PER_SEC_KEEP_SECONDS = 20
"""Per-second counts older than this (relative to the master's ``now``) are dropped."""
FUTURE_SKEW_SECONDS = 60
"""Per-second counts further than this ahead of ``now`` (worker clock skew) are dropped."""
RING_SECONDS = 20
"""Per-second total histograms kept for current-window percentiles."""


class _Span:
    """The run's time span shared by every entry (Locust computes rates over it)."""

    __slots__ = ("last", "start")

    def __init__(self, start: float | None) -> None:
        """Create a span starting at ``start`` (None: at the first activity seen)."""
        self.start = start
        self.last: float | None = None


_PLAIN_FIGURES = (
    "num_requests",
    "num_none_requests",
    "num_failures",
    "total_rt_us",
    "min_rt_us",
    "max_rt_us",
    "total_content_length",
)
"""The figures of an entry that are numbers (copied as they are)."""


class MergedEntry(EntryCounters):
    """Merged figures of one (method, name), or of the ``Aggregated`` total.

    Raw figures are integer µs; the ``*_ms`` accessors convert. Rates follow Locust: total
    rates divide by the run's span, current rates average per-second counts over
    ``[now - 13, now - 3)``.
    """

    __slots__ = ("_span", "row")

    def __init__(self, method: str, name: str, span: _Span) -> None:
        """Create an empty entry bound to the stats' shared span."""
        self._span = span
        self.row = -1
        """Row in the merge stage while it has staged figures (-1: none)."""
        super().__init__(method, name)

    def __repr__(self) -> str:
        """Return a short representation."""
        return f"MergedEntry({self.method!r}, {self.name!r}, num_requests={self.num_requests})"

    def snapshot(self, span: _Span) -> MergedEntry:
        """An independent copy of these figures, bound to ``span`` (a copy of the run's)."""
        copy = MergedEntry(self.method, self.name, span)
        for name in _PLAIN_FIGURES:
            setattr(copy, name, getattr(self, name))
        copy.hist = Histogram(dict(self.hist.counts))
        copy.hist.total = self.hist.total
        copy.req_per_sec = dict(self.req_per_sec)
        copy.fail_per_sec = dict(self.fail_per_sec)
        return copy

    @property
    def total_response_time_ms(self) -> float:
        """Sum of response times in ms."""
        return self.total_rt_us / 1000.0

    @property
    def min_response_time_ms(self) -> float | None:
        """Smallest response time in ms (None before any timed request)."""
        return None if self.min_rt_us is None else self.min_rt_us / 1000.0

    @property
    def max_response_time_ms(self) -> float:
        """Largest response time in ms (0 before any timed request)."""
        return self.max_rt_us / 1000.0

    @property
    def avg_response_time_ms(self) -> float:
        """Mean response time in ms over requests that had one."""
        timed = self.num_requests - self.num_none_requests
        return self.total_rt_us / 1000.0 / timed if timed > 0 else 0.0

    @property
    def avg_content_length(self) -> float:
        """Mean response length in bytes."""
        return self.total_content_length / self.num_requests if self.num_requests else 0.0

    @property
    def fail_ratio(self) -> float:
        """Failures per request (1.0 for failures without requests, as Locust)."""
        if self.num_requests:
            return self.num_failures / self.num_requests
        return 1.0 if self.num_failures else 0.0

    def percentiles_ms(self, ps: Iterable[float]) -> list[float]:
        """Return nearest-rank percentiles in ms (p=0 is the min, p=1 the max); 0 when empty."""
        values = self.hist.percentiles(ps, min_us=self.min_rt_us, max_us=self.max_rt_us)
        return [us / 1000.0 for us in values]

    def percentile_ms(self, p: float) -> float:
        """Return the nearest-rank ``p`` (0..1) percentile in ms; never above the max."""
        return self.percentiles_ms((p,))[0]

    @property
    def median_ms(self) -> float:
        """The 50th percentile in ms."""
        return self.percentile_ms(0.5)

    def _current(self, counts: dict[int, int], now: float) -> float:
        """Mean of ``counts`` per second over the current-rate window ending at ``now``."""
        hi = int(now) - RATE_LAG_SECONDS
        lo = hi - CURRENT_WINDOW_SECONDS
        start = self._span.start
        if start is not None:
            lo = max(lo, int(start))
        if hi <= lo:
            return 0.0
        get = counts.get
        return sum(get(s, 0) for s in range(lo, hi)) / (hi - lo)

    def current_rps(self, now: float) -> float:
        """Requests per second over ``[now - 13, now - 3)`` (clipped to the run start)."""
        return self._current(self.req_per_sec, now)

    def current_fail_per_sec(self, now: float) -> float:
        """Failures per second over ``[now - 13, now - 3)`` (clipped to the run start)."""
        return self._current(self.fail_per_sec, now)

    def _per_run_second(self, count: int, now: float) -> float:
        """``count`` divided by the run's span (last request, at most ``now``, minus start)."""
        start, last = self._span.start, self._span.last
        if start is None or last is None:
            return 0.0
        elapsed = min(last, now) - start
        return count / elapsed if elapsed > 0 else 0.0

    def total_rps(self, now: float) -> float:
        """Requests per second over the whole run, as Locust computes it."""
        return self._per_run_second(self.num_requests, now)

    def total_fail_per_sec(self, now: float) -> float:
        """Failures per second over the whole run, as Locust computes it."""
        return self._per_run_second(self.num_failures, now)


@dataclass(frozen=True)
class ErrorRecord:
    """One merged error: occurrences summed, first seen earliest, last seen latest."""

    method: str
    name: str
    error: str
    occurrences: int
    first_seen: float | None
    last_seen: float | None


def _merge_entries(  # noqa: PLR0915 - one inlined loop: the master's hottest code
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


def _stageable(cols: EntryColumns) -> bool:
    """Whether every value of ``cols`` is small enough to be summed in int64 staging."""
    return cols.peak < SAFE_VALUE


class MergedStats:
    """All merged figures of the current epoch, fed by workers' deltas and reports.

    ``max_names`` caps the distinct (method, name) entries (default
    :data:`~horde.protocol.counters.DEFAULT_MAX_NAMES`, 10,000: ample for scripts that
    group URLs with ``name=``, and a bound on memory, ~20 KiB an entry, for one that does
    not). A (method, name) first seen beyond the cap is merged into the entry
    ``(method, "(other names)")`` (:data:`~horde.protocol.counters.OVERFLOW_NAME`), which
    may come on top of the cap, one per method; the first time, a warning is logged on
    ``horde.master``. ``Aggregated`` counts everything either way.
    """

    def __init__(
        self, started_at: float | None = None, *, max_names: int = DEFAULT_MAX_NAMES
    ) -> None:
        """Create empty stats; ``started_at`` is the run start (None or 0: first activity)."""
        self.max_names = max_names
        self.overflowed = 0
        """Distinct (method, name) pairs merged into an overflow entry (cumulative)."""
        self._stage = Stage()
        self._span = _Span(started_at or None)
        self._entries: dict[tuple[str, str], MergedEntry] = {}
        self._total = MergedEntry("", "Aggregated", self._span)
        self._errors: dict[tuple[str, str, str], list[Any]] = {}
        self._interns: dict[str, dict[int, MergedEntry]] = {}
        self._row_cache: dict[str, tuple[int, tuple[int, ...], list[int]]] = {}
        self._window_cache: tuple[int, dict[int, Histogram], Histogram] | None = None
        self._ring: dict[int, Histogram] = {}
        self._archive = Histogram()
        self._total_hist_stale = False
        self._pruned_sec: int | None = None
        self.unknown_ids = 0
        """Entry deltas dropped because their worker never defined the id (cumulative)."""

    # --- writing -----------------------------------------------------------------------

    def _entry(self, method: str, name: str) -> MergedEntry:
        """Return the entry for (method, name), creating it on first use (within the cap)."""
        entry = self._entries.get((method, name))
        if entry is None:
            if len(self._entries) >= self.max_names:
                return self._overflow(method, name)
            entry = self._entries[(method, name)] = MergedEntry(method, name, self._span)
        return entry

    def _overflow(self, method: str, name: str) -> MergedEntry:
        """The overflow entry of ``method``, for a new ``name`` beyond the cap."""
        if not self.overflowed:
            log.warning(
                "too many distinct request names: later ones are merged",
                max_names=self.max_names,
                into=OVERFLOW_NAME,
                first=f"{method} {name}"[:200],
            )
        self.overflowed += 1
        key = (method, OVERFLOW_NAME)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = MergedEntry(method, OVERFLOW_NAME, self._span)
        return entry

    def fold(self) -> None:
        """Fold what the stage holds into the entries, the total and the ring.

        Every reader does it first; a reader that pauses between steps calls it before
        the first, so its later steps find little left to fold.
        """
        stage = self._stage
        if stage.empty:
            return
        ring = None if stage.ring_sec is None else self._ring_slot(stage.ring_sec)
        stage.fold(self._total, ring)

    def _ring_slot(self, sec: int) -> Histogram:
        """Return the total histogram for receive second ``sec``, evicting old seconds."""
        slot = self._ring.get(sec)
        if slot is None:
            for old in [s for s in self._ring if not sec - RING_SECONDS < s <= sec]:
                self._archive.merge(self._ring.pop(old))
            slot = self._ring[sec] = Histogram()
        self._total_hist_stale = True
        if self._window_cache is not None and sec < self._window_cache[0]:
            self._window_cache = None  # a second the cached window holds gets more
        return slot

    def _prune(self, sec: int) -> None:
        """Drop per-second counts older than the keep window (at most once per second)."""
        if self._pruned_sec == sec:
            return
        self._pruned_sec = sec
        cutoff = sec - PER_SEC_KEEP_SECONDS
        for entry in [self._total, *self._entries.values()]:
            for counts in (entry.req_per_sec, entry.fail_per_sec):
                for old in [s for s in counts if s < cutoff]:
                    del counts[old]

    def _touch_span(self, first: float | None, last: float | None) -> None:
        """Widen the run span to include activity from ``first`` to ``last``."""
        span = self._span
        if first is not None and (span.start is None or first < span.start):
            span.start = first
        if last is not None and (span.last is None or last > span.last):
            span.last = last

    def merge_horde(self, worker_id: str, delta: HordeStatsDelta, now: float) -> int:
        """Merge a worker's delta; return how many entries were merged.

        ``names`` extend the worker's intern table first; entries whose id the worker never
        defined are dropped and counted in :attr:`unknown_ids`. Run/epoch filtering is the
        caller's job.
        """
        table = self.define_names(worker_id, delta.names)
        sec = int(now)
        if self._stage.ring_sec is not None and self._stage.ring_sec != sec:
            self.fold()
        self._prune(sec)
        lo, hi = sec - PER_SEC_KEEP_SECONDS, sec + FUTURE_SKEW_SECONDS
        span = self._stage_delta(worker_id, table, delta, sec)
        if span is not None:
            merged, first, last = len(delta.entries), *span
        else:
            merged, first, last = _merge_entries(
                table, delta.entries, self._total, self._ring_slot(sec), lo=lo, hi=hi
            )
            self.unknown_ids += len(delta.entries) - merged
        if first is not None and last is not None:
            # The last request happened during second ``last``, and no later than sent_at.
            self._touch_span(first, max(last, min(last + 1, delta.sent_at)))
        for err in delta.errors:
            key = (err.method, err.name, err.error)
            self._add_error(key, err.occurrences, err.first_seen, err.last_seen)
        return merged

    def _stage_delta(
        self,
        worker_id: str,
        table: dict[int, MergedEntry],
        delta: HordeStatsDelta,
        sec: int,
    ) -> tuple[int | None, int | None] | None:
        """Stage ``delta`` in bulk if it can be; return its (first, last) second, else None.

        Deltas with an id the worker never defined, or values too large for int64 sums,
        go the one-by-one way.
        """
        cols = delta.columns
        if cols is None or not _stageable(cols):
            return None
        rows = self._rows(worker_id, table, cols.entry_id)
        if rows is None:
            return None
        lo, hi = sec - PER_SEC_KEEP_SECONDS, sec + FUTURE_SKEW_SECONDS
        stage = self._stage
        span = stage.add(rows, cols, sec, lo, hi)
        if span is None:
            self.fold()
            span = stage.add(rows, cols, sec, lo, hi)
            if span is None:
                return None
        first, last = span
        return (first, last) if last >= first else (None, None)

    def _rows(
        self, worker_id: str, table: dict[int, MergedEntry], ids: tuple[int, ...]
    ) -> list[int] | None:
        """The staging rows of a worker's entry ids; None if one is unknown or too many.

        A worker sends the same ids delta after delta, so its last answer is kept until
        the stage renumbers its rows or the worker defines names.
        """
        stage = self._stage
        hit = self._row_cache.get(worker_id)
        if hit is not None and hit[0] == stage.generation and hit[1] == ids:
            return hit[2]
        entries = list(map(table.get, ids))
        if None in entries:
            return None
        rows = stage.rows_for(entries)
        if rows is None:  # out of rows: fold, free them all, number again
            self.fold()
            stage.release()
            rows = stage.rows_for(entries)
            if rows is None:  # more entries in one delta than the stage has rows
                return None
        self._row_cache[worker_id] = (stage.generation, ids, rows)
        return rows

    def define_names(
        self, worker_id: str, names: Iterable[tuple[int, str, str]]
    ) -> dict[int, MergedEntry]:
        """Learn a worker's ``(entry id, method, name)`` definitions; return its table."""
        table = self._interns.get(worker_id)
        if table is None:
            table = self._interns[worker_id] = {}
        if names:
            self._row_cache.pop(worker_id, None)
        for eid, method, name in names:
            table[eid] = self._entry(method, name)
        return table

    def _add_error(
        self, key: tuple[str, str, str], occurrences: int, first: float | None, last: float | None
    ) -> None:
        """Merge occurrences of one error (first seen min, last seen max, None-aware)."""
        rec = self._errors.get(key)
        if rec is None:
            self._errors[key] = [occurrences, first, last]
            return
        rec[0] += occurrences
        if first is not None and (rec[1] is None or first < rec[1]):
            rec[1] = first
        if last is not None and (rec[2] is None or last > rec[2]):
            rec[2] = last

    @staticmethod
    def _add_locust_entry(entry: MergedEntry, src: LocustEntry, hist: Histogram, sec: int) -> None:
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

    def merge_locust(self, worker_id: str, report: LocustStatsReport, now: float) -> int:
        """Merge a Locust worker's report; return how many entries were merged.

        As Locust's master does, the total is merged from ``stats_total`` rather than
        recomputed from the entries. ``worker_id`` is accepted for symmetry and logging.
        """
        del worker_id  # Locust entries carry their own keys; no intern table needed
        sec = int(now)
        self._prune(sec)
        for src in report.stats:
            entry = self._entry(src.method, src.name)
            self._add_locust_entry(entry, src, entry.hist, sec)
        total_src = report.stats_total
        # The total's histogram is rebuilt from the ring, so its buckets go to the ring only.
        self._add_locust_entry(self._total, total_src, self._ring_slot(sec), sec)
        self._touch_span(total_src.start_time, total_src.last_request_timestamp)
        for err in report.errors.values():
            key = (err.method, err.name, err.error)
            self._add_error(key, err.occurrences, err.first_seen, err.last_seen)
        return len(report.stats)

    def reset(self, now: float) -> None:
        """Start a new epoch at ``now``: zero every figure, keep entries and intern tables."""
        self.fold()
        for entry in self._entries.values():
            entry.clear()
        self._total.clear()
        self._errors = {}
        self._ring = {}
        self._archive = Histogram()
        self._total_hist_stale = False
        self._span.start = now
        self._span.last = None

    def forget_worker(self, worker_id: str) -> None:
        """Drop a worker's intern table (it left, or will re-announce its names)."""
        self._interns.pop(worker_id, None)
        self._row_cache.pop(worker_id, None)

    # --- reading -----------------------------------------------------------------------

    def entries(self) -> list[MergedEntry]:
        """Return the per-request entries sorted as Locust sorts them: (name, method)."""
        self.fold()
        return [self._entries[k] for k in sorted(self._entries, key=lambda k: (k[1], k[0]))]

    @property
    def total(self) -> MergedEntry:
        """The ``Aggregated`` entry (its histogram is rebuilt lazily from the ring)."""
        self.fold()
        if self._total_hist_stale:
            hist = self._archive.copy()
            for slot in self._ring.values():
                hist.merge(slot)
            self._total.hist = hist
            self._total_hist_stale = False
        return self._total

    @property
    def start_time(self) -> float | None:
        """Run start used by total rates (None until known)."""
        return self._span.start

    @property
    def last_request_timestamp(self) -> float | None:
        """Latest request time seen (None before any)."""
        return self._span.last

    def snapshot(self, limit: int) -> tuple[list[MergedEntry], MergedEntry]:
        """Copies of the first ``limit`` entries and of the total, as of now.

        Reading the copies takes a while with many busy entries (percentiles); merging
        may go on meanwhile without changing what they say.
        """
        span = _Span(self._span.start)
        span.last = self._span.last
        entries = [e.snapshot(span) for e in islice(self.entries(), limit)]
        return entries, self.total.snapshot(span)

    def errors(self) -> list[ErrorRecord]:
        """Return merged errors, most frequent first."""
        records = [
            ErrorRecord(method, name, error, occ, first, last)
            for (method, name, error), (occ, first, last) in self._errors.items()
        ]
        records.sort(key=lambda r: (-r.occurrences, r.method, r.name, r.error))
        return records

    def current_percentile_ms(self, p: float, now: float) -> float:
        """Total response-time percentile in ms over the last 10 received seconds (0: none)."""
        return self.current_percentiles_ms((p,), now)[0]

    def current_percentiles_ms(self, ps: Sequence[float], now: float) -> list[float]:
        """:meth:`current_percentile_ms` of each of ``ps``, the window merged once."""
        self.fold()
        window = self._window(int(now))
        if not window.total:
            return [0.0] * len(ps)
        # The window's own extremes are unknown; the run's bound it.
        total = self._total
        return [
            max(min(value, total.max_rt_us), total.min_rt_us or 0) / 1000.0
            for value in window.percentiles(ps)
        ]

    def _window(self, sec: int) -> Histogram:
        """The total histogram of the received seconds ``(sec - 10, sec]``.

        The seconds before ``sec`` are merged once per ``sec`` (they are complete), the
        slot of ``sec`` itself on every call.
        """
        cached = self._window_cache
        if cached is None or cached[0] != sec or cached[1] is not self._ring:
            done = Histogram()
            for s, slot in self._ring.items():
                if sec - CURRENT_WINDOW_SECONDS < s < sec:
                    done.merge(slot)
            cached = self._window_cache = (sec, self._ring, done)
        window = cached[2].copy()
        current = self._ring.get(sec)
        if current is not None:
            window.merge(current)
        return window
