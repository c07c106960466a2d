"""Ramp pacing: when the master changes the total user count, and to what.

Responsibility: Locust's spawn-rate pacing as data. A :class:`RampPlan` moves the total
from ``start`` toward ``target`` by ``max(1, floor(rate))`` users per step (the last step
clipped), one step every ``step / rate`` seconds, the first at ``started_at``. Ramping
down uses the same rate. Steps are computed on demand, so a huge target costs nothing up
front. The plan also keeps a cursor of the steps already handed out, so a loop can call
:meth:`RampPlan.next_step` with ``now`` until it returns None. Times are on whatever clock
the caller passes in; nothing here reads a clock or sleeps.

Imports: the standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RampStep:
    """One step of a ramp: at time ``at`` the total becomes ``total``; ``index`` counts from 0."""

    at: float
    total: int
    index: int


@dataclass(slots=True)
class RampPlan:
    """The paced steps from ``start`` users to ``target`` users at ``rate`` users/s.

    When ``start == target`` the plan has a single step at ``started_at`` (as Locust
    dispatches once), so applying the plan always sends at least one placement. The
    step queries (:meth:`step_at`, :meth:`steps`, :meth:`current_step`) are pure; only
    :meth:`next_step` moves the cursor behind :attr:`done` and :attr:`next_at`.
    """

    start: int
    target: int
    rate: float
    started_at: float = 0.0
    _handed_out: int = field(default=0, init=False, repr=False)  # steps returned so far

    def __post_init__(self) -> None:
        for name in ("start", "target"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        rate = self.rate
        if (
            not isinstance(rate, int | float)
            or isinstance(rate, bool)
            or not math.isfinite(rate)
            or rate <= 0
        ):
            raise ValueError(f"rate must be a finite number > 0, got {rate!r}")
        if not isinstance(self.started_at, int | float) or not math.isfinite(self.started_at):
            raise ValueError(f"started_at must be a finite number, got {self.started_at!r}")

    @property
    def step_size(self) -> int:
        """Users added or removed per step: ``max(1, floor(rate))``."""
        return max(1, math.floor(self.rate))

    @property
    def interval(self) -> float:
        """Seconds between steps: ``step_size / rate``."""
        return self.step_size / self.rate

    @property
    def step_count(self) -> int:
        """Number of steps, at least one."""
        return max(1, -(-abs(self.target - self.start) // self.step_size))

    @property
    def ends_at(self) -> float:
        """Time of the last step."""
        return self._time(self.step_count - 1)

    def _time(self, index: int) -> float:
        return self.started_at + index * self.interval

    def step_at(self, index: int) -> RampStep:
        """The step with this 0-based index; ``IndexError`` outside the plan."""
        if not 0 <= index < self.step_count:
            raise IndexError(f"step index {index} outside 0..{self.step_count - 1}")
        moved = min((index + 1) * self.step_size, abs(self.target - self.start))
        total = self.start + moved if self.target >= self.start else self.start - moved
        return RampStep(at=self._time(index), total=total, index=index)

    def steps(self) -> Iterator[RampStep]:
        """Every step in order, computed lazily."""
        for index in range(self.step_count):
            yield self.step_at(index)

    def _index_at(self, now: float) -> int:
        """Index of the latest step due at ``now`` (at <= now), or -1 before the first."""
        last = self.step_count - 1
        if now >= self._time(last):
            return last
        if now < self.started_at:
            return -1
        index = min(last, int((now - self.started_at) / self.interval))
        while index < last and self._time(index + 1) <= now:
            index += 1
        while index >= 0 and self._time(index) > now:
            index -= 1
        return index

    def current_step(self, now: float) -> RampStep | None:
        """The latest step due at ``now``, or None before the first; ignores the cursor."""
        index = self._index_at(now)
        return self.step_at(index) if index >= 0 else None

    def next_step(self, now: float) -> RampStep | None:
        """Hand out the step to apply now, or None if no new step is due at ``now``.

        Returns the latest due step not handed out before and moves the cursor past it.
        A caller that wakes late therefore gets one step, the newest, and the totals it
        missed are skipped rather than sent in a burst; a second call at the same ``now``
        returns None.
        """
        index = self._index_at(now)
        if index < self._handed_out:
            return None
        self._handed_out = index + 1
        return self.step_at(index)

    @property
    def done(self) -> bool:
        """Whether :meth:`next_step` has handed out the last step."""
        return self._handed_out >= self.step_count

    @property
    def next_at(self) -> float:
        """When the next step not yet handed out is due (``math.inf`` once done)."""
        return math.inf if self.done else self._time(self._handed_out)

    def total_at(self, now: float) -> int:
        """The total the plan calls for at ``now`` (``start`` before the first step)."""
        step = self.current_step(now)
        return self.start if step is None else step.total
