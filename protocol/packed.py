"""The packed form of a ``horde.stats`` delta's entries: three int64 blobs instead of lists.

Responsibility: encode a delta's entries as packed little-endian int64 columns (worker side,
standard library only) and decode and validate them as numpy arrays (master side) without
creating a Python object per number. A 100-entry delta holds about 5,000 numbers; as
msgpack lists, unpacking them and checking them one by one costs the master about a
millisecond per delta, more than a core at 5,000 workers. As blobs, unpacking is a copy and
every check is a whole-array operation.

Wire form, under the delta's ``packed`` key (its ``entries`` list is then empty)::

    [cols, pairs, triples]

- ``cols``: 10 int64 per entry: ``entry_id, num_requests, num_none_requests, num_failures,
  total_rt_us, min_rt_us (-1: none), max_rt_us, total_content_length, n_pairs, n_triples``.
- ``pairs``: every entry's ``(histogram idx, count)`` pairs, end to end (``n_pairs`` each).
- ``triples``: every entry's ``(unix second, requests, failures)``, end to end.

The rules are the list form's (``EntryDelta.from_wire``): no negative number, bucket
indices below ``NUM_BUCKETS``, bucket counts adding up to ``num_requests -
num_none_requests``, a minimum exactly when there are timed requests and never above the
maximum; plus one of the packed form's own: a bucket count is below 2**40, so no sum of
them can overflow. Anything else raises :class:`ProtocolError`.

Imports: the standard library and :mod:`horde.protocol` (errors, histogram); numpy on the
first decode only, so workers never load it.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator, Sequence
from itertools import accumulate, pairwise
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from horde.protocol.errors import ProtocolError
from horde.protocol.histogram import NUM_BUCKETS

if TYPE_CHECKING:
    from horde.protocol.stats import EntryDelta

__all__ = [
    "PACKED_KEY",
    "EntryColumns",
    "PackedEntries",
    "pack_entries",
    "unpack_entries",
    "unpack_entries_many",
]

PACKED_KEY = "packed"
"""The delta key holding ``[cols, pairs, triples]``."""
MAX_BUCKET_COUNT = 1 << 40
"""A packed bucket count must be below this (no int64 sum of them can overflow)."""
_COLS = 10
_LITTLE = sys.byteorder == "little"
_np: Any = None


def _numpy() -> Any:
    """numpy, imported on first use (only a master decoding deltas needs it)."""
    global _np  # noqa: PLW0603 - a lazy import, set once
    if _np is None:
        import numpy

        _np = numpy
    return _np


class EntryColumns(NamedTuple):
    """A validated delta's entries column by column, as int64 numpy arrays, to merge at once.

    ``scalars`` has one row per field (num_requests, num_none_requests, num_failures,
    total_rt_us, max_rt_us, total_content_length) and one column per entry; ``min_rt_us``
    holds -1 where the entry has none. ``pairs`` (n x 2) and ``triples`` (n x 3) are every
    entry's bucket pairs and per-second triples end to end; ``pair_rows`` and
    ``triple_rows`` give the entry (0-based position in the delta) of each.
    """

    entry_id: tuple[int, ...]
    scalars: Any
    min_rt_us: Any
    pairs: Any
    pair_rows: Any
    triples: Any
    triple_rows: Any
    peak: int
    """No number in the entries is larger (staging needs them all small)."""
    first_sec: int
    """The earliest second of ``triples`` (0 when there are none)."""
    last_sec: int
    """The latest second of ``triples`` (-1 when there are none)."""


def _blob(values: list[int]) -> bytes:
    data = array("q", values)
    if not _LITTLE:
        data.byteswap()
    return data.tobytes()


def pack_entries(entries: Sequence[EntryDelta]) -> list[bytes] | None:
    """Return the packed ``[cols, pairs, triples]`` of ``entries``; None if they cannot be.

    Entries with unknown trailing items, or numbers beyond int64, stay in the list form.
    """
    cols: list[int] = []
    pairs: list[int] = []
    triples: list[int] = []
    for e in entries:
        if e.extra:
            return None
        low = e.min_rt_us
        cols += (
            e.entry_id,
            e.num_requests,
            e.num_none_requests,
            e.num_failures,
            e.total_rt_us,
            -1 if low is None else low,
            e.max_rt_us,
            e.total_content_length,
            len(e.buckets) >> 1,
            len(e.per_sec) // 3,
        )
        pairs += e.buckets
        triples += e.per_sec
    try:
        return [_blob(cols), _blob(pairs), _blob(triples)]
    except OverflowError:
        return None


def _bad(what: str, reason: str = "field") -> ProtocolError:
    return ProtocolError(f"stats payload: bad packed entries: {what}", reason=reason)


def _arrays(packed: object) -> tuple[Any, Any, Any]:
    """The three blobs as int64 arrays (cols n x 10, pairs m x 2, triples k x 3)."""
    if type(packed) is not list and type(packed) is not tuple:
        raise _bad("not a list", "shape")
    if len(packed) != 3 or not all(type(b) is bytes for b in packed):
        raise _bad("not three byte strings", "shape")
    cols, pairs, triples = packed
    if len(cols) % (8 * _COLS) or len(pairs) % 16 or len(triples) % 24:
        raise _bad("blob lengths", "shape")
    np = _numpy()
    i8 = np.dtype("<i8")
    return (
        np.frombuffer(cols, dtype=i8).reshape(-1, _COLS),
        np.frombuffer(pairs, dtype=i8).reshape(-1, 2),
        np.frombuffer(triples, dtype=i8).reshape(-1, 3),
    )


def unpack_entries(packed: object) -> PackedEntries:
    """Validate the ``packed`` value of one delta; raise :class:`ProtocolError` otherwise."""
    result = unpack_entries_many([packed])[0]
    if isinstance(result, ProtocolError):
        raise result
    return result


def unpack_entries_many(values: Sequence[object]) -> list[PackedEntries | ProtocolError]:
    """Validate the ``packed`` values of several deltas: each one's entries, or its error.

    The checks run once over all the blobs end to end, a few dozen numpy calls for the
    whole batch rather than for each delta. When any check fails, each delta is checked on
    its own, so every good delta still decodes and each bad one gets its own error.
    """
    out: list[PackedEntries | ProtocolError | None] = []
    group: list[_Blobs] = []
    for value in values:
        try:
            group.append(_Blobs(len(out), *_arrays(value)))
            out.append(None)
        except ProtocolError as exc:
            out.append(exc)
    try:
        for blobs, entries in zip(group, _validate(group), strict=True):
            out[blobs.position] = entries
    except ProtocolError as exc:
        if len(group) == 1:
            out[group[0].position] = exc
        else:
            for blobs in group:
                try:
                    out[blobs.position] = _validate([blobs])[0]
                except ProtocolError as one:
                    out[blobs.position] = one
    return out  # type: ignore[return-value]  # every None was replaced


class _Blobs(NamedTuple):
    position: int
    cols: Any
    pairs: Any
    triples: Any


def _validate(group: list[_Blobs]) -> list[PackedEntries]:
    """The entries of every delta in ``group``; raise on the first rule any of them breaks."""
    if not group:
        return []
    np = _numpy()
    if len(group) == 1:
        batch = group[0][1:]
    else:
        batch = tuple(np.concatenate([g[k] for g in group]) for k in (1, 2, 3))
    cols, pairs, triples = batch
    bounds = [0, *accumulate(len(g.cols) for g in group)]
    _check_counts(np, group, cols, bounds)
    if len(pairs) and (
        pairs.min() < 0 or pairs[:, 0].max() >= NUM_BUCKETS or pairs[:, 1].max() >= MAX_BUCKET_COUNT
    ):
        raise _bad("bucket index or count")
    if len(triples) and triples.min() < 0:
        raise _bad("negative per-second count")
    n_pairs, lows, nreq, nnone, high = cols[:, 8], cols[:, 5], cols[:, 1], cols[:, 2], cols[:, 6]
    pair_ends = np.cumsum(n_pairs)
    running = np.concatenate(([0], np.cumsum(pairs[:, 1])))
    if ((running[pair_ends] - running[pair_ends - n_pairs]) != nreq - nnone).any():
        raise _bad("bucket counts do not add up to the timed requests")
    has_low = lows >= 0
    if (has_low != (nreq > nnone)).any() or (has_low & (high < lows)).any():
        raise _bad("min/max")
    return _split(np, group, batch, bounds)


def _check_counts(np: Any, group: list[_Blobs], cols: Any, bounds: list[int]) -> None:
    """No negative column, and each delta's pair and triple counts match its own blobs."""
    if not len(cols):
        return
    low = cols.min()
    if low < 0 and (low < -1 or np.count_nonzero(cols < 0) != np.count_nonzero(cols[:, 5] < 0)):
        raise _bad("negative number")  # only min_rt_us may be negative: -1, none
    for column, blobs in ((8, [g.pairs for g in group]), (9, [g.triples for g in group])):
        counts = cols[:, column]
        lengths = [len(b) for b in blobs]
        if counts.max() > sum(lengths):  # so no sum below can wrap around
            raise _bad("pair or triple counts do not match the blobs", "shape")
        claimed = np.concatenate(([0], np.cumsum(counts)))[bounds].tolist()
        if claimed != [0, *accumulate(lengths)]:
            raise _bad("pair or triple counts do not match the blobs", "shape")


