"""One worker's arrival-rate iterations of one class: when each is due, started or dropped.

Responsibility: :class:`ClassArrivals` turns the master's grants (``horde.rate``) into a
queue of ``(index, due)`` on the worker's own monotonic clock, and keeps the counts. The
master's clock is mapped with the smallest ``receipt - sent_at`` seen in the run (a grant
delayed on the way never moves the schedule later). An iteration may start only within
``max_start_delay`` of its due time (:meth:`ClassArrivals.on_time`); one that cannot, for
want of a free user, is dropped, never started late. The gevent side
(:mod:`horde.worker.arrival`) sleeps until :meth:`ClassArrivals.next_due` and asks.
Pure: everything takes ``now``.

Imports: the standard library and horde.protocol.
"""

from __future__ import annotations

from collections import deque

from horde.protocol.rates import owned
from horde.protocol.ratewire import HordeRate


class ClassArrivals:
    """The pending iterations and the counts of one arrival-rate class on one worker."""

    def __init__(self, name: str, max_start_delay: float) -> None:
        self.name = name
        self.max_start_delay = max_start_delay
        self.pending: deque[tuple[int, float]] = deque()
        self.started = 0
        self.dropped = 0
        self.run_id = ""
        self._offset: float | None = None

    def grant(self, grant: HordeRate, now: float) -> int:
        """Queue the iterations ``grant`` gives this worker; return how many.

        A grant of another run starts the class over (queue and counts emptied).
        """
        if grant.run_id != self.run_id:
            self.run_id = grant.run_id
            self.pending.clear()
            self.started = self.dropped = 0
            self._offset = None
        offset = now - grant.sent_at
        if self._offset is None or offset < self._offset:
            self._offset = offset
        base = grant.origin + self._offset
        schedule = grant.schedule
        added = 0
        for k in owned(grant.first, grant.last, grant.period, grant.offsets):
            self.pending.append((k, base + schedule.due(k)))
            added += 1
        return added

    def next_due(self) -> float | None:
        """When the next pending iteration is due (None: none pending)."""
        return self.pending[0][1] if self.pending else None

    def pop_due(self, now: float) -> tuple[int, float] | None:
        """The next iteration if it is due by ``now`` (removed from the queue), else None."""
        if self.pending and self.pending[0][1] <= now:
            return self.pending.popleft()
        return None

    def on_time(self, due: float, now: float) -> bool:
        """Whether an iteration due at ``due`` may still start at ``now``."""
        return now - due <= self.max_start_delay

    def start(self, due: float, now: float) -> float | None:
        """Start the iteration due at ``due`` now: its lateness (s), or None if it is too
        late (then it is counted as dropped)."""
        if not self.on_time(due, now):
            self.dropped += 1
            return None
        self.started += 1
        return max(0.0, now - due)

    def drop(self) -> None:
        """Count one iteration that found no free user in time."""
        self.dropped += 1

    def clear(self) -> None:
        """Forget the pending iterations (the users stopped); counts stay."""
        self.pending.clear()
