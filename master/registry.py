"""Worker registry: who is connected, in what state, and who has gone silent.

Responsibility: the master's worker records and liveness policy. A record is immutable
(a change replaces it), so a reader's copy of :meth:`Registry.all` is a snapshot of the
workers at that moment, taken at the cost of one list copy. Handlers call
:meth:`Registry.register`, :meth:`Registry.heartbeat` and friends with the master clock's
``now``; a loop calls :meth:`Registry.sweep` with ``now`` and reacts to the
:class:`WorkerMissing` events it returns. A worker is missing once it has been silent for
more than ``liveness * interval`` seconds (Locust's ``HEARTBEAT_LIVENESS`` x
``HEARTBEAT_INTERVAL``, 3 x 1 s). Nothing here does I/O, sleeps or reads a clock.

Imports: the standard library and horde.protocol (:class:`WorkerState`, re-exported here).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from types import MappingProxyType
from typing import NamedTuple

from horde.protocol.defaults import DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_LIVENESS
from horde.protocol.states import WorkerState

ACTIVE_STATES = frozenset({WorkerState.READY, WorkerState.SPAWNING, WorkerState.RUNNING})


NO_USERS: Mapping[str, int] = MappingProxyType({})
"""A worker's users per class when it runs none."""


class WorkerRecord(NamedTuple):
    """What the master knows about one worker; times are on the master's clock.

    Immutable: the registry replaces a worker's record when it changes. (A named tuple:
    a heartbeat makes one, and its constructor is the cheapest of the immutable kinds.)
    """

    worker_id: str
    index: int  # type: ignore[assignment]  # the ack index; hides tuple.index
    state: WorkerState
    last_heartbeat: float
    connected_at: float
    cpu_usage: float = 0.0
    memory_usage: int = 0
    user_count: int = 0
    user_classes_count: Mapping[str, int] = NO_USERS
    loop_lag: float | None = None
    is_horde: bool = False
    version: str = ""
    key: str | None = None
    """The fingerprint of the CURVE key it registered with (None on a plain master)."""

    @property
    def host(self) -> str:
        """The worker's host: its id up to the first ``_`` (Locust's convention)."""
        return self.worker_id.split("_")[0]


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    """Outcome of a heartbeat: whether the worker is known and whether it came back.

    Unknown workers get no reply in Locust; ``revived`` is True when the worker had been
    marked missing, so the caller may re-add it to dispatch.
    """

    known: bool
    revived: bool = False
    record: WorkerRecord | None = None


@dataclass(frozen=True, slots=True)
class WorkerMissing:
    """Event: a worker went silent for longer than the liveness timeout."""

    worker_id: str
    index: int
    previous_state: WorkerState
    last_heartbeat: float
    silent_for: float


def count_states(records: Iterable[WorkerRecord]) -> dict[WorkerState, int]:
    """How many of ``records`` are in each state; every state is listed, zeros included."""
    counts = dict.fromkeys(WorkerState, 0)
    counts.update(Counter(map(attrgetter("state"), records)))
    return counts