def _split(
    np: Any, group: list[_Blobs], batch: tuple[Any, Any, Any], bounds: list[int]
) -> list[PackedEntries]:
    """Cut the validated columns of a batch back into one :class:`PackedEntries` a delta."""
    cols, pairs, triples = batch
    sizes = [hi - lo for lo, hi in pairwise(bounds)]
    local = np.arange(len(cols))
    if len(group) > 1:
        local -= np.repeat(bounds[:-1], sizes)
    pair_rows, triple_rows = np.repeat(local, cols[:, 8]), np.repeat(local, cols[:, 9])
    scalars = np.ascontiguousarray(cols[:, [1, 2, 3, 4, 6, 7]].T)
    lows = np.ascontiguousarray(cols[:, 5])
    ids = cols[:, 0].tolist()
    t_sizes = [len(g.triples) for g in group]
    peak = max(int(cols.max()) if len(cols) else 0, int(triples.max()) if len(triples) else 0)
    if peak < MAX_BUCKET_COUNT:  # the batch's bound will do for each of its deltas
        peaks = [peak] * len(group)
    else:
        peaks = [max([0, *(int(a.max()) for a in (g.cols, g.triples) if len(a))]) for g in group]
    secs = np.ascontiguousarray(triples[:, 0])
    firsts = _segments(np.minimum, secs, t_sizes)
    lasts = _segments(np.maximum, secs, t_sizes)
    out = []
    p = t = 0
    for k, g in enumerate(group):
        s, e = bounds[k], bounds[k + 1]
        p_end, t_end = p + len(g.pairs), t + len(g.triples)
        columns = EntryColumns(
            tuple(ids[s:e]),
            scalars[:, s:e],
            lows[s:e],
            pairs[p:p_end],
            pair_rows[p:p_end],
            triples[t:t_end],
            triple_rows[t:t_end],
            peaks[k],
            0 if (first := firsts[k]) is None else first,
            -1 if (last := lasts[k]) is None else last,
        )
        out.append(PackedEntries(columns, g.cols))
        p, t = p_end, t_end
    return out


