"""Field validators for message payloads.

Each helper takes a decoded msgpack value and either returns it with the expected
Python type or raises :class:`ProtocolError` naming the field. The message classes use
them so that a payload of the wrong shape never surfaces as ``KeyError`` or
``TypeError`` deeper in the master or the worker.

Imports: the standard library and :mod:`horde.protocol.errors`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from horde.protocol.errors import ProtocolError


def as_map(value: object, what: str) -> dict[Any, Any]:
    """Return ``value`` if it is a map, else raise naming ``what``."""
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be a map, got {type(value).__name__}", reason="type")
    return value


def as_map_or_none(value: object, what: str) -> dict[Any, Any]:
    """Return ``value`` as a map, treating ``None`` as an empty map."""
    return {} if value is None else as_map(value, what)


def field(data: Mapping[Any, Any], key: str, what: str) -> object:
    """Return ``data[key]`` or raise naming the missing field."""
    try:
        return data[key]
    except KeyError:
        raise ProtocolError(f"{what}: missing field {key!r}", reason="field") from None


def as_str(value: object, what: str) -> str:
    """Return ``value`` if it is a string."""
    if not isinstance(value, str):
        raise ProtocolError(f"{what} must be a string, got {type(value).__name__}", reason="type")
    return value


def as_opt_str(value: object, what: str) -> str | None:
    """Return ``value`` if it is a string or ``None``."""
    return None if value is None else as_str(value, what)


def as_int(value: object, what: str) -> int:
    """Return ``value`` if it is an integer (booleans are refused)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"{what} must be an integer, got {type(value).__name__}", reason="type")
    return value


def as_count(value: object, what: str) -> int:
    """Return ``value`` if it is a non-negative integer."""
    number = as_int(value, what)
    if number < 0:
        raise ProtocolError(f"{what} must not be negative, got {number}", reason="type")
    return number


def as_opt_count(value: object, what: str) -> int | None:
    """Return ``value`` as a non-negative integer, or ``None``."""
    return None if value is None else as_count(value, what)


def as_float(value: object, what: str) -> float:
    """Return ``value`` as a finite float (integers are accepted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError(f"{what} must be a number, got {type(value).__name__}", reason="type")
    try:
        number = float(value)
    except OverflowError:
        raise ProtocolError(f"{what} is out of range", reason="type") from None
    if not math.isfinite(number):
        raise ProtocolError(f"{what} must be finite, got {number}", reason="type")
    return number


def as_opt_float(value: object, what: str) -> float | None:
    """Return ``value`` as a finite float, or ``None``."""
    return None if value is None else as_float(value, what)


def as_counts(value: object, what: str) -> dict[str, int]:
    """Return a ``{name: non-negative int}`` map, as ``user_classes_count`` is."""
    result: dict[str, int] = {}
    for key, count in as_map_or_none(value, what).items():
        result[as_str(key, f"{what} key")] = as_count(count, f"{what}[{key!r}]")
    return result


def merge_extra(known: dict[Any, Any], extra: Mapping[Any, Any]) -> dict[Any, Any]:
    """Return ``known`` plus the ``extra`` items whose keys it does not hold: known keys win."""
    for key, value in extra.items():
        known.setdefault(key, value)
    return known


def require_keys(data: Mapping[Any, Any], keys: frozenset[str], what: str) -> None:
    """Raise naming every key of ``keys`` that ``data`` lacks."""
    missing = keys.difference(data)
    if missing:
        raise ProtocolError(f"{what}: missing fields {sorted(missing)}", reason="field")


def extra_keys(data: Mapping[Any, Any], known: frozenset[str]) -> dict[Any, Any]:
    """Return the entries of ``data`` whose keys are not in ``known``: kept, not rejected."""
    return {key: value for key, value in data.items() if key not in known}
