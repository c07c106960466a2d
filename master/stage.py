"""Bulk merging of validated ``horde.stats`` deltas into int64 staging arrays (numpy).

Responsibility: the master's hottest path. Folding a 100-entry delta into per-entry dicts
costs thousands of Python dict updates; :class:`Stage` instead adds a delta's columns
(:class:`~horde.protocol.stats.EntryColumns`) into dense arrays with a few ``np.add.at``
calls and folds the arrays into the entries' dicts and counters only when someone reads
them, when a new second starts, or when its rows run out. Integer sums are exact: the
caller stages only values below :data:`SAFE_VALUE`, and a stage holds at most
:data:`MAX_DELTAS` deltas, so no int64 sum can overflow. Pure: ``now`` comes from the
caller.

Imports: the standard library, numpy and :mod:`horde.protocol`.
"""

from __future__ import annotations

from itertools import repeat
from operator import add
from typing import Any, Protocol

import numpy as np

from horde.protocol.histogram import NUM_BUCKETS, Histogram
from horde.protocol.stats import EntryColumns

__all__ = ["MAX_DELTAS", "MAX_ROWS", "PENDING_MAX", "SAFE_VALUE", "SEC_RING", "Stage"]

SAFE_VALUE = 1 << 40
"""Staged values must be below this (larger ones are merged one by one, in Python ints)."""
MAX_DELTAS = 1 << 16
"""Deltas staged before a fold is forced: 2**16 * 2**40 stays far below 2**63."""
MAX_ROWS = 1024
"""Entries staged at once (a row is NUM_BUCKETS int64: 34 KiB); more force a fold."""
PENDING_MAX = 64
"""Deltas whose arithmetic waits, to be done at once (a fold does it sooner)."""
SEC_RING = 128
"""Per-second columns, indexed by second modulo this; staged seconds span less."""
_NO_MIN = np.iinfo(np.int64).max


