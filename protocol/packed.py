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

The rules are every entry's (:func:`horde.protocol.columns.check_entries`), plus one of
the packed form's own: a bucket count is below 2**40, so no sum of them can overflow.
Anything else raises :class:`ProtocolError`.

Imports: the standard library and :mod:`horde.protocol` (columns, errors, lazyseq); numpy on the
first decode only, so workers never load it.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from itertools import accumulate
from typing import TYPE_CHECKING, Any, NamedTuple

from horde.protocol.columns import ENTRY_COLS as _COLS
from horde.protocol.columns import EntryColumns, check_entries, numpy, split_columns
from horde.protocol.errors import ProtocolError
from horde.protocol.lazyseq import LazySequence

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
_LITTLE = sys.byteorder == "little"


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
    return ProtocolError(f"stats payload: bad entries: {what}", reason=reason)


def _arrays(packed: object) -> tuple[Any, Any, Any]:
    """The three blobs as int64 arrays (cols n x 10, pairs m x 2, triples k x 3)."""
    if type(packed) is not list and type(packed) is not tuple:
        raise _bad("not a list", "shape")
    if len(packed) != 3 or not all(type(b) is bytes for b in packed):
        raise _bad("not three byte strings", "shape")
    cols, pairs, triples = packed
    if len(cols) % (8 * _COLS) or len(pairs) % 16 or len(triples) % 24:
        raise _bad("blob lengths", "shape")
    np = numpy()
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
    np = numpy()
    if len(group) == 1:
        cols, pairs, triples = group[0][1:]
    else:
        cols, pairs, triples = (np.concatenate([g[k] for g in group]) for k in (1, 2, 3))
    bounds = [0, *accumulate(len(g.cols) for g in group)]
    if len(pairs) and pairs[:, 1].max() >= MAX_BUCKET_COUNT:
        raise _bad("bucket index or count")
    check_entries(cols, pairs, triples, bounds, [(len(g.pairs), len(g.triples)) for g in group])
    columns = split_columns(cols, pairs, triples, bounds)
    return [PackedEntries(c, g.cols) for c, g in zip(columns, group, strict=True)]


class PackedEntries(LazySequence["EntryDelta"]):
    """A decoded delta's entries, kept as arrays; :class:`EntryDelta` objects on demand.

    The master merges :attr:`columns` at once; iterating, indexing or comparing builds the
    ``EntryDelta`` tuples (once) for the code that wants them one by one.
    """

    __slots__ = ("_cols", "columns")

    def __init__(self, columns: EntryColumns, cols: Any) -> None:
        """Wrap validated columns (and the raw n x 10 ``cols`` array they came from)."""
        super().__init__()
        self.columns = columns
        self._cols = cols

    def _build(self) -> tuple[EntryDelta, ...]:
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
        return tuple(items)

    def __len__(self) -> int:
        """Number of entries (no materializing)."""
        return len(self._cols)

    def request_count(self) -> int:
        """The entries' total ``num_requests`` (no materializing)."""
        return int(self.columns.scalars[0].sum())
