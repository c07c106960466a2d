"""The worker's arrival-rate runner: iterations started on time from a pool of users.

Responsibility: :class:`ArrivalRunner` takes the master's ``horde.rate`` grants and, per
arrival-rate class, keeps a pool of ``arrival_pool`` pre-started users (a
:class:`~horde.worker.pool.UserPool` of a gated subclass of the script's class) and one
scheduler greenlet. The scheduler sleeps until the next iteration is due and hands it to a
free user; a user's ``wait_time`` is its wait for the next iteration. An iteration that
finds no free user within ``max_start_delay`` of its due time is dropped, and a user that
wakes too late drops it too (:class:`~horde.worker.arrivalplan.ClassArrivals` decides):
none starts late. A started iteration carries its global index (``X-Horde-Iteration``
on its HTTP requests) and its lateness, so its requests also go into the corrected series,
timed from the scheduled start. :meth:`ArrivalRunner.report` is the ``horde.arrivals``
message of the counts.

Imports: the standard library, gevent, structlog, horde.protocol, the user API and
horde.worker (arrivalplan, config, pool).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import gevent
import gevent.event
import gevent.queue
import structlog

from horde.protocol.ratewire import HordeArrivals, HordeRate
from horde.worker.api.environment import Environment
from horde.worker.api.pacing import GATE_ATTR, ITERATION_ATTR, LATENESS_ATTR
from horde.worker.api.users import User
from horde.worker.arrivalplan import ClassArrivals
from horde.worker.config import DEFAULT_ARRIVAL_POOL, DEFAULT_MAX_START_DELAY
from horde.worker.pool import ErrorCallback, UserPool

log = structlog.get_logger("horde.worker")

_INBOX = "_horde_inbox"

Inbox = gevent.queue.Queue


class _Class:
    """One class's plan, free users, wake-up event, pool and scheduler greenlet."""

    def __init__(self, plan: ClassArrivals, pool: UserPool) -> None:
        self.plan = plan
        self.pool = pool
        self.idle: gevent.queue.Queue[Inbox] = gevent.queue.Queue()
        self.wake = gevent.event.Event()
        self.scheduler: gevent.Greenlet | None = None


class ArrivalRunner:
    """Runs one worker's share of the arrival-rate iterations."""

    def __init__(
        self,
        environment: Environment,
        user_classes: Mapping[str, type[User]],
        *,
        pool_size: int = DEFAULT_ARRIVAL_POOL,
        max_start_delay: float = DEFAULT_MAX_START_DELAY,
        monotonic: Callable[[], float] = time.monotonic,
        on_error: ErrorCallback | None = None,
    ) -> None:
        """Keep the parts; no users, no greenlets until the first grant."""
        self.environment = environment
        self.user_classes = dict(user_classes)
        self.pool_size = pool_size
        self.max_start_delay = max_start_delay
        self.monotonic = monotonic
        self.on_error = on_error
        self.run_id = ""
        self._classes: dict[str, _Class] = {}
        self._stopped: dict[str, tuple[int, int]] = {}

    @property
    def greenlet_count(self) -> int:
        """Pool users alive (idle or running an iteration)."""
        return sum(c.pool.greenlet_count for c in self._classes.values())

    def grant(self, message: HordeRate) -> None:
        """Queue a grant's iterations; the first grant of a class in a run starts its pool."""
        name = message.user_class
        if name not in self.user_classes:
            log.warning("arrival grant for an unknown user class", user_class=name)
            return
        if message.run_id != self.run_id:
            self.stop(0)
            self._stopped = {}
            self.run_id = message.run_id
        entry = self._classes.get(name)
        if entry is None:
            entry = self._start_class(name)
        entry.plan.grant(message, self.monotonic())
        entry.wake.set()

    def stop(self, timeout: float | None = 0) -> None:
        """Stop scheduling and every pool user (busy ones get ``timeout``; None: the
        environment's stop_timeout). Counts stay for the last report."""
        for entry in self._classes.values():
            if entry.scheduler is not None:
                entry.scheduler.kill(block=False)
                entry.scheduler = None
            entry.plan.clear()
        for entry in self._classes.values():
            entry.pool.stop_all(timeout)
        self._stopped.update(
            {n: (c.plan.started, c.plan.dropped) for n, c in self._classes.items()}
        )
        self._classes = {}

    def report(self, node_id: str) -> HordeArrivals:
        """The ``horde.arrivals`` message: pool size and this run's counts per class."""
        counts = dict(self._stopped)
        counts.update({n: (c.plan.started, c.plan.dropped) for n, c in self._classes.items()})
        return HordeArrivals(
            node_id,
            run_id=self.run_id,
            pool=self.pool_size,
            started={n: s for n, (s, _) in counts.items()},
            dropped={n: d for n, (_, d) in counts.items()},
        )

    # --- inside ------------------------------------------------------------------------

    def _start_class(self, name: str) -> _Class:
        plan = ClassArrivals(name, self.max_start_delay)
        plan.run_id = self.run_id  # a pool started again in the run keeps its counts
        plan.started, plan.dropped = self._stopped.pop(name, (0, 0))
        gated = self._gated(name)
        pool = UserPool(self.environment, {name: gated}, self.on_error)
        entry = _Class(plan, pool)
        self._classes[name] = entry
        pool.apply({name: self.pool_size})
        entry.scheduler = gevent.spawn(self._schedule, entry)
        return entry

    def _gated(self, name: str) -> type[User]:
        """A subclass of the script's class whose wait is the wait for an iteration."""
        cls = self.user_classes[name]
        runner = self

        def wait_time(user: Any) -> float:
            return runner._take(name, user)

        attributes = {"wait_time": wait_time, GATE_ATTR: True, "__module__": cls.__module__}
        return type(cls.__name__, (cls,), attributes)

    def _take(self, name: str, user: Any) -> float:
        """A free user waits for its next iteration; returns 0 (no further wait)."""
        entry = self._classes.get(name)
        if entry is None:
            gevent.sleep(3600)  # its pool is being stopped
            return 0.0
        inbox = getattr(user, _INBOX, None)
        if inbox is None:
            inbox = Inbox(1)
            setattr(user, _INBOX, inbox)
        while True:
            entry.idle.put(inbox)
            k, due = inbox.get()
            lateness = entry.plan.start(due, self.monotonic())
            if lateness is not None:
                setattr(user, LATENESS_ATTR, lateness)
                setattr(user, ITERATION_ATTR, f"{name}:{k}")
                return 0.0

    def _schedule(self, entry: _Class) -> None:
        """Hand each iteration, when due, to a free user, or drop it after the delay."""
        plan, idle = entry.plan, entry.idle
        while True:
            due = plan.next_due()
            if due is None:
                entry.wake.clear()
                entry.wake.wait()
                continue
            now = self.monotonic()
            if due > now:
                gevent.sleep(due - now)
                continue
            item = plan.pop_due(now)
            if item is None:
                continue
            left = item[1] + plan.max_start_delay - now
            try:
                inbox = idle.get(timeout=left) if left > 0 else idle.get(block=False)
            except gevent.queue.Empty:
                plan.drop()
                continue
            inbox.put(item)
