"""What the master looks like at one moment: the immutable view every reader uses.

Responsibility: :class:`RunSnapshot` (run state, host, user counts, target) and
:class:`MasterSnapshot` (the run, the workers table as :class:`WorkerRow` rows,
counters, exceptions, history, the script's classes), built by the coordinator's
``snapshot(now)`` and ``run_snapshot(now)``. The HTTP views, ``/metrics``, the
reports and the console read a snapshot, never the coordinator's live fields. The merged
request figures (:class:`~horde.master.stats.MergedStats` and the corrected series) are
passed through as they are: they are read with their own methods (which fold what was
merged) and are too large to copy on every read.

Imports: the standard library and horde.master.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from operator import attrgetter
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from horde.master.config import MasterSettings
from horde.master.corrected import CorrectedStats
from horde.master.dispatch import UserClassSpec
from horde.master.exceptions import GroupedException
from horde.master.history import HistoryPoint
from horde.master.registry import ACTIVE_STATES, WorkerRecord, WorkerState
from horde.master.stats import MergedStats
from horde.master.swarm import RunState

if TYPE_CHECKING:
    from horde.master.coordinator import Coordinator


class WorkerRow(NamedTuple):
    """One worker in the workers table; the fields are Locust's keys plus horde's, in order.

    A named tuple rather than a frozen dataclass: thousands are made per snapshot, and a
    tuple is made several times faster. (Its ``index`` field hides ``tuple.index``.)
    """

    id: str
    state: str
    user_count: int
    cpu_usage: float
    memory_usage: int
    index: int  # type: ignore[assignment]  # the field Locust names so
    loop_lag: float | None
    horde: bool
    requests: int


_RECORD_FIELDS = attrgetter(
    "worker_id", "state", "user_count", "cpu_usage", "memory_usage", "index", "loop_lag", "is_horde"
)
"""A record's row fields but the last, in :class:`WorkerRow`'s order, read in one call."""


def worker_rows(
    records: Iterable[WorkerRecord], requests: Mapping[str, int]
) -> tuple[WorkerRow, ...]:
    """The rows of ``records``, with each worker's request count from ``requests``.

    Made with ``tuple.__new__`` from one ``attrgetter`` call per record (a third faster
    than the named tuple's constructor: 5,000 workers take about 2 ms). The state is
    the :class:`~horde.master.registry.WorkerState` itself, a ``str`` of Locust's value.
    """
    get = requests.get
    new = tuple.__new__
    return tuple([new(WorkerRow, (*_RECORD_FIELDS(r), get(r.worker_id, 0))) for r in records])


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


@dataclass(frozen=True, slots=True)
class MasterSnapshot:
    """The master at one moment: the run, the workers table and the figures."""

    run: RunSnapshot
    workers: tuple[WorkerRow, ...]
    """Every known worker, missing ones included, in index order."""
    workers_by_state: Mapping[WorkerState, int]
    """How many workers are in each state, zeros included."""
    running_classes: Mapping[str, int]
    """Users per class on the workers the dispatcher may use."""
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


def take_run_snapshot(coordinator: Coordinator, now: float) -> RunSnapshot:
    """The run of ``coordinator`` at ``now``."""
    c = coordinator
    user_count = active = 0
    for record in c.registry.all():
        if record.state is not WorkerState.MISSING:
            user_count += record.user_count
        if record.state in ACTIVE_STATES:
            active += 1
    return RunSnapshot(now, c.state, c.run_id, c.host, user_count, c.target_total, active)


def take_snapshot(coordinator: Coordinator, now: float) -> MasterSnapshot:
    """What ``coordinator`` and its components hold at ``now``, copied into a snapshot."""
    c = coordinator
    records = c.registry.all()
    running: dict[str, int] = {}
    for record in records:
        if record.state in ACTIVE_STATES:
            for name, count in record.user_classes_count.items():
                running[name] = running.get(name, 0) + count
    return MasterSnapshot(
        run=take_run_snapshot(c, now),
        workers=worker_rows(records, c.intake.worker_requests),
        workers_by_state=MappingProxyType(c.registry.counts_by_state()),
        running_classes=MappingProxyType(running),
        counters=MappingProxyType(c.counters.copy()),
        exceptions=tuple(replace(g, nodes=set(g.nodes)) for g in c.exceptions.groups()),
        history=tuple(c.history.points()),
        stats=c.stats,
        corrected=c.corrected,
        settings=c.settings,
        user_classes=tuple(c.user_classes),
        shape_names=tuple(sorted(c.shapes)),
    )