class Registry:
    """The master's worker records, ack indexes and liveness sweep.

    Indexes are 0-based, handed out in registration order (Locust's ack index), and kept
    while the worker is known: a worker registering again, or back from missing, keeps
    its index. :meth:`remove` forgets the worker entirely, so worker churn cannot grow
    the registry; one that registers after its removal gets a new index. Methods on an
    unknown worker return None rather than raising, since messages from unknown workers
    are routine.
    """

    def __init__(
        self,
        interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        liveness: int = DEFAULT_HEARTBEAT_LIVENESS,
    ) -> None:
        if isinstance(interval, bool) or not math.isfinite(interval) or interval <= 0:
            raise ValueError(f"interval must be a finite number > 0, got {interval!r}")
        if not isinstance(liveness, int) or isinstance(liveness, bool) or liveness < 1:
            raise ValueError(f"liveness must be an integer >= 1, got {liveness!r}")
        self.interval = interval
        self.liveness = liveness
        self._records: dict[str, WorkerRecord] = {}  # in index order: new ones come last
        self._next_index = 0

    @property
    def timeout(self) -> float:
        """Seconds of silence after which a worker is missing: ``liveness * interval``."""
        return self.liveness * self.interval

    def register(
        self,
        worker_id: str,
        now: float,
        *,
        is_horde: bool = False,
        version: str = "",
        key: str | None = None,
    ) -> WorkerRecord:
        """Record a ``client_ready``: a fresh, ready record (a known worker keeps its index).

        As in Locust, a re-registering worker starts over with no users; its last CPU
        and memory figures are kept (they describe the process, not the registration).
        """
        previous = self._records.get(worker_id)
        if previous is None:
            index = self._next_index
            self._next_index += 1
        else:
            index = previous.index
        record = WorkerRecord(
            worker_id=worker_id,
            index=index,
            state=WorkerState.READY,
            last_heartbeat=now,
            connected_at=now,
            cpu_usage=0.0 if previous is None else previous.cpu_usage,
            memory_usage=0 if previous is None else previous.memory_usage,
            is_horde=is_horde,
            version=version,
            key=key,
        )
        self._records[worker_id] = record
        return record

    def heartbeat(
        self,
        worker_id: str,
        now: float,
        *,
        state: WorkerState | str,
        cpu: float,
        memory: int,
        user_count: int | None = None,
        loop_lag: float | None = None,
    ) -> HeartbeatResult:
        """Record a heartbeat: refresh the clock, overwrite the reported state and usage.

        ``state`` may be a Locust string (``ValueError`` if it is not a known state).
        """
        record = self._records.get(worker_id)
        if record is None:
            return HeartbeatResult(known=False)
        new_state = state if type(state) is WorkerState else WorkerState(state)
        revived = record.state is WorkerState.MISSING
        record = self._records[worker_id] = WorkerRecord(
            worker_id,
            record.index,
            new_state,
            now,
            record.connected_at,
            cpu,
            memory,
            record.user_count if user_count is None else user_count,
            record.user_classes_count,
            record.loop_lag if loop_lag is None else loop_lag,
            record.is_horde,
            record.version,
            record.key,
        )
        return HeartbeatResult(known=True, revived=revived, record=record)

    def update_users(
        self, worker_id: str, user_classes_count: Mapping[str, int], user_count: int | None = None
    ) -> WorkerRecord | None:
        """Record the users a worker reports (``user_count`` defaults to the sum)."""
        record = self._records.get(worker_id)
        if record is None:
            return None
        total = sum(user_classes_count.values()) if user_count is None else user_count
        counts = MappingProxyType(dict(user_classes_count)) if user_classes_count else NO_USERS
        record = self._records[worker_id] = record._replace(
            user_classes_count=counts, user_count=total
        )
        return record

    def set_state(self, worker_id: str, state: WorkerState | str) -> WorkerRecord | None:
        """Set a worker's state (e.g. after ``spawning`` or ``client_stopped``)."""
        record = self._records.get(worker_id)
        if record is not None:
            record = self._records[worker_id] = record._replace(state=WorkerState(state))
        return record

    def remove(self, worker_id: str) -> WorkerRecord | None:
        """Forget a worker entirely (its index too); returns its last record."""
        return self._records.pop(worker_id, None)

    def get(self, worker_id: str) -> WorkerRecord | None:
        """The worker's record, or None."""
        return self._records.get(worker_id)

    def __contains__(self, worker_id: object) -> bool:
        return worker_id in self._records

    def __len__(self) -> int:
        return len(self._records)

    def all(self) -> list[WorkerRecord]:
        """Every record, in index order (kept in that order, so this is a copy, not a sort)."""
        return list(self._records.values())

    def active(self) -> list[WorkerRecord]:
        """Records the dispatcher may use (ready, spawning, running), in index order."""
        return [record for record in self.all() if record.state in ACTIVE_STATES]

    def count_active(self) -> int:
        """How many records :meth:`active` would return (without building the list)."""
        return sum(1 for record in self._records.values() if record.state in ACTIVE_STATES)

    def counts_by_state(self) -> dict[WorkerState, int]:
        """How many workers are in each state; every state is listed, zeros included."""
        return count_states(self._records.values())

    def sweep(self, now: float) -> list[WorkerMissing]:
        """Mark workers silent for more than :attr:`timeout` as missing; one event each.

        A missing worker's reported users are cleared (as Locust does), since they no
        longer count; later sweeps ignore it until a heartbeat revives it.
        """
        events = []
        for record in self.all():
            silent_for = now - record.last_heartbeat
            if record.state is WorkerState.MISSING or silent_for <= self.timeout:
                continue
            events.append(
                WorkerMissing(
                    worker_id=record.worker_id,
                    index=record.index,
                    previous_state=record.state,
                    last_heartbeat=record.last_heartbeat,
                    silent_for=silent_for,
                )
            )
            self._records[record.worker_id] = record._replace(
                state=WorkerState.MISSING, user_classes_count=NO_USERS, user_count=0
            )
        return events
