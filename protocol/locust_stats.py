"""Locust's ``stats`` report: its wire types, its rules, and its entries decoded to columns.

Responsibility: declare Locust's stats payload once (:class:`LocustEntry`,
:class:`LocustError`, :class:`LocustStatsReport`), convert it to and from wire dicts, and
validate and decode the entries of many reports at once into the same
:class:`~horde.protocol.columns.EntryColumns` horde's deltas decode to
(:func:`locust_columns_many`): response times in µs, Locust's ``{rounded ms: count}``
buckets as horde histogram buckets, per-second counts as (second, requests, failures)
triples, each step a whole-array operation over the batch. ``from_wire`` accepts any
object and either returns a valid report or raises :class:`ProtocolError`; it raises
nothing else. Also holds Locust's conversion rules: response-time rounding and error keys.

Imports: the standard library and :mod:`horde.protocol` (columns, errors, fields,
histogram, stats); numpy on the first decode only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any, NamedTuple, overload

from horde.protocol.columns import LAST_IS_TOTAL, EntryColumns, int_array, numpy, split_columns
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
from horde.protocol.histogram import CAP_US, bucket_indices
from horde.protocol.stats import bad_value, number, opt_number, sequence

__all__ = [
    "LocustColumns",
    "LocustEntry",
    "LocustError",
    "LocustStatsReport",
    "locust_bucket",
    "locust_columns_many",
    "locust_error_key",
    "normalise_error",
]


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


# --- the rules of one value --------------------------------------------------------------

_INT_ONLY = frozenset((int,))


def _int_counts(value: object, what: str) -> dict[int, int]:
    """Return a copy of a ``{non-negative int: non-negative int}`` dict."""
    raw = as_map(value, what)
    if raw and not (
        set(map(type, raw)) <= _INT_ONLY
        and set(map(type, raw.values())) <= _INT_ONLY
        and min(raw) >= 0
        and min(raw.values()) >= 0
    ):
        bad_value(what, raw)
    return dict(raw)


_Check = Callable[[object, str], Any]

_ENTRY_FIELDS: tuple[tuple[str, _Check], ...] = (
    ("name", as_str),
    ("method", as_str),
    ("last_request_timestamp", opt_number),
    ("start_time", number),
    ("num_requests", as_count),
    ("num_none_requests", as_count),
    ("num_failures", as_count),
    ("total_response_time", number),
    ("max_response_time", number),
    ("min_response_time", opt_number),
    ("total_content_length", number),
    ("response_times", _int_counts),
    ("num_reqs_per_sec", _int_counts),
    ("num_fail_per_sec", _int_counts),
)
_ENTRY_KEYS = frozenset(k for k, _ in _ENTRY_FIELDS)
_ENTRY_NAMES = tuple(k for k, _ in _ENTRY_FIELDS)
_get_fields = itemgetter(*_ENTRY_NAMES)


def _fields_from_wire(
    data: object, fields: tuple[tuple[str, _Check], ...], known: frozenset[str], what: str
) -> dict[str, Any]:
    """Validate the dict ``data`` field by field; keys not in ``known`` go under ``extra``."""
    raw = as_map(data, what)
    values: dict[str, Any] = {}
    for key, check in fields:
        if key not in raw:
            bad_value(f"{what} (missing {key!r})", sorted(map(repr, raw)), "field")
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
        known = {key: getattr(self, key) for key in _ENTRY_NAMES}
        for key in ("response_times", "num_reqs_per_sec", "num_fail_per_sec"):
            known[key] = dict(known[key])
        return merge_extra(known, self.extra)

    @classmethod
    def from_wire(cls, data: object) -> LocustEntry:
        """Validate a Locust stats entry dict; raise ProtocolError otherwise."""
        return cls(**_fields_from_wire(data, _ENTRY_FIELDS, _ENTRY_KEYS, "locust entry"))

    @classmethod
    def _validated(cls, raw: dict[Any, Any]) -> LocustEntry:
        """The entry of a dict :func:`locust_columns_many` already validated."""
        values = {key: raw[key] for key in _ENTRY_NAMES}
        for key in ("response_times", "num_reqs_per_sec", "num_fail_per_sec"):
            values[key] = dict(values[key])
        return cls(**values, extra=extra_keys(raw, _ENTRY_KEYS))


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
            values[key] = opt_number(extra.pop(key, None), f"locust error {key}")
        return cls(**values)


# --- many reports' entries at once -------------------------------------------------------


class LocustColumns(NamedTuple):
    """A validated report's entries as columns: ``stats`` rows, then ``stats_total``."""

    keys: tuple[tuple[str, str], ...]
    """(method, name) of each ``stats`` entry, in order."""
    columns: EntryColumns
    """The entries' figures (µs, horde buckets); the last row is ``stats_total``."""
    entries: tuple[dict[Any, Any], ...]
    """The validated ``stats`` dicts (:class:`LocustEntry` objects are built on demand)."""
    total: dict[Any, Any]
    """The validated ``stats_total`` dict."""


