"""Generator health: was a worker too busy for its own timings to be trusted?

Responsibility: :class:`SaturationWatch` reads each worker's reported CPU and event-loop
lag, sampled about once a second during a run, and flags the run once any worker stayed
above :data:`CPU_LIMIT` percent CPU or :data:`LAG_LIMIT` seconds of loop lag for more than
:data:`SATURATED_FOR` seconds in a row. A flag stays for the rest of the run: response
times measured meanwhile include the generator's own delay. Pure: ``now`` is an argument.

Imports: the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CPU_LIMIT",
    "LAG_LIMIT",
    "SATURATED_FOR",
    "SATURATION_NOTE",
    "Saturation",
    "SaturationWatch",
]

CPU_LIMIT = 90.0
"""A worker's CPU (percent of one core) above which it counts as saturated."""
LAG_LIMIT = 0.100
"""A worker's event-loop lag (seconds) above which it counts as saturated."""
SATURATED_FOR = 5.0
"""How long (seconds) a worker must stay saturated for the run to be flagged."""
SATURATION_NOTE = "the generator was saturated; response times include its own delay"
"""The sentence the summary and the report show for a flagged run."""


@dataclass(frozen=True, slots=True)
class Saturation:
    """The first stretch that flagged the run: which worker, from when, for how long."""

    worker_id: str
    since: float
    lasted: float
    cpu: float
    """The worker's CPU (percent) at the moment it was flagged."""
    loop_lag: float | None
    """Its loop lag (seconds) at that moment."""

    def describe(self) -> str:
        """One line for the summary and the report."""
        lag = "" if self.loop_lag is None else f", loop lag {self.loop_lag * 1000:.0f} ms"
        return (
            f"{SATURATION_NOTE} (worker {self.worker_id}: CPU {self.cpu:.0f}%{lag}, "
            f"over the limits for {self.lasted:.0f} s)"
        )


def over_limits(cpu: float, loop_lag: float | None) -> bool:
    """Whether one sample of a worker is saturated."""
    return cpu > CPU_LIMIT or (loop_lag is not None and loop_lag > LAG_LIMIT)


class SaturationWatch:
    """Per worker, since when it has been over the limits; the run's first flag."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}
        self.flag: Saturation | None = None
        """The first stretch that lasted longer than :data:`SATURATED_FOR` (None: none)."""

    @property
    def ok(self) -> bool:
        """True while no worker was saturated for too long."""
        return self.flag is None

    def observe(self, worker_id: str, cpu: float, loop_lag: float | None, now: float) -> None:
        """One sample of one worker at ``now``."""
        if not over_limits(cpu, loop_lag):
            self._since.pop(worker_id, None)
            return
        since = self._since.setdefault(worker_id, now)
        if self.flag is None and now - since > SATURATED_FOR:
            self.flag = Saturation(worker_id, since, now - since, cpu, loop_lag)

    def forget(self, worker_id: str) -> None:
        """A worker that left (or went missing): its stretch ends."""
        self._since.pop(worker_id, None)
