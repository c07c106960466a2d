"""The arrival-rate schedule: when each iteration of an arrival-rate class is due.

Responsibility: a :class:`Schedule` is a fleet-wide rate of iterations per second over
time since its origin, a start rate followed by linear ramps (``stages``: each
``(seconds, rate)`` goes from the rate before it to ``rate`` over ``seconds``); with no
stages the start rate holds for ever. Iterations are numbered from 0 across the whole
fleet: :meth:`Schedule.count` is how many are due before ``t`` and :meth:`Schedule.due`
when iteration ``k`` is. The master and the workers evaluate the same schedule (it travels
in each ``horde.rate`` grant), so a worker knows the due time of every index it is
granted. :func:`owned` lists the indices of a grant that one worker owns. Pure: no clock.

Imports: the standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

Stage = tuple[float, float]
"""One linear ramp: (its length in seconds, the rate it reaches, iterations/s)."""

MAX_RATE = 1_000_000.0
"""Highest rate a schedule may ask for, iterations per second."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """A fleet-wide rate of iterations per second over time (seconds since its origin)."""

    start_rate: float = 0.0
    stages: tuple[Stage, ...] = ()

    def __post_init__(self) -> None:
        rates = [self.start_rate, *(rate for _, rate in self.stages)]
        for rate in rates:
            if not (isinstance(rate, int | float) and 0 <= rate <= MAX_RATE):
                raise ValueError(f"a rate must be between 0 and {MAX_RATE:g}/s, got {rate!r}")
        for seconds, _ in self.stages:
            if not (isinstance(seconds, int | float) and 0 < seconds < math.inf):
                raise ValueError(f"a stage must last a positive time, got {seconds!r}")
        if not self.stages and self.start_rate <= 0:
            raise ValueError("a constant arrival rate must be above 0")

    @property
    def end(self) -> float | None:
        """When the schedule ends (seconds since its origin); None: it never does."""
        return sum(seconds for seconds, _ in self.stages) if self.stages else None

    def scaled(self, factor: float) -> Schedule:
        """This schedule with every rate multiplied by ``factor`` (a class's share)."""
        return Schedule(self.start_rate * factor, tuple((s, r * factor) for s, r in self.stages))

    def _segments(self) -> Iterator[tuple[float, float, float, float, float]]:
        """(start, length, rate at start, rate at end, iterations before start) per stage."""
        start, before, rate = 0.0, 0.0, self.start_rate
        for seconds, target in self.stages:
            yield start, seconds, rate, target, before
            before += seconds * (rate + target) / 2
            start += seconds
            rate = target

    def rate_at(self, t: float) -> float:
        """The rate asked for at ``t`` (0 before the origin and after the end)."""
        if t < 0:
            return 0.0
        if not self.stages:
            return self.start_rate
        for start, seconds, r0, r1, _ in self._segments():
            if t < start + seconds:
                return r0 + (r1 - r0) * (t - start) / seconds
        return 0.0

    def exact_count(self, t: float) -> float:
        """Iterations due by ``t``, as a real number (the integral of the rate)."""
        if t <= 0:
            return 0.0
        if not self.stages:
            return self.start_rate * t
        total = 0.0
        for start, seconds, r0, r1, before in self._segments():
            u = min(t - start, seconds)
            total = before + r0 * u + (r1 - r0) * u * u / (2 * seconds)
            if t < start + seconds:
                break
        return total

    def count(self, t: float) -> int:
        """How many iterations are due strictly before ``t`` (indices ``0 .. count - 1``)."""
        return math.ceil(self.exact_count(t) - 1e-9)

    def due(self, k: int) -> float:
        """When iteration ``k`` (0-based) is due: the first ``t`` with ``exact_count(t) >= k``.

        Raises ValueError for an index the schedule never reaches.
        """
        if k <= 0:
            return 0.0
        if not self.stages:
            return k / self.start_rate
        for start, seconds, r0, r1, before in self._segments():
            after = before + seconds * (r0 + r1) / 2
            if k <= after + 1e-9:
                need = max(0.0, k - before)
                a = (r1 - r0) / (2 * seconds)
                root = math.sqrt(max(0.0, r0 * r0 + 4 * a * need))
                u = 2 * need / (r0 + root) if r0 + root > 0 else 0.0
                return start + min(max(u, 0.0), seconds)
        raise ValueError(f"iteration {k} is beyond the schedule's end")


def owned(first: int, last: int, period: int, offsets: Sequence[int]) -> Iterator[int]:
    """The indices in ``[first, last)`` whose position ``k % period`` is in ``offsets``:
    one worker's part of a grant, in order. (The position is the index's own, not its
    place in the grant, so consecutive grants among the same pools interleave evenly.)"""
    chosen = sorted(set(offsets))
    for base in range(first - first % period, last, period):
        for offset in chosen:
            k = base + offset
            if k >= last:
                break
            if k >= first:
                yield k