def _report_entries(data: object) -> tuple[Sequence[Any], object]:
    """The ``stats`` list and ``stats_total`` of a report dict; raise ProtocolError otherwise."""
    raw = as_map(data, "locust stats payload")
    require_keys(raw, frozenset(("stats", "stats_total")), "locust stats payload")
    return sequence(raw["stats"], "locust stats"), raw["stats_total"]


def locust_columns_many(reports: Sequence[object]) -> list[LocustColumns | ProtocolError]:
    """Validate and decode the entries of several Locust reports: each one's, or its error.

    The checks and conversions run once over every entry of the batch. When any check
    fails, each report is decoded on its own, so every good report still decodes and each
    bad one gets its own error (naming the first value found wrong).
    """
    out: list[LocustColumns | ProtocolError | None] = []
    group: list[tuple[int, Sequence[Any], object]] = []
    for data in reports:
        try:
            group.append((len(out), *_report_entries(data)))
            out.append(None)
        except ProtocolError as exc:
            out.append(exc)
    try:
        for (position, _, _), verdict in zip(group, _decode(group), strict=True):
            out[position] = verdict
    except ProtocolError as exc:
        if len(group) == 1:
            out[group[0][0]] = exc
        else:
            for one in group:
                try:
                    out[one[0]] = _decode([one])[0]
                except ProtocolError as error:
                    out[one[0]] = error
    return out  # type: ignore[return-value]  # every None was replaced


