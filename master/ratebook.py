"""What the workers report about arrival-rate iterations, and the run's figures from it.

Responsibility: :class:`RateBook` keeps each horde worker's arrival pool (the weight of
its share of rate) and, per class, the iterations it started and dropped in the current
run (absolute counts from ``horde.arrivals``, so the last report is the truth). A
forgotten worker's counts are kept under no name, so totals survive churn without
keeping its id. :meth:`RateBook.figures` gives, per class, the target rate now, the
iterations scheduled so far, started, dropped and the achieved rate: the
:class:`ArrivalFigures` the snapshot carries for every output. Pure.

Imports: the standard library and horde.master / horde.protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

from horde.master.ratelease import RateLease
from horde.protocol.ratewire import HordeArrivals

TOTAL = "Total"
"""The name of the row that adds every class up."""


@dataclass(frozen=True, slots=True)
class ArrivalFigures:
    """One arrival-rate class's iterations in the run so far (or the total of all)."""

    user_class: str
    target_rate: float
    """Iterations per second the schedule asks for now."""
    scheduled: int
    """Iterations the schedule asked for up to now."""
    started: int
    """Iterations started (each within the max start delay of its due time)."""
    dropped: int
    """Iterations not started, for want of a free user within the max start delay."""
    achieved_rate: float
    """Iterations started per second of schedule run."""


def total(rows: tuple[ArrivalFigures, ...]) -> ArrivalFigures:
    """The sum of ``rows`` (rates added), named :data:`TOTAL`."""
    return ArrivalFigures(
        TOTAL,
        sum(r.target_rate for r in rows),
        sum(r.scheduled for r in rows),
        sum(r.started for r in rows),
        sum(r.dropped for r in rows),
        sum(r.achieved_rate for r in rows),
    )


class RateBook:
    """Arrival pools and iteration counts per worker, for the current run."""

    def __init__(self) -> None:
        self.pools: dict[str, int] = {}
        self._counts: dict[str, dict[str, tuple[int, int]]] = {}
        self._departed: dict[str, tuple[int, int]] = {}
        self.run_id = ""

    def report(self, worker_id: str, message: HordeArrivals) -> None:
        """Take a worker's report: its pool, and its counts if they are of this run."""
        self.pools[worker_id] = message.pool
        if message.run_id and message.run_id == self.run_id:
            names = set(message.started) | set(message.dropped)
            self._counts[worker_id] = {
                name: (message.started.get(name, 0), message.dropped.get(name, 0)) for name in names
            }

    def forget(self, worker_id: str) -> None:
        """``worker_id`` left: its pool goes, its counts stay in the totals, nameless."""
        self.pools.pop(worker_id, None)
        for name, (started, dropped) in self._counts.pop(worker_id, {}).items():
            before = self._departed.get(name, (0, 0))
            self._departed[name] = (before[0] + started, before[1] + dropped)

    def new_run(self, run_id: str) -> None:
        """A new run: counts start over (pools stay)."""
        self.run_id = run_id
        self._counts.clear()
        self._departed.clear()

    def counts(self) -> dict[str, tuple[int, int]]:
        """Per class: (started, dropped), every worker's added up."""
        out = dict(self._departed)
        for per_class in self._counts.values():
            for name, (started, dropped) in per_class.items():
                before = out.get(name, (0, 0))
                out[name] = (before[0] + started, before[1] + dropped)
        return out

    def figures(self, lease: RateLease | None, now: float) -> tuple[ArrivalFigures, ...]:
        """Per class of ``lease`` (none without one), the run's figures at ``now``."""
        if lease is None:
            return ()
        counts = self.counts()
        scheduled = lease.scheduled(now)
        rates = lease.target_rates(now)
        elapsed = lease.elapsed(now)
        rows = []
        for name in lease.schedules:
            started, dropped = counts.get(name, (0, 0))
            achieved = started / elapsed if elapsed > 0 else 0.0
            rows.append(
                ArrivalFigures(name, rates[name], scheduled[name], started, dropped, achieved)
            )
        return tuple(rows)
