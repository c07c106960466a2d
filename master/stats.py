"""The master's merged request statistics: per-entry figures, the total, errors and windows.

Responsibility: :class:`MergedStats` merges workers' ``horde.stats`` deltas and Locust
``stats`` reports into per-(method, name) figures (:class:`~horde.master.entry.MergedEntry`)
plus the ``Aggregated`` total, keeping µs histograms, bounded per-second counts and a
bounded ring of per-second total histograms for current-window percentiles. Both wire forms
arrive as the same validated columns (:class:`~horde.protocol.columns.EntryColumns`) and
are merged by one path, the numpy :class:`~horde.master.stage.Stage`. Merging is adding
counts (min/max for extremes), so it is associative and order-independent. Staged figures
reach the entries when the caller folds (:meth:`MergedStats.fold`); reading never changes
a figure. It is pure: ``now`` is always an argument. At most ``max_names`` distinct
(method, name) entries are kept; later names are merged into the
:data:`~horde.protocol.counters.OVERFLOW_NAME` entry of their method, so totals stay exact.

Imports: the standard library, structlog, numpy (through the stage), :mod:`horde.protocol`,
:mod:`horde.master.entry` and :mod:`horde.master.stage`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any

import structlog

from horde.master.entry import (
    CURRENT_WINDOW_SECONDS,
    RATE_LAG_SECONDS,
    ErrorRecord,
    MergedEntry,
    Span,
)
from horde.master.stage import SAFE_VALUE, Stage
from horde.protocol.columns import LAST_IS_TOTAL, NO_TOTAL, EntryColumns, numpy, select
from horde.protocol.counters import DEFAULT_MAX_NAMES, OVERFLOW_NAME
from horde.protocol.histogram import Histogram
from horde.protocol.locust_stats import LocustStatsReport
from horde.protocol.stats import HordeStatsDelta, entry_columns

log = structlog.get_logger("horde.master")

__all__ = [
    "CURRENT_WINDOW_SECONDS",
    "PER_SEC_KEEP_SECONDS",
    "RATE_LAG_SECONDS",
    "ErrorRecord",
    "MergedEntry",
    "MergedStats",
]

PER_SEC_KEEP_SECONDS = 20
"""Per-second counts older than this (relative to the master's ``now``) are dropped."""
FUTURE_SKEW_SECONDS = 60
"""Per-second counts further than this ahead of ``now`` (worker clock skew) are dropped."""
RING_SECONDS = 20
"""Per-second total histograms kept for current-window percentiles."""


def _fits(cols: EntryColumns) -> bool:
    """Whether every value of ``cols`` is an int small enough to be summed in int64 staging."""
    return cols.peak < SAFE_VALUE and cols.scalars.dtype != object


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
        self._span = Span(started_at or None)
        self._entries: dict[tuple[str, str], MergedEntry] = {}
        self._total = MergedEntry("", "Aggregated", self._span)
        self._stage = Stage(self._total)
        self._exact: Stage | None = None
        """A stage of Python ints, for the rare report whose values int64 cannot sum."""
        self._errors: dict[tuple[str, str, str], list[Any]] = {}
        self._interns: dict[str, dict[int, MergedEntry]] = {}
        self._row_cache: dict[str, tuple[int, tuple[Any, ...], Any]] = {}
        self._window_cache: tuple[int, dict[int, Histogram], int, Histogram] | None = None
        self._ring: dict[int, Histogram] = {}
        self._ring_seconds = RING_SECONDS
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
        """Bring every merged figure into the entries and the total, ready to be read.

        Readers call it first; reading never folds. A reader that pauses between steps
        calls it before the first, and reads a :meth:`snapshot`.
        """
        self._fold_stages()
        if self._total_hist_stale:
            hist = self._archive.copy()
            for slot in self._ring.values():
                hist.merge(slot)
            self._total.hist = hist
            self._total_hist_stale = False

    def _fold_stages(self) -> None:
        """Fold what the stages hold into the entries, the total and the ring."""
        for stage in (self._stage, self._exact):
            if stage is not None and not stage.empty:
                ring = None if stage.ring_sec is None else self._ring_slot(stage.ring_sec)
                stage.fold(ring)

    def _ring_slot(self, sec: int) -> Histogram:
        """Return the total histogram for receive second ``sec``, evicting old seconds."""
        slot = self._ring.get(sec)
        if slot is None:
            for old in [s for s in self._ring if not sec - self._ring_seconds < s <= sec]:
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
        self._prune(sec)
        cols = entry_columns(delta)
        merged = 0
        if cols is not None:
            ids = cols.entry_id
            rows = self._cached_rows(worker_id, ids, cols)
            if rows is not None:  # the same ids as last time: all known
                first, last = self._stage_one(rows, cols, sec)
                merged = len(ids)
            else:
                found = list(map(table.get, ids))
                entries = [e for e in found if e is not None]
                if len(entries) < len(ids):
                    keep = numpy().array([e is not None for e in found], dtype=bool)
                    cols = select(cols, keep, cols.total)
                    self.unknown_ids += len(ids) - len(entries)
                merged = len(entries)
                first, last = self._add(worker_id, cols.entry_id, entries, cols, sec)
            if last >= first:
                # The last request happened during second ``last``, and no later than sent_at.
                self._touch_span(first, max(last, min(last + 1, delta.sent_at)))
        for err in delta.errors:
            key = (err.method, err.name, err.error)
            self._add_error(key, err.occurrences, err.first_seen, err.last_seen)
        return merged

    def merge_locust(self, worker_id: str, report: LocustStatsReport, now: float) -> int:
        """Merge a Locust worker's report; return how many entries were merged.

        As Locust's master does, the total is merged from ``stats_total`` rather than
        recomputed from the entries.
        """
        sec = int(now)
        self._prune(sec)
        decoded = report.decoded()
        names, cols = decoded.names, decoded.columns
        seen = (decoded.methods, names)
        rows = self._cached_rows(worker_id, seen, cols)
        if rows is not None:
            self._stage_one(rows, cols, sec)
        else:
            entries = list(map(self._entry, decoded.methods, names))
            self._add(worker_id, seen, entries, cols, sec)
        total = report.stats_total
        self._touch_span(total.start_time, total.last_request_timestamp)
        for err in report.errors.values():
            key = (err.method, err.name, err.error)
            self._add_error(key, err.occurrences, err.first_seen, err.last_seen)
        return len(names)

    def _cached_rows(self, worker_id: str, key: tuple[Any, ...], cols: EntryColumns) -> Any:
        """The rows a worker's last report of the same ``key`` had, if still valid; else None.

        A worker sends the same entries report after report; its rows are kept (under
        ``key``: its entry ids, or its Locust report's methods and names) until the stage
        renumbers its rows or the worker defines names.
        """
        hit = self._row_cache.get(worker_id)
        if hit is None or hit[0] != self._stage.generation or hit[1] != key or not _fits(cols):
            return None
        return hit[2]

    def _add(
        self,
        worker_id: str,
        key: tuple[Any, ...],
        entries: list[MergedEntry],
        cols: EntryColumns,
        sec: int,
    ) -> tuple[int, int]:
        """Stage ``cols`` (rows: ``entries``, the worker's ``key`` to them); return the span.

        The span is the (earliest, latest) second of its per-second counts (0, -1: none).
        """
        if not _fits(cols):
            return self._add_exact(entries, cols, sec)
        rows = self._rows(worker_id, key, entries, cols.total == LAST_IS_TOTAL)
        if rows is None:  # more entries than a stage has rows: in pieces
            return self._add_pieces(entries, cols, sec, self._stage_one)
        return self._stage_one(rows, cols, sec)

    def _stage_one(self, rows: Any, cols: EntryColumns, sec: int) -> tuple[int, int]:
        """Stage columns whose rows are ``rows`` in the int64 stage; return the span."""
        lo, hi = sec - PER_SEC_KEEP_SECONDS, sec + FUTURE_SKEW_SECONDS
        stage = self._stage
        span = stage.add(rows, cols, sec, lo, hi)
        if span is None:
            if stage.full or stage.ring_sec is None:
                self._fold_stages()
            else:  # a new receive second: only the total's histogram moves on
                stage.roll(self._ring_slot(stage.ring_sec), sec)
            span = stage.add(rows, cols, sec, lo, hi)
            assert span is not None  # an emptied or rolled stage takes any report
        return span

    def _add_exact(
        self, entries: list[MergedEntry], cols: EntryColumns, sec: int
    ) -> tuple[int, int]:
        """Merge columns with values beyond int64 sums through a stage of Python ints."""
        if self._exact is None:
            self._exact = Stage(self._total, exact=True)
        exact = self._exact

        def one(rows: Any, part: EntryColumns, sec: int) -> tuple[int, int]:
            lo, hi = sec - PER_SEC_KEEP_SECONDS, sec + FUTURE_SKEW_SECONDS
            span = exact.add(rows, part, sec, lo, hi)
            assert span is not None  # folded after each report: always empty here
            self._fold_stages()
            exact.release()
            return span

        rows = exact.rows_for(entries, total_row=cols.total == LAST_IS_TOTAL)
        if rows is None:
            exact.release()
            return self._add_pieces(entries, cols, sec, one)
        return one(rows, cols, sec)

    def _add_pieces(
        self,
        entries: list[MergedEntry],
        cols: EntryColumns,
        sec: int,
        stage_one: Callable[[Any, EntryColumns, int], tuple[int, int]],
    ) -> tuple[int, int]:
        """Stage a report of more entries than a stage has rows, a few hundred at a time."""
        stage = self._stage if stage_one == self._stage_one else self._exact
        assert stage is not None
        np = numpy()
        n = len(entries)
        first, last = 0, -1
        piece_total = NO_TOTAL if cols.total == LAST_IS_TOTAL else cols.total
        self._fold_stages()
        stage.release()
        step = stage.free_rows()
        for start in [*range(0, n, step), n] if cols.total == LAST_IS_TOTAL else range(0, n, step):
            keep = np.zeros(cols.n_rows, dtype=bool)
            if start == n:  # Locust's stats_total, alone
                keep[n] = True
                part, part_entries = select(cols, keep, LAST_IS_TOTAL), []
            else:
                keep[start : min(start + step, n)] = True
                part, part_entries = select(cols, keep, piece_total), entries[start : start + step]
            self._fold_stages()
            stage.release()
            rows = stage.rows_for(part_entries, total_row=part.total == LAST_IS_TOTAL)
            assert rows is not None  # the rows of an empty stage
            lo_sec, hi_sec = stage_one(rows, part, sec)
            if hi_sec >= lo_sec:
                first = lo_sec if last < first else min(first, lo_sec)
                last = max(last, hi_sec)
        return first, last

    def _rows(
        self, worker_id: str, key: tuple[Any, ...], entries: list[MergedEntry], total_row: bool
    ) -> Any:
        """The staging rows of a worker's entries (kept for it); None if no stage holds them."""
        stage = self._stage
        rows = stage.rows_for(entries, total_row=total_row)
        if rows is None:  # out of rows: fold, free them all, number again
            self._fold_stages()
            stage.release()
            rows = stage.rows_for(entries, total_row=total_row)
            if rows is None:  # more entries in one report than the stage has rows
                return None
        self._row_cache[worker_id] = (stage.generation, key, rows)
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

    def reset(self, now: float) -> None:
        """Start a new epoch at ``now``: zero every figure, keep entries and intern tables."""
        self._fold_stages()
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
        return [self._entries[k] for k in sorted(self._entries, key=lambda k: (k[1], k[0]))]

    @property
    def total(self) -> MergedEntry:
        """The ``Aggregated`` entry, as of the last :meth:`fold`."""
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
        """Copies of the first ``limit`` entries and of the total, as of the last fold.

        Reading the copies takes a while with many busy entries (percentiles); merging
        may go on meanwhile without changing what they say.
        """
        span = Span(self._span.start)
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

    def current_percentiles_ms(
        self, ps: Sequence[float], now: float, window_seconds: int = CURRENT_WINDOW_SECONDS
    ) -> list[float]:
        """:meth:`current_percentile_ms` of each of ``ps``, the window merged once.

        ``window_seconds`` longer than the seconds kept makes the stats keep that many from
        now on (a script's ``CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW``).
        """
        self._ring_seconds = max(self._ring_seconds, window_seconds)
        window = self._window(int(now), window_seconds)
        if not window.total:
            return [0.0] * len(ps)
        # The window's own extremes are unknown; the run's bound it.
        total = self._total
        return [
            max(min(value, total.max_rt_us), total.min_rt_us or 0) / 1000.0
            for value in window.percentiles(ps)
        ]

    def _window(self, sec: int, seconds: int) -> Histogram:
        """The total histogram of the received seconds ``(sec - seconds, sec]``.

        The seconds before ``sec`` are merged once per ``sec`` (they are complete), the
        slot of ``sec`` itself on every call.
        """
        cached = self._window_cache
        if (
            cached is None
            or cached[0] != sec
            or cached[1] is not self._ring
            or cached[2] != seconds
        ):
            done = Histogram()
            for s, slot in self._ring.items():
                if sec - seconds < s < sec:
                    done.merge(slot)
            cached = self._window_cache = (sec, self._ring, seconds, done)
        window = cached[3].copy()
        current = self._ring.get(sec)
        if current is not None:
            window.merge(current)
        return window
