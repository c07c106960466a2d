"""Stats payload types: horde's compact ``horde.stats`` delta and Locust's ``stats`` report.

Responsibility: declare the stats payloads once, convert them to and from wire values
(msgpack-ready dicts and lists) and validate what arrives. ``from_wire`` accepts any object
and either returns a valid payload or raises :class:`ProtocolError`; it raises nothing else.
Unknown keys of a dict payload are kept in ``extra`` (unknown trailing items of a list
payload in ``extra`` too) and are written back by ``to_wire``. Also holds the Locust
conversion rules: response-time bucketing and error keys.

Imports: the standard library and :mod:`horde.protocol` (errors, fields, histogram) only.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, repeat
from math import isfinite
from operator import is_not
from typing import Any, NamedTuple, NoReturn

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
from horde.protocol.histogram import NUM_BUCKETS
from horde.protocol.packed import (
    PACKED_KEY,
    EntryColumns,
    PackedEntries,
    pack_entries,
    unpack_entries,
)

__all__ = [
    "EntryColumns",
    "EntryDelta",
    "ErrorDelta",
    "HordeStatsDelta",
    "LocustEntry",
    "LocustError",
    "LocustStatsReport",
    "locust_bucket",
    "locust_error_key",
    "normalise_error",
]

_SEQ_TYPES = (list, tuple)
_INT_ONLY = frozenset((int,))


# --- validation helpers ------------------------------------------------------------------


def _bad(what: str, value: object, reason: str = "type") -> NoReturn:
    """Raise the ProtocolError for field ``what`` holding an unusable ``value``."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise ProtocolError(f"stats payload: bad {what}: {shown}", reason=reason)


def _number(value: object, what: str) -> float:
    """Return ``value`` unchanged if it is a finite non-negative int or float."""
    if type(value) is int:
        if value >= 0:
            return value
    elif type(value) is float and isfinite(value) and value >= 0:
        return value
    _bad(what, value)


def _opt_number(value: object, what: str) -> float | None:
    """Return ``value`` if it is None or a valid :func:`_number`."""
    return None if value is None else _number(value, what)


def _seq(value: object, what: str) -> list[Any] | tuple[Any, ...]:
    """Return ``value`` if it is a list or tuple."""
    if type(value) not in _SEQ_TYPES:
        _bad(what, value, "shape")
    return value  # type: ignore[return-value]  # checked just above


def _int_counts(value: object, what: str) -> dict[int, int]:
    """Return a copy of a ``{non-negative int: non-negative int}`` dict."""
    raw = as_map(value, what)
    if raw and not (
        set(map(type, raw)) <= _INT_ONLY
        and set(map(type, raw.values())) <= _INT_ONLY
        and min(raw) >= 0
        and min(raw.values()) >= 0
    ):
        _bad(what, raw)
    return dict(raw)


# --- Locust conversion rules -------------------------------------------------------------


def locust_bucket(ms: float) -> int:
    """Round a response time in ms to Locust's histogram key (banker's rounding, 2 digits)."""
    if ms < 100:
        return round(ms)
    if ms < 1000:
        return int(round(ms, -1))
    if ms < 10000:
        return int(round(ms, -2))
    return int(round(ms, -3))


def normalise_error(error: BaseException | str | None) -> str:
    """Return the error text Locust keys on: ``repr`` with ``object at 0x...`` masked."""
    text = error if isinstance(error, str) else repr(error)
    start = text.find("object at 0x")
    if start < 0:
        return text
    start += len("object at ")
    end = text.find(">", start)
    if end < 0:
        return text
    return text.replace(text[start:end], "0x....")


