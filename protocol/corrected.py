"""Coordinated-omission corrected latencies: the ``corrected`` key of a ``horde.stats`` delta.

Responsibility: declare the wire form of the corrected series and validate it. For users
that pace themselves (``constant_pacing``, ``constant_throughput``) a worker also records
each request's latency from its intended start: the raw time plus the lateness of the task
iteration that made it (actual iteration start minus scheduled start). Those figures travel
beside the raw entries as an optional key of the delta dict, so masters that do not know it
keep it in ``extra`` and ignore it.

Wire form: ``delta["corrected"]`` is a list of ``[method, name, requests, total_us, min_us,
max_us, buckets]`` items, ``buckets`` flat ``[histogram idx, count, ...]`` pairs whose
counts add up to ``requests``. Items carry their names (not interned ids), so a delta split
into several frames can put them in any part.

Imports: the standard library and :mod:`horde.protocol` only.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from horde.protocol.errors import ProtocolError
from horde.protocol.histogram import NUM_BUCKETS

__all__ = ["CORRECTED_KEY", "CorrectedDelta", "corrected_from_wire", "corrected_to_wire"]

CORRECTED_KEY = "corrected"
"""The key of the corrected series in a ``horde.stats`` delta dict."""


class CorrectedDelta(NamedTuple):
    """One (method, name)'s corrected latencies since the previous delta (µs)."""

    method: str
    name: str
    requests: int
    total_us: int
    min_us: int
    max_us: int
    buckets: tuple[int, ...]

    def to_wire(self) -> list[Any]:
        """Return the compact wire list."""
        return [*self[:6], list(self.buckets)]


def corrected_to_wire(items: tuple[CorrectedDelta, ...] | list[CorrectedDelta]) -> list[Any]:
    """Return the wire list of ``items``."""
    return [item.to_wire() for item in items]


def _bad(value: object, reason: str = "field") -> ProtocolError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ProtocolError(f"corrected stats: bad item: {shown}", reason=reason)


def _item(data: object) -> CorrectedDelta:
    if type(data) is not list and type(data) is not tuple:
        raise _bad(data, "shape")
    if len(data) < 7:
        raise _bad(data, "shape")
    method, name, count, total, low, high, pairs = data[:7]
    if not (
        type(method) is str
        and type(name) is str
        and type(count) is int
        and type(total) is int
        and type(low) is int
        and type(high) is int
        and (type(pairs) is list or type(pairs) is tuple)
    ):
        raise _bad(data, "type")
    if count <= 0 or total < 0 or low < 0 or high < low or len(pairs) & 1:
        raise _bad(data)
    if not all(type(v) is int and v >= 0 for v in pairs):
        raise _bad(data, "type")
    if max(pairs[::2], default=0) >= NUM_BUCKETS or sum(pairs[1::2]) != count:
        raise _bad(data)
    return CorrectedDelta(method, name, count, total, low, high, tuple(pairs))


def corrected_from_wire(data: object) -> tuple[CorrectedDelta, ...]:
    """Validate the ``corrected`` value of a delta; raise :class:`ProtocolError` otherwise."""
    if data is None:
        return ()
    if type(data) is not list and type(data) is not tuple:
        raise _bad(data, "shape")
    return tuple(_item(item) for item in data)