def _segments(ufunc: Any, values: Any, sizes: list[int]) -> list[int | None]:
    """``ufunc`` reduced over consecutive segments of ``values`` (None for an empty one)."""
    out: list[int | None] = [None] * len(sizes)
    starts, nonempty = [], []
    pos = 0
    for k, size in enumerate(sizes):
        if size:
            starts.append(pos)
            nonempty.append(k)
        pos += size
    if starts:
        for k, v in zip(nonempty, ufunc.reduceat(values, starts).tolist(), strict=True):
            out[k] = v
    return out


class PackedEntries(Sequence["EntryDelta"]):
    """A decoded delta's entries, kept as arrays; :class:`EntryDelta` objects on demand.

    The master merges :attr:`columns` at once; iterating, indexing or comparing builds the
    ``EntryDelta`` tuples (once) for the code that wants them one by one.
    """

    __slots__ = ("_cols", "_items", "columns")

    def __init__(self, columns: EntryColumns, cols: Any) -> None:
        """Wrap validated columns (and the raw n x 10 ``cols`` array they came from)."""
        self.columns = columns
        self._cols = cols
        self._items: tuple[EntryDelta, ...] | None = None

    def _materialize(self) -> tuple[EntryDelta, ...]:
        if self._items is None:
            from horde.protocol.stats import EntryDelta

            c = self.columns
            pairs = c.pairs.ravel().tolist()
            triples = c.triples.ravel().tolist()
            items = []
            p = t = 0
            for row in self._cols.tolist():
                eid, nreq, nnone, nfail, total, low, high, length, np_, nt = row
                items.append(
                    EntryDelta(
                        eid,
                        nreq,
                        nnone,
                        nfail,
                        total,
                        None if low < 0 else low,
                        high,
                        length,
                        tuple(pairs[p : p + 2 * np_]),
                        tuple(triples[t : t + 3 * nt]),
                    )
                )
                p += 2 * np_
                t += 3 * nt
            self._items = tuple(items)
        return self._items

    def __len__(self) -> int:
        """Number of entries (no materializing)."""
        return len(self._cols)

    @overload
    def __getitem__(self, index: int) -> EntryDelta: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[EntryDelta, ...]: ...

    def __getitem__(self, index: int | slice) -> EntryDelta | tuple[EntryDelta, ...]:
        """The entry (or entries) at ``index``."""
        return self._materialize()[index]

    def __iter__(self) -> Iterator[EntryDelta]:
        """The entries in order."""
        return iter(self._materialize())

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence holding the same entries."""
        if not isinstance(other, Sequence):
            return NotImplemented
        return self._materialize() == tuple(other)

    __hash__ = None  # type: ignore[assignment]  # compared by value, like the tuple it stands for

    def __repr__(self) -> str:
        """A short representation."""
        return f"PackedEntries({len(self)} entries)"

    def request_count(self) -> int:
        """The entries' total ``num_requests`` (no materializing)."""
        return int(self.columns.scalars[0].sum())