def locust_error_key(method: str, name: str, error: str) -> str:
    """Return Locust's error dict key for an already :func:`normalise_error`-ed ``error``."""
    return hashlib.sha256(f"{method}.{name}.{error!r}".encode()).hexdigest()


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
        """Validate a wire list and return the entry; raise ProtocolError otherwise.

        Beyond types and signs: the bucket counts must add up to ``num_requests -
        num_none_requests`` (the master relies on it instead of summing them again), and
        ``min_rt_us`` is None exactly when there is no timed request, and at most ``max_rt_us``.
        """
        if type(data) is not list and type(data) is not tuple:
            _bad("entry", data, "shape")
        if len(data) < 10:
            _bad("entry", data, "shape")
        eid, nreq, nnone, nfail, total, low, high, length, pairs, triples = data[:10]
        if not (
            type(eid) is int
            and type(nreq) is int
            and type(nnone) is int
            and type(nfail) is int
            and type(total) is int
            and type(high) is int
            and type(length) is int
            and (low is None or (type(low) is int and low >= 0))
            and min(eid, nreq, nnone, nfail, total, high, length) >= 0
            and (type(pairs) is list or type(pairs) is tuple)
            and (type(triples) is list or type(triples) is tuple)
        ):
            _bad("entry", data)
        if len(pairs) & 1 or len(triples) % 3:
            _bad("entry buckets/per_sec length", (len(pairs), len(triples)), "shape")
        try:  # in C: a sum is an int only if every item is one; anything else raises or isn't
            sums_are_ints = type(sum(pairs)) is int and type(sum(triples)) is int
        except TypeError:
            sums_are_ints = False
        if not sums_are_ints:
            _bad("entry buckets/per_sec", (pairs, triples))
        if (low is None) is (nreq > nnone) or (low is not None and high < low):
            _bad("entry min/max", (low, high, nreq, nnone), "field")
        if pairs:
            if min(pairs) < 0 or max(pairs[::2]) >= NUM_BUCKETS:
                _bad("entry buckets", pairs, "field")
            if sum(pairs[1::2]) != nreq - nnone:
                _bad("entry bucket total", (sum(pairs[1::2]), nreq, nnone), "field")
        elif nreq != nnone:
            _bad("entry bucket total", (0, nreq, nnone), "field")
        if triples and min(triples) < 0:
            _bad("entry per_sec", triples, "field")
        return tuple.__new__(
            cls,
            (
                eid,
                nreq,
                nnone,
                nfail,
                total,
                low,
                high,
                length,
                tuple(pairs),
                tuple(triples),
                tuple(data[10:]),
            ),
        )


_new_entry = partial(tuple.__new__, EntryDelta)
_LIST_TYPES = frozenset((list, tuple))
_INT_TYPE = frozenset((int,))
_NONE = type(None)
_np: Any = None
_SAFE_COUNT = 1 << 40
"""Bucket counts below this add up in int64 without overflow (larger: one by one)."""


def _numpy() -> Any:
    """numpy, imported on first use (only a master decoding deltas needs it)."""
    global _np  # noqa: PLW0603 - a lazy import, set once
    if _np is None:
        import numpy

        _np = numpy
    return _np


def _entries_from_wire(data: list[Any] | tuple[Any, ...]) -> tuple[tuple[EntryDelta, ...], Any]:
    """Validate a delta's entries all at once; return them and their :class:`EntryColumns`.

    Whole-column checks (types, signs, bucket totals, min/max rules) accept exactly what
    :meth:`EntryDelta.from_wire` accepts. When any check fails, each entry is validated
    on its own instead, so the error raised (entry and reason) is the one-by-one error;
    if that finds nothing wrong (values beyond int64), the columns are None.
    """
    if not data:
        return (), None
    cols = None
    if set(map(type, data)) <= _LIST_TYPES and min(map(len, data)) >= 10:
        cols = list(zip(*data, strict=False))[:10]
        try:
            columns = _columns(cols)
        except (TypeError, OverflowError):  # not ints, or beyond int64: one by one decides
            columns = None
    if cols is None or columns is None:
        return tuple([EntryDelta.from_wire(e) for e in data]), None
    extras: Any = repeat(())
    if max(map(len, data)) > 10:
        extras = [tuple(e[10:]) for e in data]
    pairs, triples = map(tuple, cols[8]), map(tuple, cols[9])
    entries = tuple(map(_new_entry, zip(*cols[:8], pairs, triples, extras, strict=False)))
    return entries, columns


