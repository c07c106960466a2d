"""Bulk merging of validated stats columns into staging arrays (numpy): the one merge path.

Responsibility: the master's hottest path. Folding a 100-entry report into per-entry dicts
costs thousands of Python dict updates; :class:`Stage` instead adds a report's columns
(:class:`~horde.protocol.columns.EntryColumns`, from a horde delta or a Locust report
alike) into dense arrays with a few ``np.add.at`` calls and folds the arrays into the
entries' dicts and counters when the caller asks (:meth:`Stage.fold`, before any read) or
when its rows run out. Row 0 is the total's: a horde delta's entries are added to it as
well, a Locust report's ``stats_total`` row alone (as Locust's master does); its histogram
goes to the ring slot of the receive second, so when a new second starts that row and the
per-second counts move on (:meth:`Stage.roll`) while the rest stays staged. An int64
stage sums exactly: the caller stages only values below :data:`SAFE_VALUE`, and a stage
holds at most :data:`MAX_DELTAS` reports, so no sum can overflow; a stage of Python ints
(``Stage(total, exact=True)``) takes any value. Pure: ``now`` comes from the caller.

Imports: the standard library, numpy and :mod:`horde.protocol`.
"""

from __future__ import annotations

from itertools import repeat
from operator import add
from typing import Any, Protocol

import numpy as np

from horde.protocol.columns import SUM_TOTAL, EntryColumns
from horde.protocol.histogram import NUM_BUCKETS, Histogram

__all__ = ["MAX_DELTAS", "MAX_ROWS", "PENDING_MAX", "SAFE_VALUE", "SEC_RING", "Stage"]

SAFE_VALUE = 1 << 40
"""Staged values must be below this (larger ones are merged one by one, in Python ints)."""
MAX_DELTAS = 1 << 16
"""Deltas staged before a fold is forced: 2**16 * 2**40 stays far below 2**63."""
MAX_ROWS = 1024
"""Entries staged at once (a row is NUM_BUCKETS int64: 34 KiB); more force a fold."""
PENDING_MAX = 16
"""Deltas whose arithmetic waits, to be done at once (a fold does it sooner)."""
SEC_RING = 128
"""Per-second columns, indexed by second modulo this; staged seconds span less."""
_NO_MIN = np.iinfo(np.int64).max


class StagedEntry(Protocol):
    """What the stage needs of an entry (MergedEntry and the total satisfy it)."""

    num_requests: int
    num_none_requests: int
    num_failures: int
    total_rt_us: int
    min_rt_us: int | None
    max_rt_us: int
    total_content_length: float
    hist: Histogram
    req_per_sec: dict[int, int]
    fail_per_sec: dict[int, int]


