"""The worker's gevent side: follow the master's commands and report stats.

:class:`WorkerAgent` reads messages from the link, keeps one short handler per message
type (``ack``, ``spawn``, ``stop``, ``quit``, ``horde.epoch`` ...), applies each
``spawn``'s absolute counts to the user pool, sends a stats delta every interval (horde's
compact format to a horde master, Locust's format to a Locust master), and reports
exceptions raised in tasks. Nothing starts in the constructor; :meth:`run` does the work.

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
from horde.protocol.codec import AnyMessage
from horde.protocol.errors import HordeError
from horde.worker.config import LOOP_PROBE_INTERVAL, WorkerSettings
from horde.worker.environment import Environment
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
        self.new_log_lines = new_log_lines
        self.run_id = ""
        self.epoch = 0
        self.seq = 0
        self.last_spawn_ts = 0.0
        self.quitting = False
        self._greenlets: list[gevent.Greenlet] = []
        self._done = gevent.event.Event()
        self._handlers: dict[type, Callable[[Any], None]] = {
            m.Ack: self._on_ack,
            m.Spawn: self._on_spawn,
            m.Stop: self._on_stop,
            m.Quit: self._on_quit,
            m.Reconnect: self._on_reconnect,
            m.HordeEpoch: self._on_epoch,
            m.HordeStatsAck: self._ignore,
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
        self.recorder.forget_announcements()
        log.info("registered with master", index=message.index, horde=message.horde)

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
        self.status.state = "spawning"
        try:
            self.pool.apply(dict(message.user_classes_count), message.host or None)
        except HordeError as exc:  # e.g. a class this worker's script does not define
            log.error("cannot apply spawn", error=str(exc))
            self.link.send(m.ExceptionReport(self.node_id, msg=str(exc), traceback=""))
        self.status.state = "running"
        counts = self.pool.counts()
        self.status.user_count = sum(counts.values())
        self.link.send(m.WorkerSpawningComplete(self.node_id, counts, sum(counts.values())))

    def _begin_run(self, message: m.Spawn) -> None:
        self.run_id = message.run_id
        self.epoch = message.epoch
        self.seq = 0
        self.recorder.reset()
        self.environment.events.test_start.fire(environment=self.environment)

    def _on_stop(self, message: m.Stop) -> None:
        self._stop_users()
        self.link.send(m.ClientStopped(self.node_id))
        self.environment.events.test_stop.fire(environment=self.environment)
        self.status.state = "ready"
        self.link.send(m.ClientReady(self.node_id))

    def _on_quit(self, message: m.Quit) -> None:
        self.quitting = True
        self._stop_users()
        self.environment.events.quitting.fire(environment=self.environment)
        self.link.send(m.WorkerQuit(self.node_id))
        log.info("worker quitting")
        self._done.set()

    def _on_epoch(self, message: m.HordeEpoch) -> None:
        if message.run_id == self.run_id:
            self.epoch = message.epoch
            self.recorder.reset()

    def _ignore(self, message: AnyMessage) -> None:
        return

    def _stop_users(self) -> None:
        self.status.state = "stopping"
        self.pool.stop_all(self.environment.stop_timeout)
        self.status.user_count = 0
        self.send_stats()

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
        self.recorder.record(
            request_type, name, response_time, response_length or 0, exception, self.clock()
        )

    def _on_user_error(self, user_instance: object, exception: BaseException, tb: Any) -> None:
        # As Locust's worker: the message is str(exception), the traceback its frames.
        frames = "".join(traceback.format_tb(tb)) if isinstance(tb, TracebackType) else str(tb)
        self.link.send(m.ExceptionReport(self.node_id, msg=str(exception), traceback=frames))

    def send_stats(self) -> None:
        """Send the stats gathered since the last report."""
        counts = self.pool.counts()
        total = sum(counts.values())
        if self.status.horde is not None:
            if not self.run_id:
                return
            self.seq += 1
            delta = self.recorder.take_horde_delta(
                run_id=self.run_id,
                epoch=self.epoch,
                seq=self.seq,
                now=self.clock(),
                user_classes_count=counts,
                user_count=total,
            )
            self.link.send(m.HordeStats(self.node_id, delta))
            return
        report = self.recorder.take_locust_report(
            now=self.clock(), user_classes_count=counts, user_count=total
        )
        extra: dict[str, Any] = {}
        self.environment.events.report_to_master.fire(client_id=self.node_id, data=extra)
        if extra:
            report = dataclasses.replace(report, extra={**report.extra, **extra})
        self.link.send(m.LocustStats(self.node_id, report))

    def _stats_loop(self) -> None:
        while True:
            gevent.sleep(self.settings.stats_interval)
            try:
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
        status = self.status
        while True:
            before = time.monotonic()
            gevent.sleep(LOOP_PROBE_INTERVAL)
            after = time.monotonic()
            status.max_lag = max(status.max_lag, after - before - LOOP_PROBE_INTERVAL)
            status.last_tick = after
