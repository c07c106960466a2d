"""Locust's ``stats`` entries decoded to columns, many reports at once, and their rules.

Responsibility: the rules of a Locust stats entry's values (:data:`ENTRY_FIELDS`), and
:func:`locust_columns_many`, which checks and decodes the entries of many reports into the
same :class:`~horde.protocol.columns.EntryColumns` horde's deltas decode to: response
times in µs, Locust's ``{rounded ms: count}`` buckets as horde histogram buckets,
per-second counts as (second, requests, failures) triples, each step a whole-array
operation over the batch. Any input gives columns or a :class:`ProtocolError`, nothing else.

Imports: the standard library and :mod:`horde.protocol` (columns, errors, fields,
histogram, stats); numpy on the first decode only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any, NamedTuple

from horde.protocol.columns import LAST_IS_TOTAL, EntryColumns, int_array, numpy, split_columns
from horde.protocol.errors import ProtocolError
from horde.protocol.fields import as_count, as_map, as_str, extra_keys, require_keys
from horde.protocol.histogram import CAP_US, bucket_indices
from horde.protocol.stats import bad_value, number, opt_number, sequence

__all__ = [
    "ENTRY_FIELDS",
    "ENTRY_KEYS",
    "ENTRY_NAMES",
    "ERROR_FIELDS",
    "ERROR_KEYS",
    "Check",
    "Flat",
    "LocustColumns",
    "fields_from_wire",
    "int_counts",
    "locust_columns_many",
    "typed_columns_many",
]


_INT_ONLY = frozenset((int,))


def int_counts(value: object, what: str) -> dict[int, int]:
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


Check = Callable[[object, str], Any]

ENTRY_FIELDS: tuple[tuple[str, Check], ...] = (
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
    ("response_times", int_counts),
    ("num_reqs_per_sec", int_counts),
    ("num_fail_per_sec", int_counts),
)
ENTRY_KEYS = frozenset(k for k, _ in ENTRY_FIELDS)
ERROR_FIELDS: tuple[tuple[str, Check], ...] = (
    ("name", as_str),
    ("method", as_str),
    ("error", as_str),
    ("occurrences", as_count),
)
"""The required fields of a value of a report's ``errors``; ``first_seen`` and ``last_seen``
(optional numbers) may follow."""
ERROR_KEYS = frozenset(k for k, _ in ERROR_FIELDS)
ENTRY_NAMES = tuple(k for k, _ in ENTRY_FIELDS)
_GETTERS = tuple(map(itemgetter, ENTRY_NAMES))


def fields_from_wire(
    data: object, fields: tuple[tuple[str, Check], ...], known: frozenset[str], what: str
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


# --- many reports' entries at once -------------------------------------------------------


class LocustColumns(NamedTuple):
    """A validated report's entries as columns: ``stats`` rows, then ``stats_total``."""

    methods: tuple[str, ...]
    """The method of each ``stats`` entry, in order."""
    names: tuple[str, ...]
    """The name of each ``stats`` entry, in order."""
    columns: EntryColumns
    """The entries' figures (µs, horde buckets); the last row is ``stats_total``."""
    entries: tuple[Any, ...]
    """The validated ``stats`` dicts, or value tuples (:func:`typed_columns_many`);
    :class:`LocustEntry` objects are built on demand."""
    total: Any
    """The validated ``stats_total`` dict or value tuple."""


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


Flat = tuple[Any, Any, Any]
"""One count field of a batch's entries: each entry's map size, then every key and every
value end to end (int64 arrays)."""


def typed_columns_many(
    reports: Sequence[tuple[Sequence[Any], Any]], flats: Sequence[Flat]
) -> list[LocustColumns]:
    """The columns of reports (``stats`` rows, ``stats_total`` row) a typed schema checked.

    Each entry is the tuple of its values in :data:`ENTRY_NAMES` order (see
    :mod:`horde.protocol.locust_schema`), already known to keep every rule of
    :data:`ENTRY_FIELDS` with integers within int64; ``flats`` are the three count
    fields of all those entries, in order, already flattened and checked: only the
    conversions run.
    """
    entries, bounds = _gather(reports)
    return _columns(list(zip(*entries, strict=True)), entries, bounds, flats)


def _gather(reports: Sequence[tuple[Sequence[Any], Any]]) -> tuple[list[Any], list[int]]:
    """Every report's entries then its total, end to end, and where each report starts."""
    entries: list[Any] = []
    bounds = [0]
    for stats, total in reports:
        entries += stats
        entries.append(total)
        bounds.append(len(entries))
    return entries, bounds


def _decode(group: list[tuple[int, Sequence[Any], object]]) -> list[LocustColumns]:
    """The columns of every report in ``group``; raise on the first rule any entry breaks."""
    entries, bounds = _gather([(stats, total) for _, stats, total in group])
    if set(map(type, entries)) != {dict}:
        _first_bad(entries, None, as_map)
    try:  # a list per field, not a tuple per entry: fewer objects for the collector
        cols = [tuple(map(get, entries)) for get in _GETTERS]
    except KeyError:
        for entry in entries:
            fields_from_wire(entry, ENTRY_FIELDS, ENTRY_KEYS, "locust entry")
        raise
    for (key, check), col in zip(ENTRY_FIELDS, cols, strict=True):
        _check_column(key, check, col)
    np = numpy()
    flats = [_flat(np, col, key) for key, col in zip(ENTRY_NAMES[-3:], cols[-3:], strict=True)]
    return _columns(cols, entries, bounds, flats)


