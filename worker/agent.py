"""The worker's gevent side: follow the master's commands and report stats.

:class:`WorkerAgent` reads messages from the link, keeps one short handler per message
type (``ack``, ``spawn``, ``stop``, ``quit``, ``horde.epoch`` ...), applies each
``spawn``'s absolute counts to the user pool, sends a stats delta every interval (horde's
compact format to a horde master, Locust's format to a Locust master), and reports
exceptions raised in tasks. Nothing starts in the constructor; :meth:`run` does the work.

Faults (horde masters): users run only under a lease (:mod:`horde.worker.lease`). When it
runs out the agent stops every user at once (the master gives them to other workers),
sends its final delta and registers again; a spawn that arrives while no lease holds
waits for the next renewal. Stats deltas go through an :class:`~horde.worker.outbox.Outbox`
(a window of unacknowledged deltas, resent after a re-registration or when acks stall);
``stop``, ``quit``, SIGTERM and lease expiry send a final delta even with a full window.
An ``ack`` while users run means the master counts this worker as idle again (it
registered anew, e.g. with a restarted master): the users are stopped at once.

Imports: gevent, structlog, horde.worker, horde.protocol.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

import gevent
import gevent.event
import structlog

from horde.protocol import messages as m
from horde.protocol.codec import AnyMessage, encode
from horde.protocol.errors import HordeError
from horde.protocol.states import WorkerState
from horde.protocol.stats import HordeStatsDelta
from horde.worker.api.environment import Environment
from horde.worker.api.pacing import current_lateness
from horde.worker.config import (
    LEASE_CHECK_INTERVAL,
    LOOP_PROBE_INTERVAL,
    STATS_WINDOW,
    WorkerSettings,
)
from horde.worker.outbox import Outbox
from horde.worker.pool import UserPool
from horde.worker.stats import RequestRecorder
from horde.worker.transport import LinkStatus, WorkerLink

log = structlog.get_logger("horde.worker")


class WorkerAgent:
    """Runs one worker's users as its master directs."""

    def __init__(
        self,
        settings: WorkerSettings,
        link: WorkerLink,
        *,
        status: LinkStatus,
        environment: Environment,
        pool: UserPool,
        recorder: RequestRecorder,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        new_log_lines: Callable[[], list[str]] | None = None,
    ) -> None:
        self.settings = settings
        self.node_id = settings.node_id
        self.link = link
        self.status = status
        self.environment = environment
        self.pool = pool
        self.recorder = recorder
        self.clock = clock
        self.monotonic = monotonic
        self.new_log_lines = new_log_lines
        self.run_id = ""
        self.epoch = 0
        self.last_spawn_ts = 0.0
        self.quitting = False
        self.outbox = Outbox(
            resend_after=settings.stats_resend_after,
            max_frame=settings.max_frame,
            size=self._frame_size,
            window=STATS_WINDOW,
        )
        self._waiting_spawn: m.Spawn | None = None
        self._dropped_reported = 0
        self._greenlets: list[gevent.Greenlet] = []
        self._done = gevent.event.Event()
        self._handlers: dict[type, Callable[[Any], None]] = {
            m.Ack: self._on_ack,
            m.Spawn: self._on_spawn,
            m.Stop: self._on_stop,
            m.Quit: self._on_quit,
            m.Reconnect: self._on_reconnect,
            m.HordeEpoch: self._on_epoch,
            m.HordeStatsAck: self._on_stats_ack,
            m.MasterSpawningComplete: self._ignore,
            m.LocustfileReply: self._ignore,
        }

    # --- lifecycle -----------------------------------------------------------------------

    def run(self) -> int:
        """Connect, follow the master until it says ``quit``; return the exit code."""
        events = self.environment.events
        events.request.add_listener(self._on_request)
        events.user_error.add_listener(self._on_user_error)
        self.link.start()
        log.info("worker connecting", master=self.link.endpoint, node_id=self.node_id)
        self._greenlets = [
            gevent.spawn(self._receive_loop),
            gevent.spawn(self._stats_loop),
            gevent.spawn(self._probe_loop),
            gevent.spawn(self._lease_loop),
        ]
        if self.new_log_lines is not None:
            self._greenlets.append(gevent.spawn(self._logs_loop, self.new_log_lines))
        try:
            self._done.wait()
        finally:
            gevent.killall(self._greenlets, timeout=1)
            self.link.close()
        return 0

    def shutdown(self) -> None:
        """Stop users, flush stats and tell the master we leave (SIGTERM, Ctrl-C)."""
        if self.quitting:
            return
        self._on_quit(m.Quit(self.node_id))

    def _receive_loop(self) -> None:
        while not self.quitting:
            message = self.link.recv()
            try:
                self.handle(message)
            except Exception:  # one bad command must not end the worker
                log.exception("handling a message failed", type=message.type)

    def handle(self, message: AnyMessage) -> None:
        """React to one message from the master."""
        handler = self._handlers.get(type(message))
        if handler is None:
            log.warning("unexpected message from master", type=message.type)
            return
        handler(message)

    # --- handlers ------------------------------------------------------------------------

    def _on_ack(self, message: m.Ack) -> None:
        # A restarted master knows none of this worker's names: define them again, in the
        # resent deltas first (a master that kept them just reads them twice).
        self.recorder.forget_announcements()
        self._waiting_spawn = None
        for delta in self.outbox.resend_all(self.monotonic()):
            self.link.send(m.HordeStats(self.node_id, delta))
        if self.pool.greenlet_count:
            log.warning(
                "registered again while running users: stopping them at once"
                " (the master counts this worker as idle now)",
                users=self.pool.greenlet_count,
            )
            self._halt_users()
            self.status.state = WorkerState.READY
            self.send_stats(final=True)
        log.info(
            "registered with master", index=message.index, horde=message.horde, lease=message.lease
        )

    def _on_reconnect(self, message: m.Reconnect) -> None:
        log.info("master asked for a reconnect")

    def _on_spawn(self, message: m.Spawn) -> None:
        self.link.send(m.Spawning(self.node_id))
        if message.timestamp <= self.last_spawn_ts:
            log.warning("dropping an old spawn message", timestamp=message.timestamp)
            return
        self.last_spawn_ts = message.timestamp
        self.environment.stop_timeout = message.stop_timeout
        if message.host:
            self.environment.host = message.host
        options = message.parsed_options
        if "tags" in options or "exclude_tags" in options:
            self.environment.set_tags(options.get("tags"), options.get("exclude_tags"))
        if message.run_id != self.run_id or not self.run_id:
            self._begin_run(message)
        self.status.state = WorkerState.SPAWNING
        if any(message.user_classes_count.values()) and self.status.lease.expired(self.monotonic()):
            log.info("waiting for the master to renew the lease before starting users")
            self._waiting_spawn = message
            return
        self._waiting_spawn = None
        self._apply_spawn(message)

    def _apply_spawn(self, message: m.Spawn) -> None:
        try:
            self.pool.apply(dict(message.user_classes_count), message.host or None)
        except HordeError as exc:  # e.g. a class this worker's script does not define
            log.error("cannot apply spawn", error=str(exc))
            self.link.send(m.ExceptionReport(self.node_id, msg=str(exc), traceback=""))
        self.status.state = WorkerState.RUNNING
        counts = self.pool.counts()
        self.status.user_count = sum(counts.values())
        self.link.send(m.WorkerSpawningComplete(self.node_id, counts, sum(counts.values())))

    def _begin_run(self, message: m.Spawn) -> None:
        self.run_id = message.run_id
        self.epoch = message.epoch
        self.outbox.start_run(message.run_id)
        self.recorder.reset()
        # Names sent in deltas the master drops (another run's final delta, e.g. to a
        # restarted master) never reached its table: each run's first delta defines them.
        self.recorder.forget_announcements()
        self.environment.events.test_start.fire(environment=self.environment)

    def _on_stop(self, message: m.Stop) -> None:
        self._waiting_spawn = None
        self._stop_users()
        self.link.send(m.ClientStopped(self.node_id))
        self.environment.events.test_stop.fire(environment=self.environment)
        self.status.state = WorkerState.READY
        self.link.send(m.ClientReady(self.node_id))

    def _on_quit(self, message: m.Quit) -> None:
        self.quitting = True
        self._waiting_spawn = None
        self._stop_users()
        self.environment.events.quitting.fire(environment=self.environment)
        self.link.send(m.WorkerQuit(self.node_id))
        log.info("worker quitting")
        self._done.set()

    def _on_epoch(self, message: m.HordeEpoch) -> None:
        if message.run_id == self.run_id:
            self.epoch = message.epoch
            self.recorder.reset()
            self.recorder.forget_announcements()  # as for a new run: skipped deltas' names

    def _on_stats_ack(self, message: m.HordeStatsAck) -> None:
        self.outbox.ack(message.run_id, message.seq, self.monotonic())

    def _ignore(self, message: AnyMessage) -> None:
        return

    def _stop_users(self) -> None:
        """Stop users within ``stop_timeout`` and send the final delta."""
        self.status.state = WorkerState.STOPPING
        self.pool.stop_all(self.environment.stop_timeout)
        self.status.user_count = 0
        self.send_stats(final=True)

    def _halt_users(self) -> None:
        """Stop every user at once (no stop_timeout: the master gives them to others)."""
        self.pool.stop_all(0)
        self.status.user_count = 0

    # --- the lease -----------------------------------------------------------------------

    def check_lease(self, now: float) -> None:
        """Stop the users when the lease ran out; start a waiting spawn once one holds."""
        lease = self.status.lease
        if lease.expired(now):
            if self.pool.greenlet_count:
                self._lease_expired(now)
        elif self._waiting_spawn is not None:
            spawn, self._waiting_spawn = self._waiting_spawn, None
            self._apply_spawn(spawn)

    def _lease_expired(self, now: float) -> None:
        lease = self.status.lease
        users = self.pool.greenlet_count
        answered = (
            lease.deadline - lease.seconds
            if lease.deadline is not None and lease.seconds is not None
            else None
        )
        since = f"{now - answered:.1f} s ago" if answered is not None else "registration"
        log.warning(
            f"lease expired: no answer from the master since {since}, stopping {users} users",
            users=users,
            lease=lease.seconds,
        )
        graceful_stop_running = self.status.state is WorkerState.STOPPING
        self._halt_users()
        if graceful_stop_running:
            return  # the stop in progress sends the final delta and registers again
        self.status.state = WorkerState.READY
        self.send_stats(final=True)
        self.link.reregister()

    def _lease_loop(self) -> None:
        while True:
            gevent.sleep(LEASE_CHECK_INTERVAL)
            try:
                self.check_lease(self.monotonic())
            except Exception:
                log.exception("lease check failed")

    # --- reports -------------------------------------------------------------------------

    def _on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int,
        exception: BaseException | str | None = None,
        **_: Any,
    ) -> None:
        recorder = self.recorder
        recorder.record(
            request_type, name, response_time, response_length or 0, exception, self.clock()
        )
        if response_time is not None:
            lateness = current_lateness()
            if lateness is not None:
                recorder.record_corrected(request_type, name, response_time, lateness)

    def _on_user_error(self, user_instance: object, exception: BaseException, tb: Any) -> None:
        # As Locust's worker: the message is str(exception), the traceback its frames.
        frames = "".join(traceback.format_tb(tb)) if isinstance(tb, TracebackType) else str(tb)
        self.link.send(m.ExceptionReport(self.node_id, msg=str(exception), traceback=frames))

    def send_stats(self, *, final: bool = False) -> None:
        """Send the stats gathered since the last report.

        To a horde master only while the outbox has room (else the recorder keeps
        accumulating, and the next delta covers it all); a ``final`` delta goes even with a
        full window.
        """
        counts = self.pool.counts()
        total = sum(counts.values())
        if self.status.horde is not None:
            if not self.run_id:
                return
            if not self.outbox.may_take(registered=self.status.registered, final=final):
                return
            delta = self.recorder.take_horde_delta(
                run_id=self.run_id,
                epoch=self.epoch,
                seq=self.outbox.next_seq,
                now=self.clock(),
                user_classes_count=counts,
                user_count=total,
            )
            for part in self.outbox.add(delta, self.monotonic()):
                self.link.send(m.HordeStats(self.node_id, part))
            if self.outbox.dropped_items > self._dropped_reported:
                log.error(
                    "stats entries too large for any frame were dropped",
                    dropped=self.outbox.dropped_items - self._dropped_reported,
                    max_frame=self.settings.max_frame,
                )
                self._dropped_reported = self.outbox.dropped_items
            return
        report = self.recorder.take_locust_report(
            now=self.clock(), user_classes_count=counts, user_count=total
        )
        extra: dict[str, Any] = {}
        self.environment.events.report_to_master.fire(client_id=self.node_id, data=extra)
        if extra:
            report = dataclasses.replace(report, extra={**report.extra, **extra})
        self.link.send(m.LocustStats(self.node_id, report))

    def resend_stats(self) -> None:
        """Send the unacknowledged deltas again if no ack progressed for a while."""
        due = self.outbox.resend_due(self.monotonic(), registered=self.status.registered)
        for delta in due:
            self.link.send(m.HordeStats(self.node_id, delta))

    def _frame_size(self, delta: HordeStatsDelta) -> int:
        return len(encode(m.HordeStats(self.node_id, delta)))

    def _stats_loop(self) -> None:
        while True:
            gevent.sleep(self.settings.stats_interval)
            try:
                self.resend_stats()
                self.send_stats()
            except Exception:
                log.exception("stats report failed")

    def _logs_loop(self, new_lines: Callable[[], list[str]]) -> None:
        """Ship new log lines to the master now and then (its ``GET /logs`` shows them)."""
        while True:
            gevent.sleep(self.settings.logs_interval)
            lines = new_lines()
            if lines:
                self.link.send(m.Logs(self.node_id, tuple(lines)))

    def _probe_loop(self) -> None:
        """Prove the loop is alive, and keep the heartbeat's user count current (users that
        end on their own, e.g. by ``StopUser``, leave the pool between spawns)."""
        status = self.status
        while True:
            before = time.monotonic()
            gevent.sleep(LOOP_PROBE_INTERVAL)
            after = time.monotonic()
            status.max_lag = max(status.max_lag, after - before - LOOP_PROBE_INTERVAL)
            status.last_tick = after
            status.user_count = self.pool.user_count
