"""Leases of rate: which worker starts which iterations of each arrival-rate class.

Responsibility: :class:`RateLease` holds one run's arrival-rate schedules (one per class,
:class:`~horde.protocol.rates.Schedule`) and how far each has been granted. Every
:data:`STEP` seconds :meth:`RateLease.issue` grants the iterations due before ``now +``
:data:`HORIZON` that no worker holds yet, split among the horde workers present in
proportion to their arrival pools: index ``k`` goes to the worker at position
``k % period`` of the pools' interleaving period
(:func:`~horde.master.dispatch.interleaving`), so every worker's iterations are spread
evenly over time. An index is granted once, to one worker, and never again: a worker
that goes missing is left out from the next step on (what it already holds, at most
:data:`HORIZON` ahead, is its own: the survivors carry the whole rate one horizon and
step after the loss is detected), and a joiner is in the next step. Pure: every method
takes ``now``.

Imports: the standard library and horde.master / horde.protocol.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from horde.master.dispatch import interleaving
from horde.protocol.rates import Schedule

STEP = 0.1
"""Seconds between two grants."""
HORIZON = 0.5
"""How far ahead of ``now`` iterations are granted, seconds."""
LEAD = 0.25
"""Seconds between a run's start and its schedules' origin: time for the pools to start."""
MAX_PERIOD = 256
"""Longest interleaving period; larger pool ratios are rounded to fit."""


@dataclass(frozen=True, slots=True)
class Grant:
    """Iterations ``[first, last)`` of ``user_class`` at positions ``offsets`` of each
    ``period``, for ``worker_id``."""

    worker_id: str
    user_class: str
    first: int
    last: int
    period: int
    offsets: tuple[int, ...]


def shares(pools: Sequence[int]) -> list[int]:
    """Weights for pools of these sizes (each above 0), scaled so they sum to at most
    :data:`MAX_PERIOD` (each at least 1)."""
    divisor = math.gcd(*pools)
    reduced = [pool // divisor for pool in pools]
    total = sum(reduced)
    if total <= MAX_PERIOD:
        return reduced
    return [max(1, round(pool * MAX_PERIOD / total)) for pool in reduced]


def split(first: int, last: int, user_class: str, pools: Sequence[tuple[str, int]]) -> list[Grant]:
    """Grants of ``[first, last)`` to the workers ``pools`` lists (id, pool size > 0)."""
    if last <= first or not pools:
        return []
    order = interleaving(shares([pool for _, pool in pools]))
    period = len(order)
    offsets: dict[int, list[int]] = {}
    for position, index in enumerate(order):
        offsets.setdefault(index, []).append(position)
    return [
        Grant(worker_id, user_class, first, last, period, tuple(offsets[index]))
        for index, (worker_id, _) in enumerate(pools)
        if index in offsets
    ]


class RateLease:
    """One run's arrival-rate schedules, granted a step ahead to the workers present."""

    def __init__(
        self,
        schedules: Mapping[str, Schedule],
        origin: float,
        *,
        step: float = STEP,
        horizon: float = HORIZON,
    ) -> None:
        self.schedules = dict(schedules)
        self.origin = origin
        """When the schedules' time 0 is, on the master's clock."""
        self.step = step
        self.horizon = horizon
        self.granted = dict.fromkeys(self.schedules, 0)
        """Per class: indices below this are granted."""
        self.next_at = 0.0
        """When the next grant is due."""
        self.ended: float | None = None
        """When the run stopped (None: it runs); figures stop there."""

    def stop(self, now: float) -> None:
        """The run stopped at ``now``: nothing more is granted or scheduled."""
        if self.ended is None:
            self.ended = now

    def _until(self, now: float) -> float:
        return now if self.ended is None else min(now, self.ended)

    def issue(self, pools: Sequence[tuple[str, int]], now: float) -> list[Grant]:
        """Grant what is due before ``now + horizon`` and not yet granted, among ``pools``
        (worker id, pool size; sizes of 0 are left out). With no pool, nothing is granted:
        those iterations wait for a worker, and are granted late (dropped by it) or not."""
        if now < self.next_at or self.ended is not None:
            return []
        self.next_at = now + self.step
        present = [(worker, pool) for worker, pool in pools if pool > 0]
        if not present:
            return []
        grants = []
        t = now + self.horizon - self.origin
        for name, schedule in self.schedules.items():
            end = schedule.end
            last = schedule.count(t if end is None else min(t, end))
            grants += split(self.granted[name], last, name, present)
            self.granted[name] = max(self.granted[name], last)
        return grants

    def scheduled(self, now: float) -> dict[str, int]:
        """Per class: iterations the schedule asked for up to ``now``."""
        t = self._until(now) - self.origin
        return {
            name: s.count(t if s.end is None else min(t, s.end))
            for name, s in self.schedules.items()
        }

    def target_rates(self, now: float) -> dict[str, float]:
        """Per class: the rate the schedule asks for at ``now``."""
        t = self._until(now) - self.origin
        return {name: s.rate_at(t) for name, s in self.schedules.items()}

    def finished(self, now: float) -> bool:
        """Whether every schedule has ended by ``now`` (never, when one is constant)."""
        ends = [s.end for s in self.schedules.values()]
        return all(end is not None and now - self.origin >= end for end in ends)

    def elapsed(self, now: float) -> float:
        """Seconds of schedule run by ``now`` (up to the last schedule's end)."""
        ends = [s.end for s in self.schedules.values()]
        t = max(0.0, self._until(now) - self.origin)
        if all(end is not None for end in ends):
            t = min(t, max(end or 0.0 for end in ends))
        return t