class StagedEntry(Protocol):
    """What the stage needs of an entry (MergedEntry and the total satisfy it)."""

    row: int
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
    """Dense int64 accumulators for up to :data:`MAX_ROWS` entries; fold to read them."""

    _hist: Any
    _sums: Any
    _min: Any
    _max: Any
    _req: Any
    _fail: Any

    def __init__(self) -> None:
        """Create an empty stage (arrays grow with the rows in use)."""
        self._cap = 0
        self._alloc(64)
        self._entries: list[Any] = []
        self._ring = np.zeros(NUM_BUCKETS, dtype=np.int64)
        self._ring_total = 0
        self.ring_sec: int | None = None
        self._sec_lo: int | None = None
        self._sec_hi: int | None = None
        self.deltas = 0
        self.generation = 0
        """Bumped by :meth:`release`: row numbers handed out before are void."""
        self._pending: list[tuple[list[int], EntryColumns, Any, Any]] = []

    def _alloc(self, cap: int) -> None:
        old = self._cap
        new_hist = np.zeros((cap, NUM_BUCKETS), dtype=np.int64)
        new_sums = np.zeros((cap, 5), dtype=np.int64)
        new_min = np.full(cap, _NO_MIN, dtype=np.int64)
        new_max = np.zeros(cap, dtype=np.int64)
        new_req = np.zeros((cap, SEC_RING), dtype=np.int64)
        new_fail = np.zeros((cap, SEC_RING), dtype=np.int64)
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

    def rows_for(self, entries: list[Any]) -> list[int] | None:
        """Staging rows of ``entries``, assigned on first use; None when rows run out.

        Rows stay assigned across folds, so callers may keep the list while
        :attr:`generation` is unchanged; :meth:`release` frees them all.
        """
        rows = []
        staged = self._entries
        for entry in entries:
            row = entry.row
            if row < 0:
                row = len(staged)
                if row >= MAX_ROWS:
                    return None
                if row >= self._cap:
                    self._alloc(min(MAX_ROWS, 2 * self._cap))
                entry.row = row
                staged.append(entry)
            rows.append(row)
        return rows

    def release(self) -> None:
        """Fold first: free every row (a new :attr:`generation` of row numbers begins)."""
        self._apply()
        for entry in self._entries:
            entry.row = -1
        self._entries = []
        self.generation += 1

    def add(
        self, rows: list[int], cols: EntryColumns, ring_sec: int, lo: int, hi: int
    ) -> tuple[int, int] | None:
        """Stage one delta whose entries have ``rows`` (from :meth:`rows_for`); return the span.

        Returns (earliest, latest) second of its per-second counts (0, -1 when it has
        none), or None when the stage is full or the receive second moved on: fold, then
        add again. Per-second counts outside ``[lo, hi]`` are dropped. The arithmetic
        waits for :data:`PENDING_MAX` deltas (or a fold) and is done for them all at once.
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
        """Add the pending deltas into the arrays, a few numpy calls for all of them."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        rows: list[int] = []
        pair_rows, triple_rows = [], []
        for entry_rows, cols, _, trows in pending:
            offset = len(rows)
            rows += entry_rows
            pair_rows.append(cols.pair_rows + offset)
            triple_rows.append(trows + offset)
        cat = np.concatenate
        r = np.array(rows, dtype=np.int64)
        sc = cat([p[1].scalars for p in pending], axis=1)  # nreq, nnone, nfail, rt, max, len
        # 1-D np.add.at is ten times faster than on index tuples or rows of a 2-D array
        for column, field in enumerate((0, 1, 2, 3, 5)):
            np.add.at(self._sums[:, column], r, sc[field])
        np.maximum.at(self._max, r, sc[4])
        lows = cat([p[1].min_rt_us for p in pending])
        np.minimum.at(self._min, r, np.where(lows < 0, _NO_MIN, lows))
        pairs = cat([p[1].pairs for p in pending])
        if len(pairs):
            idx, counts = pairs[:, 0], pairs[:, 1]
            np.add.at(self._hist.reshape(-1), r[cat(pair_rows)] * NUM_BUCKETS + idx, counts)
            np.add.at(self._ring, idx, counts)
            self._ring_total += int(sc[0].sum() - sc[1].sum())
        triples = cat([p[2] for p in pending])
        if len(triples):
            cells = r[cat(triple_rows)] * SEC_RING + triples[:, 0] % SEC_RING
            np.add.at(self._req.reshape(-1), cells, triples[:, 1])
            np.add.at(self._fail.reshape(-1), cells, triples[:, 2])

    def fold(self, total: StagedEntry, ring: Histogram | None) -> None:
        """Add everything staged into the entries, ``total`` and ``ring``; empty the stage.

        ``ring`` is the total histogram of :attr:`ring_sec` (None: its counts are dropped,
        e.g. after a reset).
        """
        self._apply()
        n = len(self._entries)
        if n:
            self._fold_counters(n, total)
            self._fold_hist(n)
            self._fold_seconds(n, total)
        if ring is not None and self._ring_total:
            idx = np.flatnonzero(self._ring)
            counts = ring.counts
            get = counts.get
            for i, c in zip(idx.tolist(), self._ring[idx].tolist(), strict=True):
                counts[i] = get(i, 0) + c
            ring.total += self._ring_total
        self._ring[:] = 0
        self._ring_total = 0
        self.ring_sec = None
        self._sec_lo = self._sec_hi = None
        self.deltas = 0

    def _fold_counters(self, n: int, total: StagedEntry) -> None:
        sums = self._sums[:n].tolist()
        mins = self._min[:n].tolist()
        maxs = self._max[:n].tolist()
        t_min = total.min_rt_us
        t_max = total.max_rt_us
        for entry, (nreq, nnone, nfail, rt, length), low, high in zip(
            self._entries, sums, mins, maxs, strict=True
        ):
            entry.num_requests += nreq
            entry.num_none_requests += nnone
            entry.num_failures += nfail
            entry.total_rt_us += rt
            entry.total_content_length += length
            if low != _NO_MIN:
                if entry.min_rt_us is None or low < entry.min_rt_us:
                    entry.min_rt_us = low
                if t_min is None or low < t_min:
                    t_min = low
            entry.max_rt_us = max(entry.max_rt_us, high)
            t_max = max(t_max, high)
        nreq, nnone, nfail, rt, length = self._sums[:n].sum(axis=0).tolist()
        total.num_requests += nreq
        total.num_none_requests += nnone
        total.num_failures += nfail
        total.total_rt_us += rt
        total.total_content_length += length
        total.min_rt_us, total.max_rt_us = t_min, t_max
        self._sums[:n] = 0
        self._min[:n] = _NO_MIN
        self._max[:n] = 0

    def _fold_hist(self, n: int) -> None:
        flat = self._hist[:n].reshape(-1)  # a view: the rows are contiguous
        cells = np.flatnonzero(flat)  # one pass over the rows, not three
        adds = flat[cells].tolist()
        flat[cells] = 0
        rows = cells // NUM_BUCKETS
        keys = (cells - rows * NUM_BUCKETS).tolist()
        bounds = np.searchsorted(rows, np.arange(n + 1)).tolist()
        for entry, lo, hi in zip(self._entries, bounds, bounds[1:], strict=False):
            if lo == hi:
                continue
            hist = entry.hist
            counts = hist.counts
            ks, vs = keys[lo:hi], adds[lo:hi]  # the dict is updated by C loops
            counts.update(zip(ks, map(add, map(counts.get, ks, repeat(0)), vs), strict=True))
            hist.total += sum(vs)

    def _fold_seconds(self, n: int, total: StagedEntry) -> None:
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
                target = getattr(total, name)
                target[sec] = target.get(sec, 0) + int(column.sum())
                column[nz] = 0
