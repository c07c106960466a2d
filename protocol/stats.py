"""horde's stats payload: the compact ``horde.stats`` delta and its entries and errors.

Responsibility: declare horde's stats payload once, convert it to and from wire values
(msgpack-ready dicts and lists) and validate what arrives. ``from_wire`` accepts any object
and either returns a valid payload or raises :class:`ProtocolError`; it raises nothing else.
Listed entries are checked and decoded to :class:`EntryColumns` all at once, with the same
rules as packed ones (:func:`horde.protocol.columns.check_entries`). Unknown keys of a dict
payload are kept in ``extra`` (unknown trailing items of a list payload in ``extra`` too)
and are written back by ``to_wire``. Also the value checks Locust's report shares.

Imports: the standard library and :mod:`horde.protocol` (columns, errors, fields, packed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, repeat
from math import isfinite
from typing import Any, NamedTuple, NoReturn

from horde.protocol.columns import EntryColumns, check_entries, int_array, split_columns
from horde.protocol.errors import ProtocolError
from horde.protocol.fields import (
    as_count,
    as_counts,
    as_map,
    as_str,
    extra_keys,
    merge_extra,
    require_keys,
)
from horde.protocol.packed import PACKED_KEY, PackedEntries, pack_entries, unpack_entries

__all__ = [
    "EntryColumns",
    "EntryDelta",
    "ErrorDelta",
    "HordeStatsDelta",
    "bad_value",
    "entries_from_wire",
    "entry_columns",
    "number",
    "opt_number",
    "sequence",
]

_SEQ_TYPES = (list, tuple)


# --- validation helpers ------------------------------------------------------------------


def bad_value(what: str, value: object, reason: str = "type") -> NoReturn:
    """Raise the ProtocolError for field ``what`` holding an unusable ``value``."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise ProtocolError(f"stats payload: bad {what}: {shown}", reason=reason)


def number(value: object, what: str) -> float:
    """Return ``value`` unchanged if it is a finite non-negative int or float."""
    if type(value) is int:
        if value >= 0:
            return value
    elif type(value) is float and isfinite(value) and value >= 0:
        return value
    bad_value(what, value)


def opt_number(value: object, what: str) -> float | None:
    """Return ``value`` if it is None or a valid :func:`number`."""
    return None if value is None else number(value, what)


def sequence(value: object, what: str) -> list[Any] | tuple[Any, ...]:
    """Return ``value`` if it is a list or tuple."""
    if type(value) not in _SEQ_TYPES:
        bad_value(what, value, "shape")
    return value  # type: ignore[return-value]  # checked just above


# --- horde.stats -------------------------------------------------------------------------


class EntryDelta(NamedTuple):
    """One interned request entry's activity since the previous delta (times in µs).

    A NamedTuple rather than a frozen dataclass: the master builds ~170,000 of these a second
    and tuple construction costs a quarter of a dataclass ``__init__``. Wire form: the list
    ``[entry_id, num_requests, num_none_requests, num_failures, total_rt_us, min_rt_us|nil,
    max_rt_us, total_content_length, buckets, per_sec, *extra]``. ``buckets`` is flat
    ``[histogram idx, count, ...]``; ``per_sec`` is flat ``[unix_second, requests,
    failures, ...]``.
    """

    entry_id: int
    num_requests: int
    num_none_requests: int
    num_failures: int
    total_rt_us: int
    min_rt_us: int | None
    max_rt_us: int
    total_content_length: int
    buckets: tuple[int, ...]
    per_sec: tuple[int, ...]
    extra: tuple[Any, ...] = ()

    def to_wire(self) -> list[Any]:
        """Return the compact wire list."""
        return [*self[:8], list(self.buckets), list(self.per_sec), *self.extra]

    @classmethod
    def from_wire(cls, data: object) -> EntryDelta:
        """Validate one wire list by the rules of every entry (:func:`entries_from_wire`)."""
        return entries_from_wire([data])[0][0]


_new_entry = partial(tuple.__new__, EntryDelta)
_LIST_TYPES = frozenset((list, tuple))
_INT_TYPE = frozenset((int,))
_LOW_TYPES = frozenset((int, type(None)))
_PAIR_TYPES = frozenset((int, bool))  # a bool counts as an int in bucket pairs, as ever