class Stage:
    """Dense accumulators for up to :data:`MAX_ROWS` entries (row 0: the total); fold to read."""

    _hist: Any
    _sums: Any
    _min: Any
    _max: Any
    _req: Any
    _fail: Any

    def __init__(self, total: StagedEntry, *, exact: bool = False) -> None:
        """Create an empty stage for ``total`` (int64, or Python ints when ``exact``)."""
        self._dtype: Any = object if exact else np.int64
        self._no_min: Any = float("inf") if exact else _NO_MIN
        self._cap = 0
        self._alloc(4 if exact else 64)
        self._touched = np.zeros(NUM_BUCKETS, dtype=bool)
        """Histogram buckets any row may hold since the last fold: the fold reads only those."""
        self._total = total
        self._entries: list[Any] = [total]
        self._row_of: dict[Any, int] = {total: 0}
        self.ring_sec: int | None = None
        self._sec_lo: int | None = None
        self._sec_hi: int | None = None
        self.deltas = 0
        self.generation = 0
        """Bumped by :meth:`release`: row numbers handed out before are void."""
        self._pending: list[tuple[Any, EntryColumns, Any, Any]] = []

    def _alloc(self, cap: int) -> None:
        old, dtype = self._cap, self._dtype
        new_hist = np.zeros((cap, NUM_BUCKETS), dtype=dtype)
        new_sums = np.zeros((cap, 5), dtype=dtype)
        new_min = np.full(cap, self._no_min, dtype=dtype)
        new_max = np.zeros(cap, dtype=dtype)
        new_req = np.zeros((cap, SEC_RING), dtype=dtype)
        new_fail = np.zeros((cap, SEC_RING), dtype=dtype)
        if old:
            new_hist[:old] = self._hist
            new_sums[:old] = self._sums
            new_min[:old] = self._min
            new_max[:old] = self._max
            new_req[:old] = self._req
            new_fail[:old] = self._fail
        self._hist, self._sums, self._min, self._max = new_hist, new_sums, new_min, new_max
        self._req, self._fail = new_req, new_fail
        self._cap = cap

    @property
    def empty(self) -> bool:
        """Whether nothing is staged."""
        return self.deltas == 0

    def rows_for(self, entries: list[Any], *, total_row: bool = False) -> Any | None:
        """Staging rows of ``entries`` (int64 array), assigned on first use; None when out.

        With ``total_row``, row 0 (the total's) follows, for columns whose last row is the
        total. Rows stay assigned across folds, so callers may keep the array while
        :attr:`generation` is unchanged; :meth:`release` frees them all (but the total's).
        """
        rows = []
        row_of = self._row_of
        staged = self._entries
        for entry in entries:
            row = row_of.get(entry)
            if row is None:
                row = len(staged)
                if row >= MAX_ROWS:
                    return None
                if row >= self._cap:
                    self._alloc(min(MAX_ROWS, 2 * self._cap))
                row_of[entry] = row
                staged.append(entry)
            rows.append(row)
        if total_row:
            rows.append(0)
        return np.array(rows, dtype=np.int64)

    def free_rows(self) -> int:
        """How many more entries can have rows before :meth:`release`."""
        return MAX_ROWS - len(self._entries)

    def release(self) -> None:
        """Fold first: free every row (a new :attr:`generation` of row numbers begins)."""
        self._apply()
        self._entries = [self._total]
        self._row_of = {self._total: 0}
        self.generation += 1

    @property
    def full(self) -> bool:
        """Whether no more reports fit before a :meth:`fold`."""
        return self.deltas >= MAX_DELTAS

    def add(
        self, rows: Any, cols: EntryColumns, ring_sec: int, lo: int, hi: int
    ) -> tuple[int, int] | None:
        """Stage one report whose entries have ``rows`` (from :meth:`rows_for`); return its span.

        Returns (earliest, latest) second of its per-second counts (0, -1 when it has
        none), or None when the stage is :attr:`full` (fold, then add again) or the
        receive second moved on (:meth:`roll`, then add again). Per-second counts
        outside ``[lo, hi]`` are dropped. The arithmetic waits for :data:`PENDING_MAX`
        reports (or a fold) and is done for them all at once.
        """
        if self.deltas >= MAX_DELTAS or (self.ring_sec is not None and ring_sec != self.ring_sec):
            return None
        self.ring_sec = ring_sec
        self.deltas += 1
        first, last = cols.first_sec, cols.last_sec
        triples, trows = cols.triples, cols.triple_rows
        kept_lo, kept_hi = first, last
        if last >= first and (first < lo or last > hi):
            secs = triples[:, 0]
            keep = (secs >= lo) & (secs <= hi)
            triples, trows = triples[keep], trows[keep]
            kept_lo, kept_hi = (
                (int(secs[keep].min()), int(secs[keep].max())) if keep.any() else (0, -1)
            )
        if kept_hi >= kept_lo:
            self._sec_lo = kept_lo if self._sec_lo is None else min(self._sec_lo, kept_lo)
            self._sec_hi = kept_hi if self._sec_hi is None else max(self._sec_hi, kept_hi)
        self._pending.append((rows, cols, triples, trows))
        if len(self._pending) >= PENDING_MAX:
            self._apply()
        return first, last

    def _apply(self) -> None:
        """Add the pending reports into the arrays, a few numpy calls for all of them.

        A horde delta's columns also go to row 0, the total's, summed first (:meth:`_to_total`).
        """
        pending = self._pending
        if not pending:
            return
        self._pending = []
        cat = np.concatenate
        r = cat([p[0] for p in pending])
        sc = cat([p[1].scalars for p in pending], axis=1)  # nreq, nnone, nfail, rt, max, len
        low = cat([p[1].min_rt_us for p in pending])
        low = np.where(low < 0, self._no_min, low)
        pairs = cat([p[1].pairs for p in pending])
        pair_rows = cat([rows[cols.pair_rows] for rows, cols, _, _ in pending])
        triples = cat([p[2] for p in pending])
        triple_rows = cat([rows[trows] for rows, _, _, trows in pending])
        # 1-D np.add.at is ten times faster than on index tuples or rows of a 2-D array
        for column, field in enumerate((0, 1, 2, 3, 5)):
            np.add.at(self._sums[:, column], r, sc[field])
        np.maximum.at(self._max, r, sc[4])
        np.minimum.at(self._min, r, low)
        secs = (triples[:, 0] % SEC_RING).astype(np.int64)
        if len(pairs):
            buckets = pairs[:, 0].astype(np.int64)
            self._touched[buckets] = True
            np.add.at(self._hist.reshape(-1), pair_rows * NUM_BUCKETS + buckets, pairs[:, 1])
        if len(triples):
            cells = triple_rows * SEC_RING + secs
            np.add.at(self._req.reshape(-1), cells, triples[:, 1])
            np.add.at(self._fail.reshape(-1), cells, triples[:, 2])
        to_total = [p[1].total == SUM_TOTAL for p in pending]
        if all(to_total):
            self._to_total(sc, low, pairs, triples, secs)
        elif any(to_total):
            picks = [
                np.repeat(to_total, [len(x) for x in parts])
                for parts in (
                    [p[0] for p in pending],
                    [p[1].pairs for p in pending],
                    [p[2] for p in pending],
                )
            ]
            rows, pair_pick, triple_pick = picks
            self._to_total(
                sc[:, rows], low[rows], pairs[pair_pick], triples[triple_pick], secs[triple_pick]
            )

    def _to_total(self, sc: Any, low: Any, pairs: Any, triples: Any, secs: Any) -> None:
        """Add horde deltas' entries (their columns given) into row 0, the total's."""
        if not sc.shape[1]:
            return
        self._sums[0] += sc[[0, 1, 2, 3, 5]].sum(axis=1)
        self._max[0] = max(self._max[0], sc[4].max())
        self._min[0] = min(self._min[0], low.min())
        if len(pairs):
            np.add.at(self._hist[0], pairs[:, 0].astype(np.int64), pairs[:, 1])
        if len(secs):
            np.add.at(self._req[0], secs, triples[:, 1])
            np.add.at(self._fail[0], secs, triples[:, 2])

    def roll(self, ring: Histogram | None, ring_sec: int) -> None:
        """Move on to receive second ``ring_sec``: the total's staged histogram goes to
        ``ring`` (the histogram of :attr:`ring_sec` so far; None: dropped) and the
        per-second counts to the entries; the entries' histograms and counters stay
        staged. :meth:`fold` walks every entry's histogram row, the costly part."""
        self._apply()
        row = self._hist[0]
        cells = np.flatnonzero(row)
        if ring is not None and len(cells):
            _add_counts(ring, cells.tolist(), row[cells].tolist())
        row[cells] = 0
        self._fold_seconds(len(self._entries))
        self._sec_lo = self._sec_hi = None
        self.ring_sec = ring_sec

    def fold(self, ring: Histogram | None) -> None:
        """Add everything staged into the entries, the total and ``ring``; empty the stage.

        ``ring`` is the total histogram of :attr:`ring_sec` (None: its counts are dropped,
        e.g. after a reset).
        """
        self._apply()
        n = len(self._entries)
        self._fold_counters(n)
        self._fold_hist(n, ring)
        self._fold_seconds(n)
        self.ring_sec = None
        self._sec_lo = self._sec_hi = None
        self.deltas = 0

    def _fold_counters(self, n: int) -> None:
        sums = self._sums[:n].tolist()
        mins = self._min[:n].tolist()
        maxs = self._max[:n].tolist()
        no_min = self._no_min
        for entry, (nreq, nnone, nfail, rt, length), low, high in zip(
            self._entries, sums, mins, maxs, strict=True
        ):
            entry.num_requests += nreq
            entry.num_none_requests += nnone
            entry.num_failures += nfail
            entry.total_rt_us += rt
            entry.total_content_length += length
            if low != no_min and (entry.min_rt_us is None or low < entry.min_rt_us):
                entry.min_rt_us = low
            entry.max_rt_us = max(entry.max_rt_us, high)
        self._sums[:n] = 0
        self._min[:n] = no_min
        self._max[:n] = 0

    def _fold_hist(self, n: int, ring: Histogram | None) -> None:
        columns = np.flatnonzero(self._touched)  # the few buckets the reports used
        self._touched[columns] = False
        block = self._hist[:n, columns]  # a copy: rows x touched buckets
        cells = np.flatnonzero(block)  # row by row, buckets in order
        adds = block.reshape(-1)[cells].tolist()
        self._hist[:n, columns] = 0
        rows = cells // len(columns) if len(columns) else cells
        keys = columns[cells - rows * len(columns)].tolist()
        bounds = np.searchsorted(rows, np.arange(n + 1)).tolist()
        hists = [ring, *(e.hist for e in self._entries[1:])]  # the total's goes to the ring
        for hist, lo, hi in zip(hists, bounds, bounds[1:], strict=False):
            if lo != hi and hist is not None:
                _add_counts(hist, keys[lo:hi], adds[lo:hi])

    def _fold_seconds(self, n: int) -> None:
        lo, hi = self._sec_lo, self._sec_hi
        if lo is None or hi is None:
            return
        for sec in range(lo, hi + 1):
            col = sec % SEC_RING
            for grid, name in ((self._req, "req_per_sec"), (self._fail, "fail_per_sec")):
                column = grid[:n, col]
                nz = np.flatnonzero(column)
                if not len(nz):
                    continue
                for row, c in zip(nz.tolist(), column[nz].tolist(), strict=True):
                    target = getattr(self._entries[row], name)
                    target[sec] = target.get(sec, 0) + c
                column[nz] = 0


def _add_counts(hist: Histogram, keys: list[int], adds: list[int]) -> None:
    """Add ``adds`` to ``hist``'s buckets ``keys`` (the dict is updated by C loops)."""
    counts = hist.counts
    counts.update(zip(keys, map(add, map(counts.get, keys, repeat(0)), adds), strict=True))
    hist.total += sum(adds)