def _columns(
    cols: list[tuple[Any, ...]], entries: list[Any], bounds: list[int], flats: Sequence[Flat]
) -> list[LocustColumns]:
    """Convert a batch's checked field columns (``ENTRY_NAMES`` order) and cut it per report.

    ``flats``: the three count fields, flattened (response times, requests and failures
    per second).
    """
    np = numpy()
    names, methods, _, _, nreq, nnone, nfail, rt, high, low, length = cols[:11]
    n = len(entries)
    has_low = np.fromiter((v is not None for v in low), dtype=bool, count=n)
    lows = _us([0 if v is None else v for v in low])
    if not has_low.all():
        lows = np.where(has_low, lows, -1)
    n_pairs, pairs = _pairs(np, flats[0])
    n_triples, triples = _triples(np, flats[1], flats[2])
    table = [np.zeros(n, dtype=np.int64), *map(int_array, (nreq, nnone, nfail))]
    table += [_us(rt), lows, _us(high), _lengths(length), n_pairs, n_triples]
    dtype = object if any(a.dtype == object for a in table) else np.int64
    columns = split_columns(
        np.column_stack([a.astype(dtype) for a in table]), pairs, triples, bounds, LAST_IS_TOTAL
    )
    return [
        LocustColumns(
            methods[lo : hi - 1],
            names[lo : hi - 1],
            c,
            tuple(entries[lo : hi - 1]),
            entries[hi - 1],
        )
        for c, lo, hi in zip(columns, bounds, bounds[1:], strict=False)
    ]


def _first_bad(values: Sequence[Any], what: str | None, check: Check) -> None:
    """Raise the error ``check`` raises for the first bad value of ``values``."""
    for value in values:
        check(value, what or "locust entry")
    bad_value(what or "locust entry", values)


def _check_column(key: str, check: Check, col: tuple[Any, ...]) -> None:
    """Raise unless every value of one field keeps that field's rule (``check``)."""
    what = f"locust entry {key}"
    types = set(map(type, col))
    if check is as_str:
        ok = types == {str}
    elif check is as_count:
        ok = types == {int} and min(col) >= 0
    elif check is int_counts:
        ok = types == {dict}  # their items: :func:`_flat`
    else:
        ok = types <= (_NUMBER_TYPES if check is number else _OPT_NUMBER_TYPES) and _numbers(col)
    if not ok:
        _first_bad(col, what, check)


def _flat(np: Any, col: tuple[dict[Any, Any], ...], key: str) -> Flat:
    """Each dict's size, then all their keys and all their values end to end, as arrays.

    Raises unless every key and value is a non-negative int.
    """
    sizes = np.fromiter(map(len, col), dtype=np.int64, count=len(col))
    keys = list(chain.from_iterable(col))
    values = list(chain.from_iterable(map(dict.values, col)))
    if keys and (set(map(type, keys)) != _INT_ONLY or set(map(type, values)) != _INT_ONLY):
        _first_bad(col, f"locust entry {key}", int_counts)
    key_array, value_array = int_array(keys), int_array(values)
    if keys and (key_array.min() < 0 or value_array.min() < 0):
        _first_bad(col, f"locust entry {key}", int_counts)
    return sizes, key_array, value_array


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


def _pairs(np: Any, times: tuple[Any, Any, Any]) -> tuple[Any, Any]:
    """Each entry's bucket count, and every ``{ms: count}`` as (horde bucket, count) pairs."""
    sizes, ms, counts = times
    clamped = np.minimum(ms, _LAST_MS).astype(np.int64)  # the last bucket's from there on
    idx = bucket_indices(clamped * 1000)
    return sizes, np.column_stack((idx.astype(counts.dtype), counts)).reshape(-1, 2)


def _triples(np: Any, reqs: tuple[Any, Any, Any], fails: tuple[Any, Any, Any]) -> Any:
    """Each entry's triple count, and its per-second dicts as (second, requests, failures)."""
    parts = []
    for (sizes, secs, counts), column in ((reqs, 1), (fails, 2)):
        wide = object in (secs.dtype, counts.dtype)
        block = np.zeros((len(secs), 3), dtype=object if wide else np.int64)
        block[:, 0], block[:, column] = secs, counts
        parts.append((np.repeat(np.arange(len(sizes)), sizes), block))
    if not len(parts[1][1]):  # no failures: already in entry order
        return reqs[0], parts[0][1]
    order = np.argsort(np.concatenate([parts[0][0], parts[1][0]]), kind="stable")
    triples = np.concatenate([parts[0][1], parts[1][1]])[order].reshape(-1, 3)
    return reqs[0] + fails[0], triples