def entries_from_wire(data: Sequence[Any]) -> tuple[tuple[EntryDelta, ...], EntryColumns | None]:
    """Validate a delta's listed entries all at once; return them and their columns.

    The checks are whole-column operations (:func:`horde.protocol.columns.check_entries`);
    when one fails, each entry is checked on its own, so the error raised names the first
    bad entry. Values beyond int64 stay Python ints (object arrays). No entries: no columns.
    """
    if not data:
        return (), None
    try:
        columns = _checked(data)
    except ProtocolError:
        for entry in data if len(data) > 1 else ():
            _checked([entry])  # raises the first bad entry's own error
        raise
    cols = list(zip(*data, strict=False))[:10]
    extras: Any = repeat(())
    if max(map(len, data)) > 10:
        extras = [tuple(e[10:]) for e in data]
    pairs, triples = map(tuple, cols[8]), map(tuple, cols[9])
    entries = tuple(map(_new_entry, zip(*cols[:8], pairs, triples, extras, strict=False)))
    return entries, columns


def _checked(data: Sequence[Any]) -> EntryColumns:
    """The columns of listed entries; raise ProtocolError unless all keep every rule."""
    shown = data[0] if len(data) == 1 else data
    if not set(map(type, data)) <= _LIST_TYPES:
        bad_value("entry", shown, "shape")
    if min(map(len, data)) < 10:
        bad_value("entry", shown, "shape")
    eid, nreq, nnone, nfail, total, low, high, length, pairs, triples = list(
        zip(*data, strict=False)
    )[:10]
    if (
        set(map(type, eid + nreq + nnone + nfail + total + high + length)) != _INT_TYPE
        or not set(map(type, low)) <= _LOW_TYPES
        or not set(map(type, pairs + triples)) <= _LIST_TYPES
    ):
        bad_value("entry", shown)
    if min([v for v in low if v is not None], default=0) < 0:
        bad_value("entry", shown)
    lows = [-1 if v is None else v for v in low]
    if any(len(p) & 1 for p in pairs) or any(len(t) % 3 for t in triples):
        bad_value("entry buckets/per_sec length", shown, "shape")
    flat_pairs = list(chain.from_iterable(pairs))
    flat_triples = list(chain.from_iterable(triples))
    if not set(map(type, flat_pairs + flat_triples)) <= _PAIR_TYPES:
        bad_value("entry buckets/per_sec", shown)
    n_pairs = [len(p) >> 1 for p in pairs]
    n_triples = [len(t) // 3 for t in triples]
    table = (eid, nreq, nnone, nfail, total, lows, high, length, n_pairs, n_triples)
    rows = int_array(list(chain.from_iterable(table))).reshape(10, -1).T
    pair_array = int_array(flat_pairs).reshape(-1, 2)
    triple_array = int_array(flat_triples).reshape(-1, 3)
    bounds = [0, len(data)]
    check_entries(rows, pair_array, triple_array, bounds, [(len(pair_array), len(triple_array))])
    return split_columns(rows, pair_array, triple_array, bounds)[0]


def entry_columns(delta: HordeStatsDelta) -> EntryColumns | None:
    """A delta's entries as columns: decoded ones', or those of a delta built here."""
    if delta.columns is not None or not delta.entries:
        return delta.columns
    return entries_from_wire([e.to_wire() for e in delta.entries])[1]


@dataclass(frozen=True)
class ErrorDelta:
    """Occurrences of one (method, name, error) since the previous delta.

    Wire form: ``[method, name, error, occurrences, first_seen, last_seen, *extra]``.
    """

    method: str
    name: str
    error: str
    occurrences: int
    first_seen: float
    last_seen: float
    extra: tuple[Any, ...] = ()

    def to_wire(self) -> list[Any]:
        """Return the compact wire list."""
        return [
            self.method,
            self.name,
            self.error,
            self.occurrences,
            self.first_seen,
            self.last_seen,
            *self.extra,
        ]

    @classmethod
    def from_wire(cls, data: object) -> ErrorDelta:
        """Validate a wire list and return the error delta; raise ProtocolError otherwise."""
        seq = sequence(data, "error")
        if len(seq) < 6:
            bad_value("error", seq, "shape")
        return cls(
            as_str(seq[0], "error method"),
            as_str(seq[1], "error name"),
            as_str(seq[2], "error text"),
            as_count(seq[3], "error occurrences"),
            number(seq[4], "error first_seen"),
            number(seq[5], "error last_seen"),
            tuple(seq[6:]),
        )


def _name_def(data: object) -> tuple[int, str, str]:
    """Validate one ``[entry_id, method, name]`` interning definition."""
    seq = sequence(data, "name definition")
    if len(seq) != 3:
        bad_value("name definition", seq, "shape")
    return (as_count(seq[0], "entry id"), as_str(seq[1], "method"), as_str(seq[2], "name"))


_HORDE_KEYS = frozenset(
    (
        "run_id",
        "epoch",
        "seq",
        "sent_at",
        "names",
        "entries",
        "errors",
        "user_classes_count",
        "user_count",
    )
)


_WIRE_KEYS = _HORDE_KEYS | {PACKED_KEY}


@dataclass(frozen=True)
class HordeStatsDelta:
    """A worker's stats delta (message type ``horde.stats``); the wire form is a dict.

    ``names`` defines ``(entry_id, method, name)`` for ids the receiving master has not been
    told about since the worker last reset its announcements; ``entries`` refer to ids only.
    """

    run_id: str
    epoch: int
    seq: int
    sent_at: float
    names: tuple[tuple[int, str, str], ...]
    entries: Sequence[EntryDelta]
    errors: tuple[ErrorDelta, ...]
    user_classes_count: dict[str, int]
    user_count: int
    extra: dict[Any, Any] = field(default_factory=dict)
    columns: EntryColumns | None = field(default=None, compare=False, repr=False)
    """``entries`` column by column, set by :meth:`from_wire` (None: merge one by one)."""
    pack: bool = field(default=True, compare=False, repr=False)
    """Whether :meth:`to_wire` may use the packed form (``horde.protocol.packed``)."""

    def to_wire(self) -> dict[Any, Any]:
        """Return the wire dict (msgpack-ready); entries packed unless they cannot be."""
        packed = pack_entries(self.entries) if self.pack and self.entries else None
        known: dict[str, Any] = {
            "run_id": self.run_id,
            "epoch": self.epoch,
            "seq": self.seq,
            "sent_at": self.sent_at,
            "names": [list(d) for d in self.names],
            "entries": [] if packed is not None else [e.to_wire() for e in self.entries],
            "errors": [e.to_wire() for e in self.errors],
            "user_classes_count": dict(self.user_classes_count),
            "user_count": self.user_count,
        }
        if packed is not None:
            known[PACKED_KEY] = packed
        return merge_extra(known, self.extra)

    def request_count(self) -> int:
        """The entries' total ``num_requests`` (from the columns when packed)."""
        if isinstance(self.entries, PackedEntries):
            return self.entries.request_count()
        return sum(e.num_requests for e in self.entries)

    @classmethod
    def from_wire(cls, data: object) -> HordeStatsDelta:
        """Validate a wire dict and return the delta; raise ProtocolError otherwise."""
        raw = as_map(data, "horde.stats payload")
        require_keys(raw, _HORDE_KEYS, "horde.stats payload")
        run_id = as_str(raw["run_id"], "run_id")
        epoch = as_count(raw["epoch"], "epoch")
        seq = as_count(raw["seq"], "seq")
        sent_at = number(raw["sent_at"], "sent_at")
        names = tuple([_name_def(d) for d in sequence(raw["names"], "names")])
        listed = sequence(raw["entries"], "entries")
        entries: Sequence[EntryDelta]
        columns: EntryColumns | None
        if PACKED_KEY in raw:
            if listed:
                bad_value("entries (both listed and packed)", len(listed), "shape")
            packed = raw[PACKED_KEY]
            if isinstance(packed, ProtocolError):  # unpacked with its batch, and refused
                raise packed
            entries = packed if type(packed) is PackedEntries else unpack_entries(packed)
            columns = entries.columns
        else:
            entries, columns = entries_from_wire(listed)
        return cls(
            run_id=run_id,
            epoch=epoch,
            seq=seq,
            sent_at=sent_at,
            names=names,
            entries=entries,
            errors=tuple([ErrorDelta.from_wire(e) for e in sequence(raw["errors"], "errors")]),
            user_classes_count=as_counts(raw["user_classes_count"], "user_classes_count"),
            user_count=as_count(raw["user_count"], "user_count"),
            extra=extra_keys(raw, _WIRE_KEYS),
            columns=columns,
        )
