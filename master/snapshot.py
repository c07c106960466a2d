"""What the master looks like at one moment: the immutable view every reader uses.

Responsibility: :class:`RunSnapshot` (run state, host, user counts, target) and
:class:`MasterSnapshot` (the run, every worker's record and request count, counters,
exceptions, history, the script's classes), built by the coordinator's
``snapshot(now)`` and ``run_snapshot(now)``. The HTTP views, ``/metrics``, the reports
and the console read a snapshot, never the coordinator's live fields. Worker records are
immutable (the registry replaces a record when it changes), so the workers table costs
one copy of a list of references. The merged request figures
(:class:`~horde.master.stats.MergedStats` and the corrected series) are passed through
as they are: they are read with their own methods (which fold what was merged) and are
too large to copy on every read.

Imports: the standard library and horde.master.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from operator import attrgetter
from types import MappingProxyType
from typing import TYPE_CHECKING

from horde.master.config import MasterSettings
from horde.master.corrected import CorrectedStats
from horde.master.dispatch import UserClassSpec
from horde.master.exceptions import GroupedException
from horde.master.history import HistoryPoint
from horde.master.ratebook import ArrivalFigures, total
from horde.master.registry import ACTIVE_STATES, WorkerRecord, WorkerState, count_states
from horde.master.stats import MergedStats
from horde.master.swarm import RunEnd, RunState
from horde.master.threshold_syntax import Threshold
from horde.master.verdict import VerdictReport

if TYPE_CHECKING:
    from horde.master.coordinator import Coordinator

_STATE = attrgetter("state")
_USERS = attrgetter("user_count")


@dataclass(frozen=True, slots=True)
class RunSnapshot:
    """The run at one moment (``now`` on the master's clock): cheap to take."""

    now: float
    state: RunState
    run_id: str
    host: str
    user_count: int
    """Users the present workers report running (missing workers excluded)."""
    target_total: int
    """Users the run asks for (the ramp's goal; 0 when stopped)."""
    worker_count: int
    """Workers the dispatcher may use (ready, spawning, running)."""
    end: RunEnd | None = None
    """How the last run ended (None while it runs, or before the first)."""


@dataclass(frozen=True, slots=True)
class MasterSnapshot:
    """The master at one moment: the run, the workers and the figures."""

    run: RunSnapshot
    workers: tuple[WorkerRecord, ...]
    """Every known worker's record, missing ones included, in index order."""
    worker_requests: Mapping[str, int]
    """Requests each present worker reported in this stats epoch."""
    counters: Mapping[str, int]
    exceptions: tuple[GroupedException, ...]
    """The exceptions of this stats epoch, most frequent first (copies)."""
    history: tuple[HistoryPoint, ...]
    stats: MergedStats
    corrected: CorrectedStats
    settings: MasterSettings
    user_classes: tuple[UserClassSpec, ...]
    shape_names: tuple[str, ...]
    """The script's load shapes, sorted."""
    thresholds: tuple[Threshold, ...] = ()
    """The current (or last) run's thresholds."""
    verdict: VerdictReport = field(default_factory=VerdictReport)
    """The run's thresholds and generator health, as last judged (:mod:`horde.master.verdict`)."""
    arrivals: tuple[ArrivalFigures, ...] = ()
    """Per arrival-rate class of the run: target rate, iterations scheduled, started and
    dropped, achieved rate (empty when the run has no arrival-rate class)."""

    @property
    def arrivals_total(self) -> ArrivalFigures | None:
        """Every arrival-rate class added up (``dropped`` is ``dropped_iterations``); None
        when the run has no arrival-rate class."""
        return total(self.arrivals) if self.arrivals else None

    @property
    def workers_by_state(self) -> dict[WorkerState, int]:
        """How many workers are in each state, every state listed (zeros included)."""
        return count_states(self.workers)

    @property
    def running_classes(self) -> dict[str, int]:
        """Users per class on the workers the dispatcher may use."""
        running: dict[str, int] = {}
        for record in self.workers:
            if record.state in ACTIVE_STATES:
                for name, count in record.user_classes_count.items():
                    running[name] = running.get(name, 0) + count
        return running


def _run(c: Coordinator, now: float, records: list[WorkerRecord]) -> RunSnapshot:
    """The run of ``c`` at ``now``, its workers being ``records``."""
    missing = WorkerState.MISSING
    states = list(map(_STATE, records))
    users = list(map(_USERS, records))
    user_count = sum([n for state, n in zip(states, users, strict=True) if state is not missing])
    active = sum([1 for state in states if state in ACTIVE_STATES])
    return RunSnapshot(now, c.state, c.run_id, c.host, user_count, c.target_total, active, c.end)


def take_run_snapshot(coordinator: Coordinator, now: float) -> RunSnapshot:
    """The run of ``coordinator`` at ``now``."""
    return _run(coordinator, now, coordinator.registry.all())


def take_snapshot(coordinator: Coordinator, now: float) -> MasterSnapshot:
    """What ``coordinator`` and its components hold at ``now``, copied into a snapshot."""
    c = coordinator
    records = c.registry.all()
    return MasterSnapshot(
        run=_run(c, now, records),
        workers=tuple(records),
        worker_requests=MappingProxyType(dict(c.intake.worker_requests)),
        counters=MappingProxyType(c.counters.copy()),
        exceptions=tuple(replace(g, nodes=set(g.nodes)) for g in c.exceptions.groups()),
        history=tuple(c.history.points()),
        stats=c.stats,
        corrected=c.corrected,
        settings=c.settings,
        user_classes=tuple(c.user_classes),
        shape_names=tuple(sorted(c.shapes)),
        thresholds=c.thresholds,
        verdict=c.verdict.report,
        arrivals=c.ratebook.figures(c.rates, now),
    )
