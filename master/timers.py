"""What the passing of time does to a run: the timed half of the coordinator.

Responsibility: :meth:`Timers.tick` applies the ramp steps, load-shape ticks, migration
steps, arrival-rate grants, the run-time deadline, the stop wait and history points that
are due at ``now``, and says how long the timer loop may sleep; :meth:`Timers.sweep` is
the liveness sweep (silent workers become missing, a missing horde worker's users move
once its lease has surely run out, a worker missing too long is forgotten). The reactions
that cross components are the coordinator's, called from here. Pure: everything takes ``now``.

Imports: the standard library, structlog and horde.master / horde.protocol.
"""

from __future__ import annotations

import math
import traceback
from typing import TYPE_CHECKING

import structlog

from horde.master.history import history_point
from horde.master.ramp import RampPlan
from horde.master.registry import WorkerState
from horde.master.shape import ShapeRunner
from horde.master.swarm import ACTIVE_RUN, RunState, StopReason
from horde.protocol import messages as m

if TYPE_CHECKING:
    from horde.master.coordinator import Coordinator

log = structlog.get_logger("horde.master")
LEASE_GRACE = 0.5
"""Seconds past a missing horde worker's lease before its users go elsewhere: the worker
checks its lease every 0.1 s and then stops its users, so no user ever runs twice."""


class Timers:
    """The timed events of one coordinator's run."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.c = coordinator

    def tick(self, now: float) -> float:
        """Advance the shape, ramp, migration, deadline and stop; return seconds to sleep."""
        c = self.c
        waits = [c.settings.sweep_interval]
        if c.shape is not None and c.state in ACTIVE_RUN:
            if c.shape.due(now):
                self._shape_step(c.shape, now)
            if c.shape is not None:
                waits.append(c.shape.next_at - now)
        if c.state is RunState.SPAWNING and c.ramp is not None:
            waits.append(self._advance_ramp(c.ramp, now))
        placement = c.placement
        if placement.migrate_at is not None and c.state in ACTIVE_RUN:
            if now >= placement.migrate_at:
                workers = c.active_ids()
                c.send_spawns(placement.migrate(workers, c.spawn_rate, c.host, now))
            if placement.migrate_at is not None:
                waits.append(placement.migrate_at - now)
        waits.append(self._grant_rates(now))
        if c.deadline is not None and c.state in ACTIVE_RUN:
            if now >= c.deadline:
                log.info("run time reached, stopping")
                c.stop(now, StopReason.RUN_TIME)
            else:
                waits.append(c.deadline - now)
        if c.state is RunState.STOPPING:
            c.check_stopped(now)
        waits.extend(expiry - now for expiry in placement.lease_wait.values())
        if c.state in (*ACTIVE_RUN, RunState.STOPPING) and c.history.due(now):
            c.history.add(history_point(c.stats, c.user_count, now))
        return max(0.0, min(waits))

    def _grant_rates(self, now: float) -> float:
        """Grant the iterations due soon to the horde workers present, in proportion to
        their pools; stop when every stage has run. Return seconds until the next grant."""
        c = self.c
        rates = c.rates
        if rates is None or c.state not in ACTIVE_RUN:
            return math.inf
        if rates.finished(now):
            log.info("arrival-rate stages finished, stopping")
            c.stop(now, StopReason.STAGES_FINISHED)
            return c.settings.sweep_interval
        pools = [
            (r.worker_id, c.ratebook.pools.get(r.worker_id, 0))
            for r in c.registry.active()
            if r.is_horde
        ]
        for grant in rates.issue(pools, now):
            message = m.HordeRate(
                grant.worker_id,
                run_id=c.run_id,
                user_class=grant.user_class,
                schedule=rates.schedules[grant.user_class],
                origin=rates.origin,
                sent_at=now,
                first=grant.first,
                last=grant.last,
                period=grant.period,
                offsets=grant.offsets,
            )
            c.send(grant.worker_id, message)
        return max(0.0, rates.next_at - now)

    def _advance_ramp(self, ramp: RampPlan, now: float) -> float:
        """Apply every ramp step due at ``now``; return seconds until the next one."""
        c = self.c
        step = ramp.next_step(now)
        while step is not None:
            c.apply_total(step.total, now)
            step = ramp.next_step(now)
        if not ramp.done:
            return max(0.0, ramp.next_at - now)
        c.ramp = None
        c.state = RunState.RUNNING
        total = c.placement.applied_total
        for record in c.registry.active():
            c.send(record.worker_id, m.MasterSpawningComplete(record.worker_id, total))
        log.info("spawning complete", users=total)
        c.hooks.spawning_complete(total)
        return math.inf

    def _shape_step(self, shape: ShapeRunner, now: float) -> None:
        """Ask the shape for the wanted load; follow it, or stop when it ends or fails."""
        c = self.c
        previous = shape.current
        try:
            step = shape.step(now)
        except Exception as exc:  # the user's tick() failed: report it and stop
            c.exceptions.record(
                f"load shape {shape.name}: {type(exc).__name__}: {exc}",
                traceback.format_exc(),
                "master",
            )
            log.error("load shape failed, stopping", shape=shape.name, error=str(exc))
            c.stop(now, StopReason.SHAPE_FAILED)
            return
        if step is None:
            log.info("load shape finished, stopping", shape=shape.name)
            c.stop(now, StopReason.SHAPE_FINISHED)
            return
        if step != previous:
            log.info(
                "load shape step",
                shape=shape.name,
                users=step.user_count,
                spawn_rate=step.spawn_rate,
                user_classes=step.user_classes,
            )
            c.retarget(step.user_count, step.spawn_rate, step.user_classes, now)

    def sweep(self, now: float) -> None:
        """Mark silent workers missing (moving their users); forget long-missing ones."""
        c = self.c
        lease_wait = c.placement.lease_wait
        for event in c.registry.sweep(now):
            c.counters.count("worker_missing")
            log.warning("worker missing", worker=event.worker_id, silent_for=event.silent_for)
            record = c.registry.get(event.worker_id)
            if (
                record is not None
                and record.is_horde
                and event.worker_id in c.placement.distribution
            ):
                # Its lease ran out at most ``lease`` after the last heartbeat we got.
                expiry = record.last_heartbeat + c.settings.lease_seconds + LEASE_GRACE
                lease_wait[event.worker_id] = expiry
            else:  # a Locust worker has no lease: its users move now (it may run on)
                c.lose_worker(event.worker_id, now)
        for worker_id, expiry in list(lease_wait.items()):
            record = c.registry.get(worker_id)
            if record is None or record.state is not WorkerState.MISSING:
                del lease_wait[worker_id]  # back (or gone): its own path reconciles it
            elif now >= expiry:
                del lease_wait[worker_id]
                c.lose_worker(worker_id, now)
        forget_before = now - c.settings.forget_missing_after
        for record in c.registry.all():
            if record.state is WorkerState.MISSING and record.last_heartbeat < forget_before:
                log.info("forgetting missing worker", worker=record.worker_id)
                c.forget_worker(record.worker_id, now)
