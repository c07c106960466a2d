"""One short handler per message a worker sends, over the coordinator's components.

Responsibility: what each upstream message changes: registration and its ack, heartbeats
(and a worker back from missing), spawn progress, stats reports (through the stats
intake), a worker's stop or quit, exceptions, the script request, log lines and
arrival-rate counts. Reactions
that cross components (a worker loses its users, a worker is forgotten, a migration
starts, a stop may be over) are the coordinator's, called from here. Pure: every handler
takes ``now``; messages go out through the coordinator's ``send``.

Imports: the standard library, structlog and horde.master / horde.protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from horde.master.registry import WorkerState
from horde.master.swarm import ACTIVE_RUN
from horde.protocol import messages as m
from horde.protocol.base import UnknownMessage
from horde.protocol.codec import AnyMessage

if TYPE_CHECKING:
    from horde.master.coordinator import Coordinator

log = structlog.get_logger("horde.master")

Handler = Callable[[str, Any, float], None]


class Handlers:
    """The handlers of one coordinator's messages, and the table that picks one."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.c = coordinator
        self._table: dict[type, Handler] = {
            m.ClientReady: self.client_ready,
            m.WorkerHeartbeat: self.heartbeat,
            m.Spawning: self.spawning,
            m.WorkerSpawningComplete: self.spawning_complete,
            m.LocustStats: self.stats,
            m.HordeStats: self.stats,
            m.ClientStopped: self.client_stopped,
            m.WorkerQuit: self.quit,
            m.ExceptionReport: self.exception,
            m.LocustfileRequest: self.locustfile,
            m.Logs: self.logs,
            m.HordeArrivals: self.arrivals,
        }

    def handle(self, worker_id: str, message: AnyMessage, now: float) -> None:
        """Hand ``message`` to its type's handler; a stranger is only asked to register."""
        c = self.c
        handler = self._table.get(type(message))
        if handler is None:
            if isinstance(message, UnknownMessage) and c.hooks.custom_message(worker_id, message):
                return  # a type the script registered (runner.register_message)
            c.counters.count("unknown_type")
            if c.throttle.allow(f"type:{message.type}", now) is not None:
                log.warning("unknown message type", type=message.type, worker=worker_id)
            return
        if not isinstance(message, m.ClientReady | m.LocustfileRequest) and (
            worker_id not in c.registry
        ):
            self.stranger(worker_id, message)
            return
        handler(worker_id, message, now)

    def stranger(self, worker_id: str, message: AnyMessage) -> None:
        """A peer we do not know (we restarted, or it was removed) is asked to register.

        Nothing else it sends counts: unlike Locust's master, stats from a peer that never
        registered are dropped, so no stranger can inflate a run's figures. (A horde
        worker resends what was not acknowledged once it has registered again.)
        """
        self.c.counters.count("unknown_worker")
        if isinstance(message, m.WorkerHeartbeat):
            self.c.send(worker_id, m.Reconnect(worker_id))

    def client_ready(self, worker_id: str, message: m.ClientReady, now: float) -> None:
        """A worker registers (or registers again): ack it with its index."""
        c = self.c
        new = worker_id not in c.registry
        if worker_id in c.registry and worker_id in c.placement.distribution:
            # It came back with its users stopped (its lease ran out): they move at once.
            c.lose_worker(worker_id, now)
        record = c.registry.register(
            worker_id,
            now,
            is_horde=message.horde_version is not None,
            version=str(message.version),
            key=c.key_of(worker_id),
        )
        # The intern table and stats sequence stay: the same process resends what we lack.
        c.placement.unsent(worker_id)
        if record.is_horde:
            lease = c.settings.lease_seconds
            ack = m.Ack(worker_id, index=record.index, horde=m.PROTOCOL_VERSION, lease=lease)
        else:
            ack = m.Ack(worker_id, index=record.index)
        c.send(worker_id, ack)
        if new:  # a ready-again after a stop is no new connection (as in Locust)
            c.hooks.worker_connect(worker_id)
        log.info(
            "worker ready",
            worker=worker_id,
            index=record.index,
            horde=record.is_horde,
            workers=c.registry.count_active(),
            **({"key": record.key} if record.key else {}),
        )
        c.start_migration(now)

    def heartbeat(self, worker_id: str, message: m.WorkerHeartbeat, now: float) -> None:
        """Refresh the worker's liveness and figures; answer; welcome it back if missing."""
        c = self.c
        result = c.registry.heartbeat(
            worker_id,
            now,
            state=self._reported_state(worker_id, message.state, now),
            cpu=message.cpu_usage,
            memory=message.memory_usage,
            user_count=message.user_count,
            loop_lag=message.loop_lag,
        )
        c.send(worker_id, m.MasterHeartbeat(worker_id, beat=message.beat))
        c.hooks.heartbeat_sent(worker_id, now)
        if result.revived:
            log.info("worker back", worker=worker_id)
            c.start_migration(now)

    def _reported_state(self, worker_id: str, text: str, now: float) -> WorkerState:
        """The state a heartbeat reports; an unknown one is counted and the old one kept."""
        try:
            state = WorkerState(text)
        except ValueError:
            state = WorkerState.MISSING
        if state is not WorkerState.MISSING:
            return state
        c = self.c
        c.counters.count("malformed_state")
        if c.throttle.allow("state", now) is not None:
            log.warning("heartbeat with an unknown state", worker=worker_id, state=text[:40])
        record = c.registry.get(worker_id)
        if record is None or record.state is WorkerState.MISSING:
            return WorkerState.READY
        return record.state

    def spawning(self, worker_id: str, message: m.Spawning, now: float) -> None:
        """The worker started spawning its users."""
        self.c.registry.set_state(worker_id, WorkerState.SPAWNING)

    def spawning_complete(
        self, worker_id: str, message: m.WorkerSpawningComplete, now: float
    ) -> None:
        """The worker runs its share: record its users."""
        registry = self.c.registry
        registry.update_users(worker_id, dict(message.user_classes_count), message.user_count)
        registry.set_state(worker_id, WorkerState.RUNNING)

    def stats(self, worker_id: str, message: m.LocustStats | m.HordeStats, now: float) -> None:
        """A stats report: merged by the intake if it counts; its user counts recorded."""
        c = self.c
        users = c.intake.merge(worker_id, message, c.run_id, now)
        if users is not None:
            c.registry.update_users(worker_id, dict(users[0]), users[1])
            report = message.report if isinstance(message, m.LocustStats) else message.delta
            c.hooks.worker_report(worker_id, users[1], report.extra)

    def client_stopped(self, worker_id: str, message: m.ClientStopped, now: float) -> None:
        """The worker stopped its users: a stop is answered, or its users move elsewhere."""
        c = self.c
        c.registry.update_users(worker_id, {}, 0)
        c.registry.set_state(worker_id, WorkerState.STOPPED)
        if c.stopping.forget(worker_id):
            c.check_stopped(now)
        elif c.state in ACTIVE_RUN and worker_id in c.placement.distribution:
            log.warning("worker stopped its users on its own", worker=worker_id)
            c.lose_worker(worker_id, now)

    def quit(self, worker_id: str, message: m.WorkerQuit, now: float) -> None:
        """The worker is leaving: forget it."""
        log.info("worker quit", worker=worker_id)
        self.c.forget_worker(worker_id, now)

    def exception(self, worker_id: str, message: m.ExceptionReport, now: float) -> None:
        """An exception from one of the worker's users; or a spawn the worker could not carry
        out, which (as Locust's unhandled greenlet exception) is logged and counted apart."""
        if message.unhandled:
            log.error("a worker could not carry out a spawn", worker=worker_id, error=message.msg)
            self.c.unhandled_errors += 1
            return
        self.c.exceptions.record(message.msg, message.traceback, worker_id)

    def locustfile(self, worker_id: str, message: m.LocustfileRequest, now: float) -> None:
        """The worker asks for the script: send the master's, or say it has none."""
        c = self.c
        if c.scripts:
            c.send(worker_id, m.LocustfileReply(worker_id, c.scripts))
        else:
            c.send(worker_id, m.LocustfileReply(worker_id, error="the master has no script"))

    def arrivals(self, worker_id: str, message: m.HordeArrivals, now: float) -> None:
        """The worker's arrival pool and its iterations started and dropped in the run."""
        self.c.ratebook.report(worker_id, message)

    def logs(self, worker_id: str, message: m.Logs, now: float) -> None:
        """The worker's recent log lines."""
        self.c.logs.add(worker_id, message.lines)
