"""The master's brain: the run's life cycle over components that each own one concern.

The coordinator holds the run state (ready, spawning, running, stopping, stopped), the
ramp, the load shape and the run's host and options, and its commands (start, stop,
quit, reset). It drives a few components, each with its own ``forget``:
:class:`~horde.master.registry.Registry` (who is connected, liveness),
:class:`~horde.master.placement.Placement` (who runs which users, migration, lease
waits), :class:`~horde.master.intake.StatsIntake` (stats sequencing, acks, epochs, the
merged figures), :class:`~horde.master.stopping.StopTracker`,
:class:`~horde.master.worker_logs.WorkerLogs`, the exceptions and the counters. Each
message goes to one short handler (:mod:`horde.master.handlers`); what time brings
(ramp steps, shape ticks, deadlines, the liveness sweep) is :mod:`horde.master.timers`.
The reactions that cross components are written once, here: a worker losing its users
(:meth:`Coordinator.lose_worker`), a worker forgotten (:meth:`Coordinator.forget_worker`,
through every component's ``forget``) and the figures starting over
(``_reset_figures``). Readers get an immutable :meth:`Coordinator.snapshot`.

It never sleeps and never touches a socket: it sends through an injected
``send(worker_id, message)`` and every entry point takes ``now``. The loops
(:mod:`horde.master.loops`) feed it frames and clock ticks; the HTTP shim calls its
commands.

Imports: the standard library, structlog and horde.master / horde.protocol.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from horde.master.config import MasterSettings
from horde.master.corrected import CorrectedStats
from horde.master.counters import Counters
from horde.master.dispatch import UserClassSpec
from horde.master.exceptions import ExceptionBook
from horde.master.handlers import Handlers
from horde.master.history import History
from horde.master.intake import Send, StatsIntake
from horde.master.placement import Placement, SpawnOrder
from horde.master.ramp import RampPlan
from horde.master.ratebook import RateBook
from horde.master.ratelease import LEAD, RateLease
from horde.master.ratelimit import LogThrottle
from horde.master.registry import Registry, WorkerState
from horde.master.shape import ShapeRunner
from horde.master.snapshot import (
    MasterSnapshot,
    RunSnapshot,
    take_run_snapshot,
    take_snapshot,
)
from horde.master.stats import MergedStats
from horde.master.stopping import StopTracker
from horde.master.swarm import (
    ACTIVE_RUN,
    CommandError,
    RunEnd,
    RunHooks,
    RunState,
    StopReason,
    SwarmRequest,
    validate_request,
)
from horde.master.timers import Timers
from horde.master.verdict import Verdict
from horde.master.worker_logs import WorkerLogs
from horde.protocol import messages as m
from horde.protocol.codec import AnyMessage
from horde.protocol.rates import Schedule

__all__ = [
    "ACTIVE_RUN",
    "CommandError",
    "Coordinator",
    "RunHooks",
    "RunState",
    "SwarmRequest",
]

log = structlog.get_logger("horde.master")


class Coordinator:
    """The run state machine of one master, over its components."""

    def __init__(
        self,
        settings: MasterSettings,
        user_classes: Sequence[UserClassSpec],
        send: Send,
        *,
        scripts: Sequence[m.ScriptFile] = (),
        new_run_id: Callable[[], str] = lambda: uuid.uuid4().hex[:12],
        started_at: float = 0.0,
        hooks: RunHooks | None = None,
        shapes: Mapping[str, Callable[[], Any]] | None = None,
        key_of: Callable[[str], str | None] = lambda worker_id: None,
        schedules: Mapping[str, Schedule] | None = None,
    ) -> None:
        self.settings = settings
        self.key_of = key_of
        """The fingerprint of the CURVE key a worker speaks under (None on a plain master)."""
        self.user_classes = list(user_classes)
        self.shapes = dict(shapes or {})
        self.scripts = tuple(scripts)
        self.send = send
        self._new_run_id = new_run_id
        self.hooks = hooks or RunHooks()
        self.counters = Counters()
        self.registry = Registry(settings.heartbeat_interval, settings.heartbeat_liveness)
        self.intake = StatsIntake(
            MergedStats(started_at=started_at, max_names=settings.max_names),
            CorrectedStats(max_names=settings.max_names),
            self.counters,
            send,
        )
        self.class_schedules = dict(schedules or {})
        """The arrival-rate classes of the script (their own schedules): never placed."""
        self.placement = Placement(
            [s for s in self.user_classes if s.name not in self.class_schedules]
        )
        self.rates: RateLease | None = None
        """The run's arrival-rate schedules and grants (None: no arrival-rate class)."""
        self.ratebook = RateBook()
        self.stopping = StopTracker()
        self.logs = WorkerLogs()
        self.exceptions = ExceptionBook()
        self.unhandled_errors = 0
        """Spawns a worker could not carry out (Locust's unhandled greenlet exceptions)."""
        self.history = History()
        self.throttle = LogThrottle()
        self.state = RunState.READY
        self.run_id = ""
        self.host = settings.host
        self.target_total = 0
        self.spawn_rate = settings.spawn_rate
        self.ramp: RampPlan | None = None
        self.shape: ShapeRunner | None = None
        self.run_options: dict[str, object] = settings.run_options
        self.deadline: float | None = None
        self.run_time: float | None = None
        """The run time the running test was last given (None: none)."""
        self.started_at = 0.0
        """When the current (or last) run started, on the master's clock."""
        self.end: RunEnd | None = None
        """How the last run ended (None while it runs, or before the first)."""
        self.thresholds = settings.thresholds
        """The current (or last) run's thresholds: a ``/swarm`` may give its own."""
        self.verdict = Verdict(settings.abort_on_fail, settings.abort_grace)
        """The run's verdict, fed by the runtime's judge loop (read through snapshots)."""
        self._handlers = Handlers(self)
        self._timers = Timers(self)

    @property
    def stats(self) -> MergedStats:
        """The merged request figures (the stats intake's)."""
        return self.intake.stats

    @property
    def corrected(self) -> CorrectedStats:
        """The merged coordinated-omission-corrected series (the stats intake's)."""
        return self.intake.corrected

    # --- commands ------------------------------------------------------------------------

    def start(self, request: SwarmRequest, now: float) -> None:
        """Start a test, or change the user count of the running one."""
        validate_request(
            request,
            max_users=self.settings.max_users,
            class_names=[spec.name for spec in self.user_classes],
            shape_names=self.shapes,
        )
        if self.state is RunState.STOPPING:
            raise CommandError("the test is stopping; start again once it has stopped")
        if not self.registry.active():
            raise CommandError("no worker is connected yet; start a worker first")
        schedules = self._arrival_schedules(request)
        if self.state not in ACTIVE_RUN:
            # test_start listeners read the target (Locust's runner.target_user_count)
            self.target_total = 0 if request.shape_class is not None else request.user_count
            self._new_run(now)
            self.deadline = None
            self.rates = RateLease(schedules, now + LEAD) if schedules else None
        if request.host:
            self.host = request.host
        if request.thresholds is not None:
            self.thresholds = request.thresholds
        elif self.state not in ACTIVE_RUN:
            self.thresholds = self.settings.thresholds
        self.run_options = {**self.settings.run_options, **request.options}
        if request.run_time:  # without one, a change keeps the running test's limit
            self.deadline = now + request.run_time
            self.run_time = request.run_time
        if request.shape_class is not None:
            self.shape = ShapeRunner(
                request.shape_class,
                self.shapes[request.shape_class](),
                now,
                known_classes=[spec.name for spec in self.user_classes],
                max_users=self.settings.max_users,
            )
            self.state = RunState.SPAWNING
            log.info("swarm with shape", run_id=self.run_id, shape=request.shape_class)
        else:
            self.shape = None
            users = 0 if request.arrival is not None else request.user_count
            self.retarget(users, request.spawn_rate, request.user_classes, now)
            log.info(
                "swarm",
                run_id=self.run_id,
                users=request.user_count,
                spawn_rate=request.spawn_rate,
                host=self.host,
                run_time=request.run_time,
                user_classes=request.user_classes,
            )
        self.tick(now)

    def _arrival_schedules(self, request: SwarmRequest) -> dict[str, Schedule]:
        """The schedule of each arrival-rate class ``request`` runs (its rate split among the
        chosen classes by weight, else the classes' own); refused without a horde worker."""
        chosen = request.user_classes
        if request.arrival is not None:
            if self.state in ACTIVE_RUN:
                raise CommandError("stop the test to change its arrival rate", "arrival_rate")
            specs = [s for s in self.user_classes if chosen is None or s.name in chosen]
            weights = sum(s.weight for s in specs)
            if not weights:
                raise CommandError("the chosen classes have no weight to split the rate by")
            try:
                schedules = {
                    s.name: request.arrival.scaled(s.weight / weights) for s in specs if s.weight
                }
            except ValueError as exc:  # a share too small to be a rate
                raise CommandError(f"arrival rate: {exc}", "arrival_rate") from None
        else:
            schedules = {
                name: schedule
                for name, schedule in self.class_schedules.items()
                if chosen is None or name in chosen
            }
        if schedules and not any(r.is_horde for r in self.registry.active()):
            raise CommandError(
                "arrival-rate classes need a horde worker: Locust workers get no share of the"
                " rate, and none of the connected workers is a horde worker"
            )
        return schedules

    def retarget(
        self, users: int, rate: float, classes: tuple[str, ...] | None, now: float
    ) -> None:
        """Ramp from the users placed now to ``users`` at ``rate``, among ``classes``.

        A new choice of classes re-places the users already running at once; the ramp
        then moves the total.
        """
        placement = self.placement
        changed = classes != placement.selected_classes
        placement.selected_classes = classes
        self.spawn_rate = rate
        if changed and placement.applied_total and self.state in ACTIVE_RUN:
            self.apply_total(placement.applied_total, now)
        self.target_total = users
        self.ramp = RampPlan(placement.applied_total, users, rate, now)
        self.state = RunState.SPAWNING

    def stop(self, now: float, reason: StopReason = StopReason.REQUESTED) -> None:
        """Stop the test, for ``reason``: every worker stops its users and reports its final
        stats. A reason that cuts the run short is logged as an error."""
        if self.state not in ACTIVE_RUN:
            return
        self.end = RunEnd(reason, now - self.started_at, self.run_time)
        if reason.cut_short:
            log.error("the run was cut short", reason=self.end.describe())
        self.hooks.test_stopping()
        if self.rates is not None:
            self.rates.stop(now)
        self.ramp = None
        self.shape = None
        self.deadline = None
        self.placement.clear()
        self.target_total = 0
        asked = [r.worker_id for r in self.registry.all() if r.state is not WorkerState.MISSING]
        for worker_id in asked:
            self.send(worker_id, m.Stop(worker_id))
        self.stopping.begin(asked, now + self.settings.stop_wait + (self._stop_timeout or 0))
        self.state = RunState.STOPPING
        log.info("stopping", run_id=self.run_id, workers=len(asked))
        self.check_stopped(now)

    def quit(self) -> None:
        """Tell every worker to exit."""
        for record in self.registry.all():
            self.send(record.worker_id, m.Quit(record.worker_id))

    def reset_stats(self, now: float) -> None:
        """Start a new stats epoch: figures restart from zero, a running test goes on."""
        self._reset_figures(now, self.intake.epoch + 1)
        if self.run_id:
            for record in self.registry.all():
                if record.is_horde:
                    epoch = m.HordeEpoch(record.worker_id, self.run_id, self.intake.epoch)
                    self.send(record.worker_id, epoch)
        log.info("stats reset", run_id=self.run_id, epoch=self.intake.epoch)
        self.hooks.reset_stats()

    def _new_run(self, now: float) -> None:
        self.run_id = self._new_run_id()
        self.started_at = now
        self.run_time = None
        self.end = None
        self._reset_figures(now, 0)
        self.placement.new_run()
        self.ratebook.new_run(self.run_id)
        self.hooks.test_start()

    def _reset_figures(self, now: float, epoch: int) -> None:
        """Every figure starts over at stats epoch ``epoch`` (a new run, or a reset)."""
        self.intake.reset(now, epoch)
        self.exceptions.clear()
        self.history.clear()

    # --- time ----------------------------------------------------------------------------

    def tick(self, now: float) -> float:
        """Advance the shape, ramp, migration, deadline and stop; return seconds to sleep."""
        return self._timers.tick(now)

    def sweep(self, now: float) -> None:
        """Mark silent workers missing (moving their users); forget long-missing ones."""
        self._timers.sweep(now)

    # --- messages ------------------------------------------------------------------------

    def handle(self, worker_id: str, message: AnyMessage, now: float) -> None:
        """React to one decoded message from the worker whose socket is ``worker_id``."""
        self._handlers.handle(worker_id, message, now)

    def count_malformed(self, worker_id: str, reason: str, detail: str, now: float) -> None:
        """Count and (rate-limited) log a frame that failed to decode."""
        self.counters.count(f"malformed_{reason}")
        suppressed = self.throttle.allow(f"malformed:{reason}", now)
        if suppressed is not None:
            log.warning(
                "malformed frame dropped",
                worker=worker_id,
                reason=reason,
                detail=detail[:200],
                suppressed=suppressed,
            )

    # --- the shared reactions ------------------------------------------------------------

    def lose_worker(self, worker_id: str, now: float) -> None:
        """A worker's users are gone (missing, quit, re-registered): move them to the others."""
        self.stopping.forget(worker_id)
        had_users = self.placement.forget(worker_id)
        if worker_id in self.registry:
            self.registry.update_users(worker_id, {}, 0)
        if self.state not in ACTIVE_RUN or not had_users:
            return
        if not [r for r in self.registry.active() if r.worker_id != worker_id]:
            log.warning("no workers left, stopping the test")
            self.stop(now, StopReason.NO_WORKERS)
            return
        self.apply_total(self.placement.applied_total, now, exclude=worker_id)

    def forget_worker(self, worker_id: str, now: float) -> None:
        """A worker has left for good (quit, or missing too long): every component drops it."""
        self.lose_worker(worker_id, now)
        self.registry.remove(worker_id)
        self.intake.forget(worker_id)
        self.ratebook.forget(worker_id)
        self.logs.forget(worker_id)
        self.check_stopped(now)

    def start_migration(self, now: float) -> None:
        """A worker joined (or came back to) a running test: move its share at the spawn rate."""
        if self.state in ACTIVE_RUN and self.ramp is None:
            self.placement.migrate_at = now

    def apply_total(self, total: int, now: float, *, exclude: str | None = None) -> None:
        """Place ``total`` users on the active workers at once; send ``spawn`` where changed."""
        workers = [w for w in self.active_ids() if w != exclude]
        self.send_spawns(self.placement.apply(workers, total, self.host, now))

    def active_ids(self) -> list[str]:
        """The ids of the workers users may be placed on, in index order."""
        return [r.worker_id for r in self.registry.active()]

    def send_spawns(self, orders: list[SpawnOrder]) -> None:
        """Send each changed share as a ``spawn`` with the run's host, options and epoch."""
        for worker_id, counts, timestamp in orders:
            spawn = m.Spawn(
                worker_id,
                timestamp=timestamp,
                user_classes_count=dict(counts),
                host=self.host,
                stop_timeout=self._stop_timeout,
                parsed_options=self.run_options,
                run_id=self.run_id,
                epoch=self.intake.epoch,
            )
            self.send(worker_id, spawn)

    @property
    def _stop_timeout(self) -> float | None:
        value = self.run_options.get("stop_timeout", self.settings.stop_timeout)
        return float(value) if isinstance(value, int | float) else None

    def check_stopped(self, now: float) -> None:
        """End a stopping test once no worker is awaited (or the stop wait ran out)."""
        if self.state is not RunState.STOPPING:
            return
        given_up = self.stopping.settle(self._present, now)
        if given_up is None:
            return
        if given_up:
            log.warning("stop timed out", waiting=given_up)
        self.state = RunState.STOPPED
        log.info("stopped", run_id=self.run_id)
        self.hooks.test_stop()

    def _present(self, worker_id: str) -> bool:
        record = self.registry.get(worker_id)
        return record is not None and record.state is not WorkerState.MISSING

    # --- reading -------------------------------------------------------------------------

    @property
    def user_count(self) -> int:
        """Users the workers report running (missing workers excluded)."""
        return sum(r.user_count for r in self.registry.all() if r.state is not WorkerState.MISSING)

    def snapshot(self, now: float) -> MasterSnapshot:
        """The master as it is now, for readers: immutable, apart from the merged figures."""
        return take_snapshot(self, now)

    def run_snapshot(self, now: float) -> RunSnapshot:
        """The run as it is now (state, host, users, target): cheaper than :meth:`snapshot`."""
        return take_run_snapshot(self, now)

    def worker_logs(self) -> Mapping[str, tuple[str, ...]]:
        """Each present worker's recent log lines, as they are now."""
        return self.logs.snapshot()