def _columns(cols: list[tuple[Any, ...]]) -> EntryColumns | None:
    """The columns if every entry is valid, else None; may raise TypeError/OverflowError.

    ``array('q', ...)`` refuses anything but ints (bools pass, as in the one-by-one
    path's sums) and anything beyond int64; scalar fields must be ints proper.
    """
    np = _numpy()
    eid, nreq, nnone, nfail, total, low, high, length, pairs, triples = cols
    ints = nreq + nnone + nfail + total + high + length
    if set(map(type, eid + ints)) != _INT_TYPE:
        return None
    if not set(map(type, pairs + triples)) <= _LIST_TYPES or not set(map(type, low)) <= {
        int,
        _NONE,
    }:
        return None
    n = len(eid)
    scalars = np.frombuffer(array("q", ints), dtype=np.int64).reshape(6, n)
    has_low = np.fromiter(map(is_not, low, repeat(None)), dtype=bool, count=n)
    lows = np.frombuffer(array("q", [-1 if v is None else v for v in low]), dtype=np.int64)
    pair_lens = np.fromiter(map(len, pairs), dtype=np.int64, count=n)
    triple_lens = np.fromiter(map(len, triples), dtype=np.int64, count=n)
    flat = np.frombuffer(array("q", list(chain.from_iterable(pairs))), dtype=np.int64)
    flat3 = np.frombuffer(array("q", list(chain.from_iterable(triples))), dtype=np.int64)
    nreq_, nnone_, high_ = scalars[0], scalars[1], scalars[4]
    bad = (
        scalars.min() < 0
        or min(eid) < 0
        or (has_low != (nreq_ > nnone_)).any()
        or (has_low & ((lows < 0) | (high_ < lows))).any()
        or (pair_lens & 1).any()
        or (triple_lens % 3).any()
        or (len(flat3) and flat3.min() < 0)
    )
    if bad:
        return None
    flat = flat.reshape(-1, 2)
    if len(flat) and (
        flat.min() < 0 or flat[:, 0].max() >= NUM_BUCKETS or flat[:, 1].max() >= _SAFE_COUNT
    ):
        return None
    rows = np.arange(n)
    pair_rows = np.repeat(rows, pair_lens >> 1)
    totals = np.zeros(n, dtype=np.int64)
    np.add.at(totals, pair_rows, flat[:, 1])
    if (totals != nreq_ - nnone_).any():
        return None
    flat3 = flat3.reshape(-1, 3)
    peak = int(scalars.max()) if n else 0
    first, last = 0, -1
    if len(flat3):
        peak = max(peak, int(flat3[:, 1:].max()))
        first, last = int(flat3[:, 0].min()), int(flat3[:, 0].max())
    return EntryColumns(
        eid,
        scalars,
        lows,
        flat,
        pair_rows,
        flat3,
        np.repeat(rows, triple_lens // 3),
        peak,
        first,
        last,
    )


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
        seq = _seq(data, "error")
        if len(seq) < 6:
            _bad("error", seq, "shape")
        return cls(
            as_str(seq[0], "error method"),
            as_str(seq[1], "error name"),
            as_str(seq[2], "error text"),
            as_count(seq[3], "error occurrences"),
            _number(seq[4], "error first_seen"),
            _number(seq[5], "error last_seen"),
            tuple(seq[6:]),
        )


def _name_def(data: object) -> tuple[int, str, str]:
    """Validate one ``[entry_id, method, name]`` interning definition."""
    seq = _seq(data, "name definition")
    if len(seq) != 3:
        _bad("name definition", seq, "shape")
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
        sent_at = _number(raw["sent_at"], "sent_at")
        names = tuple([_name_def(d) for d in _seq(raw["names"], "names")])
        listed = _seq(raw["entries"], "entries")
        entries: Sequence[EntryDelta]
        if PACKED_KEY in raw:
            if listed:
                _bad("entries (both listed and packed)", len(listed), "shape")
            packed = raw[PACKED_KEY]
            if isinstance(packed, ProtocolError):  # unpacked with its batch, and refused
                raise packed
            entries = packed if type(packed) is PackedEntries else unpack_entries(packed)
            columns = entries.columns
        else:
            entries, columns = _entries_from_wire(listed)
        return cls(
            run_id=run_id,
            epoch=epoch,
            seq=seq,
            sent_at=sent_at,
            names=names,
            entries=entries,
            errors=tuple([ErrorDelta.from_wire(e) for e in _seq(raw["errors"], "errors")]),
            user_classes_count=as_counts(raw["user_classes_count"], "user_classes_count"),
            user_count=as_count(raw["user_count"], "user_count"),
            extra=extra_keys(raw, _WIRE_KEYS),
            columns=columns,
        )


# --- Locust "stats" ----------------------------------------------------------------------

_Check = Callable[[object, str], Any]

_ENTRY_FIELDS: tuple[tuple[str, _Check], ...] = (
    ("name", as_str),
    ("method", as_str),
    ("last_request_timestamp", _opt_number),
    ("start_time", _number),
    ("num_requests", as_count),
    ("num_none_requests", as_count),
    ("num_failures", as_count),
    ("total_response_time", _number),
    ("max_response_time", _number),
    ("min_response_time", _opt_number),
    ("total_content_length", _number),
    ("response_times", _int_counts),
    ("num_reqs_per_sec", _int_counts),
    ("num_fail_per_sec", _int_counts),
)
_ENTRY_KEYS = frozenset(k for k, _ in _ENTRY_FIELDS)


def _fields_from_wire(
    data: object, fields: tuple[tuple[str, _Check], ...], known: frozenset[str], what: str
) -> dict[str, Any]:
    """Validate the dict ``data`` field by field; keys not in ``known`` go under ``extra``."""
    raw = as_map(data, what)
    values: dict[str, Any] = {}
    for key, check in fields:
        if key not in raw:
            _bad(f"{what} (missing {key!r})", sorted(map(repr, raw)), "field")
        values[key] = check(raw[key], f"{what} {key}")
    values["extra"] = extra_keys(raw, known)
    return values


@dataclass(frozen=True)
class LocustEntry:
    """One Locust ``StatsEntry.serialize()`` dict (times in ms, as Locust sends them)."""

    name: str
    method: str
    last_request_timestamp: float | None
    start_time: float
    num_requests: int
    num_none_requests: int
    num_failures: int
    total_response_time: float
    max_response_time: float
    min_response_time: float | None
    total_content_length: float
    response_times: dict[int, int]
    num_reqs_per_sec: dict[int, int]
    num_fail_per_sec: dict[int, int]
    extra: dict[Any, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[Any, Any]:
        """Return the dict in Locust's key order (int keys in the count dicts)."""
        known = {key: getattr(self, key) for key, _ in _ENTRY_FIELDS}
        for key in ("response_times", "num_reqs_per_sec", "num_fail_per_sec"):
            known[key] = dict(known[key])
        return merge_extra(known, self.extra)

    @classmethod
    def from_wire(cls, data: object) -> LocustEntry:
        """Validate a Locust stats entry dict; raise ProtocolError otherwise."""
        return cls(**_fields_from_wire(data, _ENTRY_FIELDS, _ENTRY_KEYS, "locust entry"))


_ERROR_FIELDS: tuple[tuple[str, _Check], ...] = (
    ("name", as_str),
    ("method", as_str),
    ("error", as_str),
    ("occurrences", as_count),
)
_ERROR_KEYS = frozenset(k for k, _ in _ERROR_FIELDS)


@dataclass(frozen=True)
class LocustError:
    """One value of Locust's ``errors`` dict (``StatsError.serialize()``)."""

    name: str
    method: str
    error: str
    occurrences: int
    first_seen: float | None = None
    last_seen: float | None = None
    extra: dict[Any, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[Any, Any]:
        """Return the dict in Locust's key order."""
        known: dict[str, Any] = {
            "name": self.name,
            "method": self.method,
            "error": self.error,
            "occurrences": self.occurrences,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }
        return merge_extra(known, self.extra)

    @classmethod
    def from_wire(cls, data: object) -> LocustError:
        """Validate a Locust error dict (``first_seen``/``last_seen`` optional)."""
        values = _fields_from_wire(data, _ERROR_FIELDS, _ERROR_KEYS, "locust error")
        extra = values["extra"]
        for key in ("first_seen", "last_seen"):
            values[key] = _opt_number(extra.pop(key, None), f"locust error {key}")
        return cls(**values)


_REPORT_KEYS = frozenset(("stats", "stats_total", "errors", "user_classes_count", "user_count"))


@dataclass(frozen=True)
class LocustStatsReport:
    """Locust's ``stats`` message data: a worker's delta since its previous report."""

    stats: tuple[LocustEntry, ...]
    stats_total: LocustEntry
    errors: dict[str, LocustError]
    user_classes_count: dict[str, int]
    user_count: int
    extra: dict[Any, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[Any, Any]:
        """Return the dict Locust's master expects."""
        known: dict[str, Any] = {
            "stats": [e.to_wire() for e in self.stats],
            "stats_total": self.stats_total.to_wire(),
            "errors": {k: e.to_wire() for k, e in self.errors.items()},
            "user_classes_count": dict(self.user_classes_count),
            "user_count": self.user_count,
        }
        return merge_extra(known, self.extra)

    @classmethod
    def from_wire(cls, data: object) -> LocustStatsReport:
        """Validate Locust's stats data; raise ProtocolError otherwise."""
        raw = as_map(data, "locust stats payload")
        require_keys(raw, _REPORT_KEYS, "locust stats payload")
        errors = {
            as_str(key, "locust error key"): LocustError.from_wire(value)
            for key, value in as_map(raw["errors"], "locust errors").items()
        }
        return cls(
            stats=tuple([LocustEntry.from_wire(e) for e in _seq(raw["stats"], "locust stats")]),
            stats_total=LocustEntry.from_wire(raw["stats_total"]),
            errors=errors,
            user_classes_count=as_counts(raw["user_classes_count"], "user_classes_count"),
            user_count=as_count(raw["user_count"], "user_count"),
            extra=extra_keys(raw, _REPORT_KEYS),
        )