_LAST_MS = -(-CAP_US // 1000)
"""Response times of this many ms or more land in the last histogram bucket."""
_EXACT_MS = 9 * 10**12
"""Below this, float64 ``ms * 1000`` rounds to exactly Python's ``round(ms * 1000)``."""
_NUMBER_TYPES = frozenset((int, float))
_OPT_NUMBER_TYPES = frozenset((int, float, type(None)))


def _decode(group: list[tuple[int, Sequence[Any], object]]) -> list[LocustColumns]:
    """The columns of every report in ``group``; raise on the first rule any entry breaks."""
    np = numpy()
    entries: list[Any] = []
    bounds = [0]
    for _, stats, total in group:
        entries += stats
        entries.append(total)
        bounds.append(len(entries))
    if set(map(type, entries)) != {dict}:
        _first_bad(entries, None, as_map)
    try:
        rows = list(map(_get_fields, entries))
    except KeyError:
        for entry in entries:
            _fields_from_wire(entry, _ENTRY_FIELDS, _ENTRY_KEYS, "locust entry")
        raise
    cols = list(zip(*rows, strict=True))
    for (key, check), col in zip(_ENTRY_FIELDS, cols, strict=True):
        _check_column(key, check, col)
    names, methods, _, _, nreq, nnone, nfail, rt, high, low, length, times, reqs, fails = cols
    n = len(entries)
    has_low = np.fromiter((v is not None for v in low), dtype=bool, count=n)
    lows = _us([0 if v is None else v for v in low])
    if not has_low.all():
        lows = np.where(has_low, lows, -1)
    n_pairs, pairs = _pairs(np, times)
    n_triples, triples = _triples(np, reqs, fails)
    table = [np.zeros(n, dtype=np.int64), *map(int_array, (nreq, nnone, nfail))]
    table += [_us(rt), lows, _us(high), _lengths(length), n_pairs, n_triples]
    dtype = object if any(a.dtype == object for a in table) else np.int64
    columns = split_columns(
        np.column_stack([a.astype(dtype) for a in table]), pairs, triples, bounds, LAST_IS_TOTAL
    )
    keys = list(zip(methods, names, strict=True))
    return [
        LocustColumns(tuple(keys[lo : hi - 1]), c, tuple(entries[lo : hi - 1]), entries[hi - 1])
        for c, lo, hi in zip(columns, bounds, bounds[1:], strict=False)
    ]


def _first_bad(values: Sequence[Any], what: str | None, check: _Check) -> None:
    """Raise the error ``check`` raises for the first bad value of ``values``."""
    for value in values:
        check(value, what or "locust entry")
    bad_value(what or "locust entry", values)


def _check_column(key: str, check: _Check, col: tuple[Any, ...]) -> None:
    """Raise unless every value of one field keeps that field's rule (``check``)."""
    what = f"locust entry {key}"
    types = set(map(type, col))
    if check is as_str:
        ok = types == {str}
    elif check is as_count:
        ok = types == {int} and min(col) >= 0
    elif check is _int_counts:
        ok = types == {dict} and _int_dicts(col)
    else:
        ok = types <= (_NUMBER_TYPES if check is number else _OPT_NUMBER_TYPES) and _numbers(col)
    if not ok:
        _first_bad(col, what, check)


def _int_dicts(col: tuple[dict[Any, Any], ...]) -> bool:
    """Whether every dict of ``col`` maps non-negative ints to non-negative ints."""
    keys = list(chain.from_iterable(col))
    values = list(chain.from_iterable(map(dict.values, col)))
    if not keys:
        return True
    return (
        set(map(type, keys)) == _INT_ONLY
        and set(map(type, values)) == _INT_ONLY
        and min(keys) >= 0
        and min(values) >= 0
    )


def _numbers(col: tuple[Any, ...]) -> bool:
    """Whether every number of ``col`` (None aside) is finite and not negative."""
    np = numpy()
    values = [v for v in col if v is not None] if None in col else col
    if not values:
        return True
    try:
        array = np.array(values, dtype=np.float64)
    except OverflowError:  # an int beyond float64: only its sign matters
        return all(v >= 0 if type(v) is int else np.isfinite(v) and v >= 0 for v in values)
    return bool(np.isfinite(array).all() and array.min() >= 0)


def _us(ms: Sequence[float]) -> Any:
    """``round(v * 1000)`` of each ms value, exactly as Python computes it."""
    np = numpy()
    try:
        values = np.array(ms, dtype=np.float64)
    except OverflowError:  # an int beyond float64
        values = None
    if values is not None and (not len(values) or values.max() < _EXACT_MS):
        return np.rint(values * 1000).astype(np.int64)
    return np.array([round(v * 1000) for v in ms], dtype=object)


def _lengths(col: tuple[Any, ...]) -> Any:
    """Content lengths: int64, or objects (Python ints and floats, summed as Python does)."""
    if set(map(type, col)) == _INT_ONLY:
        return int_array(col)
    return numpy().array(col, dtype=object)


def _pairs(np: Any, times: tuple[dict[int, int], ...]) -> tuple[Any, Any]:
    """Each entry's bucket count, and every ``{ms: count}`` as (horde bucket, count) pairs."""
    counts = np.fromiter(map(len, times), dtype=np.int64, count=len(times))
    keys = list(chain.from_iterable(times))
    ms = int_array([min(k, _LAST_MS) for k in keys] if keys and max(keys) > _LAST_MS else keys)
    idx = bucket_indices(ms.astype(np.int64) * 1000)
    values = int_array(list(chain.from_iterable(map(dict.values, times))))
    return counts, np.column_stack((idx.astype(values.dtype), values)).reshape(-1, 2)


def _triples(np: Any, reqs: tuple[dict[int, int], ...], fails: tuple[dict[int, int], ...]) -> Any:
    """Each entry's triple count, and its per-second dicts as (second, requests, failures)."""
    n = len(reqs)
    req_n = np.fromiter(map(len, reqs), dtype=np.int64, count=n)
    fail_n = np.fromiter(map(len, fails), dtype=np.int64, count=n)
    parts = []
    for dicts, sizes, column in ((reqs, req_n, 1), (fails, fail_n, 2)):
        secs = int_array(list(chain.from_iterable(dicts)))
        counts = int_array(list(chain.from_iterable(map(dict.values, dicts))))
        wide = object in (secs.dtype, counts.dtype)
        block = np.zeros((len(secs), 3), dtype=object if wide else np.int64)
        block[:, 0], block[:, column] = secs, counts
        parts.append((np.repeat(np.arange(n), sizes), block))
    rows = np.concatenate([parts[0][0], parts[1][0]])
    order = np.argsort(rows, kind="stable")
    triples = np.concatenate([parts[0][1], parts[1][1]])[order].reshape(-1, 3)
    return req_n + fail_n, triples


# --- the report --------------------------------------------------------------------------


class _LazyEntries(Sequence[LocustEntry]):
    """A decoded report's ``stats``: :class:`LocustEntry` objects built on first use."""

    __slots__ = ("_items", "_raw")

    def __init__(self, raw: tuple[dict[Any, Any], ...]) -> None:
        """Wrap validated entry dicts."""
        self._raw = raw
        self._items: tuple[LocustEntry, ...] | None = None

    def _all(self) -> tuple[LocustEntry, ...]:
        if self._items is None:
            self._items = tuple(map(LocustEntry._validated, self._raw))
        return self._items

    def __len__(self) -> int:
        """Number of entries (no building)."""
        return len(self._raw)

    @overload
    def __getitem__(self, index: int) -> LocustEntry: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[LocustEntry, ...]: ...

    def __getitem__(self, index: int | slice) -> LocustEntry | tuple[LocustEntry, ...]:
        """The entry (or entries) at ``index``."""
        return self._all()[index]

    def __iter__(self) -> Iterator[LocustEntry]:
        """The entries in order."""
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence holding the same entries."""
        if not isinstance(other, Sequence):
            return NotImplemented
        return self._all() == tuple(other)

    __hash__ = None  # type: ignore[assignment]  # compared by value, like the tuple it stands for

    def __repr__(self) -> str:
        """A short representation."""
        return f"LocustEntries({len(self)} entries)"


_REPORT_KEYS = frozenset(("stats", "stats_total", "errors", "user_classes_count", "user_count"))
COLUMNS_KEY = object()
"""Where :func:`~horde.protocol.codec.decode_upstream_many` leaves a report's batch verdict
(a key msgpack can never produce, so a peer cannot forge one)."""


@dataclass(frozen=True)
class LocustStatsReport:
    """Locust's ``stats`` message data: a worker's delta since its previous report."""

    stats: Sequence[LocustEntry]
    stats_total: LocustEntry
    errors: dict[str, LocustError]
    user_classes_count: dict[str, int]
    user_count: int
    extra: dict[Any, Any] = field(default_factory=dict)
    columns: LocustColumns | None = field(default=None, compare=False, repr=False)
    """The entries as columns, set by :meth:`from_wire` (None: built when merged)."""

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

    def decoded(self) -> LocustColumns:
        """The entries as columns (decoded from :meth:`to_wire` for a report built here)."""
        if self.columns is not None:
            return self.columns
        verdict = locust_columns_many([self.to_wire()])[0]
        if isinstance(verdict, ProtocolError):
            raise verdict
        return verdict

    @classmethod
    def from_wire(cls, data: object) -> LocustStatsReport:
        """Validate Locust's stats data; raise ProtocolError otherwise."""
        raw = as_map(data, "locust stats payload")
        verdict = raw.pop(COLUMNS_KEY, None)
        require_keys(raw, _REPORT_KEYS, "locust stats payload")
        errors = {
            as_str(key, "locust error key"): LocustError.from_wire(value)
            for key, value in as_map(raw["errors"], "locust errors").items()
        }
        if verdict is None:
            verdict = locust_columns_many([raw])[0]
        if isinstance(verdict, ProtocolError):
            raise verdict
        return cls(
            stats=_LazyEntries(verdict.entries),
            stats_total=LocustEntry._validated(verdict.total),
            errors=errors,
            user_classes_count=as_counts(raw["user_classes_count"], "user_classes_count"),
            user_count=as_count(raw["user_count"], "user_count"),
            extra=extra_keys(raw, _REPORT_KEYS),
            columns=verdict,
        )
