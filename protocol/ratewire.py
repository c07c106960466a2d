"""The arrival-rate messages: a master's grant of iterations, a worker's counts.

Responsibility: :class:`HordeRate` (``horde.rate``, master to worker) grants one worker
the iterations ``[first, last)`` of one arrival-rate class whose position
``k % period`` is in ``offsets``, with the class's schedule and its origin on the
master's clock (the worker computes each index's due time with
:class:`~horde.protocol.rates.Schedule`). :class:`HordeArrivals` (``horde.arrivals``, worker
to master) carries the worker's pool size and, per class, the iterations it started and
dropped in the run so far: absolute counts, so a report lost or repeated changes nothing.
Both are sent only between horde peers; decoding validates every field.

Imports: the standard library and horde.protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Self

from horde.protocol import fields as f
from horde.protocol.base import Message, MessageType
from horde.protocol.errors import ProtocolError
from horde.protocol.rates import Schedule

MAX_PERIOD = 4096
"""Longest interleaving period a grant may carry."""


def _schedule(d: Mapping[object, object]) -> Schedule:
    raw = f.field(d, "stages", "horde.rate")
    if not isinstance(raw, list | tuple) or len(raw) > 1000:
        raise ProtocolError("horde.rate stages must be a list", reason="type")
    stages = []
    for item in raw:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise ProtocolError("horde.rate stage must be [seconds, rate]", reason="type")
        stages.append((f.as_float(item[0], "stage seconds"), f.as_float(item[1], "stage rate")))
    try:
        return Schedule(
            f.as_float(f.field(d, "start_rate", "horde.rate"), "start_rate"), tuple(stages)
        )
    except ValueError as exc:
        raise ProtocolError(f"horde.rate schedule: {exc}", reason="field") from None


@dataclass(frozen=True, slots=True)
class HordeRate(Message):
    """A grant of one class's iterations to one worker (see the module docstring)."""

    TYPE = MessageType.HORDE_RATE
    run_id: str = ""
    user_class: str = ""
    schedule: Schedule = field(default_factory=lambda: Schedule(1.0))
    origin: float = 0.0
    """When the schedule's time 0 is, on the master's clock."""
    sent_at: float = 0.0
    """The master's clock when it sent this grant (the worker maps master time with it)."""
    first: int = 0
    last: int = 0
    period: int = 1
    offsets: tuple[int, ...] = (0,)

    def to_data(self) -> object:
        return {
            "run_id": self.run_id,
            "user_class": self.user_class,
            "start_rate": self.schedule.start_rate,
            "stages": [list(stage) for stage in self.schedule.stages],
            "origin": self.origin,
            "sent_at": self.sent_at,
            "first": self.first,
            "last": self.last,
            "period": self.period,
            "offsets": list(self.offsets),
        }

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map(data, "horde.rate")
        first = f.as_count(f.field(d, "first", "horde.rate"), "first")
        last = f.as_count(f.field(d, "last", "horde.rate"), "last")
        period = f.as_count(f.field(d, "period", "horde.rate"), "period")
        raw = f.field(d, "offsets", "horde.rate")
        if not isinstance(raw, list) or not 1 <= period <= MAX_PERIOD or last < first:
            raise ProtocolError("horde.rate range or period out of bounds", reason="field")
        offsets = tuple(f.as_count(o, "offset") for o in raw)
        if any(o >= period for o in offsets):
            raise ProtocolError("horde.rate offset beyond its period", reason="field")
        return cls(
            node_id,
            run_id=f.as_str(f.field(d, "run_id", "horde.rate"), "run_id"),
            user_class=f.as_str(f.field(d, "user_class", "horde.rate"), "user_class"),
            schedule=_schedule(d),
            origin=f.as_float(f.field(d, "origin", "horde.rate"), "origin"),
            sent_at=f.as_float(f.field(d, "sent_at", "horde.rate"), "sent_at"),
            first=first,
            last=last,
            period=period,
            offsets=offsets,
        )


@dataclass(frozen=True, slots=True)
class HordeArrivals(Message):
    """A worker's arrival pool size and, per class, iterations started and dropped in
    ``run_id`` so far (absolute counts)."""

    TYPE = MessageType.HORDE_ARRIVALS
    run_id: str = ""
    pool: int = 0
    started: Mapping[str, int] = field(default_factory=dict)
    dropped: Mapping[str, int] = field(default_factory=dict)

    def to_data(self) -> object:
        return {
            "run_id": self.run_id,
            "pool": self.pool,
            "started": dict(self.started),
            "dropped": dict(self.dropped),
        }

    @classmethod
    def from_data(cls, data: object, node_id: str) -> Self:
        d = f.as_map(data, "horde.arrivals")
        return cls(
            node_id,
            run_id=f.as_str(f.field(d, "run_id", "horde.arrivals"), "run_id"),
            pool=f.as_count(f.field(d, "pool", "horde.arrivals"), "pool"),
            started=f.as_counts(d.get("started"), "started"),
            dropped=f.as_counts(d.get("dropped"), "dropped"),
        )
