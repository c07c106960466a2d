"""Stats entries as columns: the one form every wire form of request figures decodes to.

Responsibility: :class:`EntryColumns` (a report's entries as int64 numpy arrays, or object
arrays of Python ints when a value does not fit int64) and the one set of entry rules every
horde entry passes, checked on whole arrays for a whole batch of deltas at once
(:func:`check_entries`): no negative number, bucket indices below ``NUM_BUCKETS``, bucket
counts adding up to ``num_requests - num_none_requests``, a minimum exactly when there are
timed requests and never above the maximum, and each entry's pair and triple counts
matching the numbers given. Also cuts validated batches into one :class:`EntryColumns` per
report (:func:`split_columns`) and keeps some of a report's entries (:func:`select`).

The entry rows: ``entry_id, num_requests, num_none_requests, num_failures, total_rt_us,
min_rt_us (-1: none), max_rt_us, total_content_length, n_pairs, n_triples``.

Imports: the standard library and :mod:`horde.protocol` (errors, histogram); numpy on
first use only, so workers never load it.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import accumulate, pairwise
from typing import Any, NamedTuple

from horde.protocol.errors import ProtocolError
from horde.protocol.histogram import NUM_BUCKETS

__all__ = [
    "ENTRY_COLS",
    "LAST_IS_TOTAL",
    "NO_TOTAL",
    "SUM_TOTAL",
    "EntryColumns",
    "check_entries",
    "int_array",
    "numpy",
    "select",
    "split_columns",
]

SUM_TOTAL = 0
"""The total is the sum of the entries (horde deltas)."""
LAST_IS_TOTAL = 1
"""The last row is the total, the others feed only their entries (Locust's ``stats_total``)."""
NO_TOTAL = 2
"""The rows feed only their entries (part of a Locust report cut in pieces)."""
ENTRY_COLS = 10
"""Numbers per entry row (see the module docstring)."""

_np: Any = None


def numpy() -> Any:
    """numpy, imported on first use (only a master decoding stats needs it)."""
    global _np  # noqa: PLW0603 - a lazy import, set once
    if _np is None:
        import numpy as np

        _np = np
    return _np


def int_array(values: Sequence[int]) -> Any:
    """``values`` as an int64 array, or as an object array of Python ints beyond int64."""
    np = numpy()
    try:
        return np.frombuffer(array("q", values), dtype=np.int64)
    except OverflowError:
        return np.array(list(values), dtype=object)


class EntryColumns(NamedTuple):
    """A validated report's entries column by column, to merge at once.

    ``scalars`` has one row per field (num_requests, num_none_requests, num_failures,
    total_rt_us, max_rt_us, total_content_length) and one column per entry; ``min_rt_us``
    holds -1 where the entry has none. ``pairs`` (n x 2) and ``triples`` (n x 3) are every
    entry's (histogram idx, count) pairs and (second, requests, failures) triples end to
    end; ``pair_rows`` and ``triple_rows`` give the entry (0-based position) of each. The
    arrays are int64, or object arrays when a value does not fit (see :attr:`peak`).
    """

    entry_id: tuple[int, ...]
    scalars: Any
    min_rt_us: Any
    pairs: Any
    pair_rows: Any
    triples: Any
    triple_rows: Any
    peak: int
    """No number in the entries is larger (staging in int64 needs them all small)."""
    first_sec: int
    """The earliest second of ``triples`` (0 when there are none)."""
    last_sec: int
    """The latest second of ``triples`` (-1 when there are none)."""
    total: int = SUM_TOTAL
    """How the rows feed the total: :data:`SUM_TOTAL`, :data:`LAST_IS_TOTAL` or :data:`NO_TOTAL`."""

    @property
    def n_rows(self) -> int:
        """Number of entry rows."""
        return len(self.min_rt_us)


def _bad(what: str, reason: str = "field") -> ProtocolError:
    return ProtocolError(f"stats payload: bad entries: {what}", reason=reason)


def check_entries(
    cols: Any, pairs: Any, triples: Any, bounds: list[int], lengths: list[tuple[int, int]]
) -> None:
    """Raise :class:`ProtocolError` unless a batch of entries keeps every entry rule.

    ``cols`` (n x 10), ``pairs`` (m x 2) and ``triples`` (k x 3) are the batch's reports
    end to end; report ``r`` holds rows ``bounds[r]:bounds[r + 1]`` and
    ``lengths[r]`` = (its pairs, its triples). A few dozen numpy calls for the whole batch.
    """
    np = numpy()
    _check_counts(np, cols, bounds, lengths)
    if len(pairs) and (pairs.min() < 0 or pairs[:, 0].max() >= NUM_BUCKETS):
        raise _bad("bucket index or count")
    if len(triples) and triples.min() < 0:
        raise _bad("negative per-second count")
    n_pairs = cols[:, 8].astype(np.int64)  # no more than the pairs given (checked above)
    lows, nreq, nnone, high = cols[:, 5], cols[:, 1], cols[:, 2], cols[:, 6]
    pair_ends = np.cumsum(n_pairs)
    running = np.concatenate(([0], np.cumsum(pairs[:, 1])))
    if ((running[pair_ends] - running[pair_ends - n_pairs]) != nreq - nnone).any():
        raise _bad("bucket counts do not add up to the timed requests")
    has_low = lows >= 0
    if (has_low != (nreq > nnone)).any() or (has_low & (high < lows)).any():
        raise _bad("min/max")


def _check_counts(np: Any, cols: Any, bounds: list[int], lengths: list[tuple[int, int]]) -> None:
    """No negative column, and each report's pair and triple counts match its own arrays."""
    if not len(cols):
        return
    low = cols.min()
    if low < 0 and (low < -1 or np.count_nonzero(cols < 0) != np.count_nonzero(cols[:, 5] < 0)):
        raise _bad("negative number")  # only min_rt_us may be negative: -1, none
    for column, sizes in ((8, [p for p, _ in lengths]), (9, [t for _, t in lengths])):
        counts = cols[:, column]
        if counts.max() > sum(sizes):  # so no sum below can wrap around
            raise _bad("pair or triple counts do not match", "shape")
        claimed = np.concatenate(([0], np.cumsum(counts)))[bounds].tolist()
        if claimed != [0, *accumulate(sizes)]:
            raise _bad("pair or triple counts do not match", "shape")


def split_columns(
    cols: Any, pairs: Any, triples: Any, bounds: list[int], total: int = SUM_TOTAL
) -> list[EntryColumns]:
    """Cut a checked batch (as for :func:`check_entries`) into one :class:`EntryColumns` each."""
    np = numpy()
    n_reports = len(bounds) - 1
    sizes = [hi - lo for lo, hi in pairwise(bounds)]
    local = np.arange(len(cols))
    if n_reports > 1:
        local -= np.repeat(bounds[:-1], sizes)
    pair_rows = np.repeat(local, cols[:, 8].astype(np.int64))
    triple_rows = np.repeat(local, cols[:, 9].astype(np.int64))
    scalars = np.ascontiguousarray(cols[:, [1, 2, 3, 4, 6, 7]].T)
    lows = np.ascontiguousarray(cols[:, 5])
    ids = cols[:, 0].tolist()
    p_ends = np.concatenate(([0], np.cumsum(cols[:, 8])))[bounds].tolist()
    t_ends = np.concatenate(([0], np.cumsum(cols[:, 9])))[bounds].tolist()
    secs = np.ascontiguousarray(triples[:, 0])
    firsts = _segments(np.minimum, secs, t_ends)
    lasts = _segments(np.maximum, secs, t_ends)
    peak = _peak(cols, pairs, triples)
    out = []
    for k in range(n_reports):
        s, e = bounds[k], bounds[k + 1]
        p, p_end, t, t_end = p_ends[k], p_ends[k + 1], t_ends[k], t_ends[k + 1]
        if peak < _SMALL or n_reports == 1:  # the batch's bound will do for each report
            one = peak
        else:
            one = _peak(cols[s:e], pairs[p:p_end], triples[t:t_end])
        out.append(
            EntryColumns(
                tuple(ids[s:e]),
                scalars[:, s:e],
                lows[s:e],
                pairs[p:p_end],
                pair_rows[p:p_end],
                triples[t:t_end],
                triple_rows[t:t_end],
                one,
                0 if (first := firsts[k]) is None else first,
                -1 if (last := lasts[k]) is None else last,
                total,
            )
        )
    return out


_SMALL = 1 << 40


def _peak(cols: Any, pairs: Any, triples: Any) -> int:
    """The largest number of an entry batch (0 when empty)."""
    return int(max([0, *(a.max() for a in (cols, pairs, triples) if len(a))]))


def _segments(ufunc: Any, values: Any, ends: list[int]) -> list[int | None]:
    """``ufunc`` reduced over ``values[ends[k]:ends[k + 1]]`` (None for an empty one)."""
    out: list[int | None] = [None] * (len(ends) - 1)
    starts, nonempty = [], []
    for k, (lo, hi) in enumerate(pairwise(ends)):
        if hi > lo:
            starts.append(lo)
            nonempty.append(k)
    if starts:
        for k, v in zip(nonempty, ufunc.reduceat(values, starts).tolist(), strict=True):
            out[k] = v
    return out


def select(cols: EntryColumns, keep: Any, total: int) -> EntryColumns:
    """The columns of the rows ``keep`` (a bool array) marks, feeding the total as ``total``."""
    np = numpy()
    rows = np.flatnonzero(keep)
    renumber = np.full(cols.n_rows, -1, dtype=np.int64)
    renumber[rows] = np.arange(len(rows))
    pair_keep = keep[cols.pair_rows]
    triple_keep = keep[cols.triple_rows]
    triples = cols.triples[triple_keep]
    secs = triples[:, 0]
    return EntryColumns(
        tuple(cols.entry_id[r] for r in rows.tolist()) if cols.entry_id else (),
        cols.scalars[:, rows],
        cols.min_rt_us[rows],
        cols.pairs[pair_keep],
        renumber[cols.pair_rows[pair_keep]],
        triples,
        renumber[cols.triple_rows[triple_keep]],
        cols.peak,
        int(secs.min()) if len(secs) else 0,
        int(secs.max()) if len(secs) else -1,
        total,
    )
