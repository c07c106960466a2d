"""Locust's ``stats`` report: its wire types and Locust's conversion rules.

Responsibility: declare Locust's stats payload once (:class:`LocustEntry`,
:class:`LocustError`, :class:`LocustStatsReport`) and convert it to and from wire dicts.
``from_wire`` accepts any object and either returns a valid report, its entries already
decoded to columns (:mod:`horde.protocol.locust_columns`), or raises
:class:`ProtocolError`; it raises nothing else. Also holds Locust's conversion rules:
response-time rounding and error keys.

Imports: the standard library and :mod:`horde.protocol` (errors, fields, lazyseq, locust_columns,
stats).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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
from horde.protocol.lazyseq import LazySequence
from horde.protocol.locust_columns import (
    ENTRY_FIELDS,
    ENTRY_KEYS,
    ENTRY_NAMES,
    ERROR_FIELDS,
    ERROR_KEYS,
    LocustColumns,
    fields_from_wire,
    locust_columns_many,
)
from horde.protocol.locust_schema import count_map
from horde.protocol.stats import opt_number

__all__ = [
    "COLUMNS_KEY",
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
        known = {key: getattr(self, key) for key in ENTRY_NAMES}
        for key in ("response_times", "num_reqs_per_sec", "num_fail_per_sec"):
            known[key] = dict(known[key])
        return merge_extra(known, self.extra)

    @classmethod
    def from_wire(cls, data: object) -> LocustEntry:
        """Validate a Locust stats entry dict; raise ProtocolError otherwise."""
        return cls(**fields_from_wire(data, ENTRY_FIELDS, ENTRY_KEYS, "locust entry"))

    @classmethod
    def _validated(cls, raw: Any) -> LocustEntry:
        """The entry of a validated dict, or value tuple (as :class:`LocustColumns` hold)."""
        if type(raw) is dict:
            values = {key: raw[key] for key in ENTRY_NAMES}
            extra = extra_keys(raw, ENTRY_KEYS)
        else:  # values in ENTRY_NAMES order, from a typed schema: no unknown keys
            values = dict(zip(ENTRY_NAMES, raw, strict=True))
            extra = {}
        for key in ("response_times", "num_reqs_per_sec", "num_fail_per_sec"):
            values[key] = dict(count_map(values[key]))
        return cls(**values, extra=extra)


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
    def _typed(cls, e: Any) -> LocustError:
        """The error a typed schema decoded (fields by name, no unknown keys)."""
        return cls(e.name, e.method, e.error, e.occurrences, e.first_seen, e.last_seen)

    @classmethod
    def from_wire(cls, data: object) -> LocustError:
        """Validate a Locust error dict (``first_seen``/``last_seen`` optional)."""
        values = fields_from_wire(data, ERROR_FIELDS, ERROR_KEYS, "locust error")
        extra = values["extra"]
        for key in ("first_seen", "last_seen"):
            values[key] = opt_number(extra.pop(key, None), f"locust error {key}")
        return cls(**values)


# --- the report --------------------------------------------------------------------------


class _LazyEntries(LazySequence[LocustEntry]):
    """A decoded report's ``stats``: :class:`LocustEntry` objects built on first use."""

    __slots__ = ("_raw",)

    def __init__(self, raw: tuple[dict[Any, Any], ...]) -> None:
        """Wrap validated entry dicts."""
        super().__init__()
        self._raw = raw

    def _build(self) -> tuple[LocustEntry, ...]:
        return tuple(map(LocustEntry._validated, self._raw))

    def __len__(self) -> int:
        """Number of entries (no building)."""
        return len(self._raw)

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
    def from_typed(cls, data: Any, columns: LocustColumns) -> LocustStatsReport:
        """The report a typed schema decoded (:mod:`horde.protocol.locust_schema`).

        ``columns`` are its entries' (:func:`typed_columns_many`); the schema took only
        data with Locust's keys, every rule kept.
        """
        return cls(
            stats=_LazyEntries(columns.entries),
            stats_total=LocustEntry._validated(columns.total),
            errors={key: LocustError._typed(e) for key, e in data.errors.items()},
            user_classes_count=dict(data.user_classes_count or {}),
            user_count=data.user_count,
            columns=columns,
        )

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
