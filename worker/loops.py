"""The worker's gevent side: the loops that feed the agent and carry out what it decides.

Responsibility: :class:`WorkerRuntime` runs one worker's greenlets (receive, stats, lease
check, loop probe, logs) and is the only worker code that sleeps or reads a clock. Each
loop observes the moment (:meth:`WorkerRuntime.facts`), asks the pure
:class:`~horde.worker.agent.WorkerAgent` what to do, and carries out the actions in order
(:meth:`WorkerRuntime.execute`): it sends on the link, applies counts to the user pool,
fires the script's events and writes the figures the link thread's heartbeat reports
(:class:`~horde.worker.transport.LinkStatus`). It also records every request users make
(the ``request`` event) and reports the exceptions their tasks raise. Nothing starts in
the constructor; :meth:`WorkerRuntime.run` does the work.

The heartbeat and lease renewal stay in the link's own OS thread
(:mod:`horde.worker.transport`), so user code that blocks these loops cannot silence them;
the probe loop hands that thread the GIL when users that spin keep it waiting
(:mod:`horde.worker.handoff`).

Imports: gevent, structlog, horde.protocol, horde.worker (agent, arrival, config, pool,
stats, transport) and the user API (environment, pacing).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import gevent
import gevent.event
import structlog

from horde.protocol import messages as m
from horde.protocol.codec import AnyMessage
from horde.protocol.errors import HordeError
from horde.worker import agent as a
from horde.worker.api.environment import Environment
from horde.worker.api.pacing import current_lateness
from horde.worker.api.usage import monitor_usage
from horde.worker.arrival import ArrivalRunner
from horde.worker.config import LEASE_CHECK_INTERVAL, LOOP_PROBE_INTERVAL
from horde.worker.pool import UserPool
from horde.worker.transport import LinkStatus, WorkerLink

log = structlog.get_logger("horde.worker")


class WorkerRuntime:
    """Runs one worker's users as its agent decides, until the master says ``quit``."""

    def __init__(
        self,
        agent: a.WorkerAgent,
        link: WorkerLink,
        *,
        status: LinkStatus,
        environment: Environment,
        pool: UserPool,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        new_log_lines: Callable[[], list[str]] | None = None,
        arrivals: ArrivalRunner | None = None,
    ) -> None:
        """Wire the parts; no I/O, no greenlets until :meth:`run`."""
        self.agent = agent
        self.settings = agent.settings
        self.recorder = agent.recorder
        self.link = link
        self.status = status
        self._listening = False
        self.environment = environment
        self.pool = pool
        self.clock = clock
        self.monotonic = monotonic
        self.new_log_lines = new_log_lines
        self.arrivals = arrivals
        self._greenlets: list[gevent.Greenlet] = []
        self._done = gevent.event.Event()
        self._doers: dict[type, Callable[[Any], None]] = {
            a.Send: self._send,
            a.Report: self._report,
            a.SetState: self._set_state,
            a.SetUserCount: self._set_user_count,
            a.ApplySpawn: self._apply_spawn,
            a.StartUsers: self._start_users,
            a.StopUsers: self._stop_users,
            a.Configure: self._configure,
            a.Fire: self._fire,
            a.SendLocustStats: self._send_locust_stats,
            a.Reregister: self._reregister,
            a.Finish: self._finish,
            a.Deliver: self._deliver,
        }

    # --- lifecycle -----------------------------------------------------------------------

    def listen(self) -> None:
        """Record requests and user errors (once): called before the script's ``init``
        listeners run, so the recording listeners come first, as Locust's runner's do (a
        script's ``request`` listener that raises ``RescheduleTask`` cannot skip them)."""
        if self._listening:
            return
        self._listening = True
        events = self.environment.events
        events.request.add_listener(self.on_request)
        events.user_error.add_listener(self.on_user_error)

    def run(self) -> int:
        """Connect, follow the master until it says ``quit``; return the exit code."""
        self.listen()
        events = self.environment.events
        self.status.forward_heartbeats = bool(events.heartbeat_received.listeners)
        self.link.start()
        log.info("worker connecting", master=self.link.endpoint, node_id=self.agent.node_id)
        self._greenlets = [
            gevent.spawn(self._receive_loop),
            gevent.spawn(self._stats_loop),
            gevent.spawn(self._probe_loop),
            gevent.spawn(self._lease_loop),
            gevent.spawn(monitor_usage, self.environment),
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
        self.execute(self.agent.shutdown(self.monotonic(), self.facts()))

    def handle(self, message: AnyMessage) -> None:
        """React to one message from the master: ask the agent, do what it says.

        Arrival-rate grants go to the arrival runner (only under a lease); after a horde
        ``ack`` the master hears this worker's arrival pool.
        """
        if type(message) is m.HordeRate:
            if self.arrivals is not None and not self.status.lease.expired(self.monotonic()):
                self.arrivals.grant(message)
            return
        self.execute(self.agent.handle(message, self.monotonic(), self.facts()))
        if type(message) is m.Ack and message.horde is not None and self.arrivals is not None:
            self.link.send(self.arrivals.report(self.agent.node_id))

    def check_lease(self) -> None:
        """Run the agent's lease check now."""
        self.execute(self.agent.check_lease(self.monotonic(), self.facts()))

    def send_stats(self, *, final: bool = False) -> None:
        """Send the stats gathered since the last report (as the agent decides), with what
        the script's ``report_to_master`` listeners add."""
        extra: dict[str, Any] = {}
        if self.environment.events.report_to_master.listeners:
            self.environment.events.report_to_master.fire(client_id=self.agent.node_id, data=extra)
        self.execute(self.agent.report(self.monotonic(), self.facts(), final=final, extra=extra))
        if self.arrivals is not None and self.arrivals.run_id and self.status.horde is not None:
            self.link.send(self.arrivals.report(self.agent.node_id))

    def resend_stats(self) -> None:
        """Send the unacknowledged deltas again if acks stalled."""
        self.execute(self.agent.resend(self.monotonic(), self.facts()))

    def facts(self) -> a.Facts:
        """What the agent decides from: the link's status, the pool, the wall clock."""
        status = self.status
        pooled = self.arrivals.greenlet_count if self.arrivals is not None else 0
        return a.Facts(
            state=status.state,
            users=self.pool.greenlet_count + pooled,
            counts=self.pool.counts(),
            registered=status.registered,
            horde=status.horde is not None,
            lease=status.lease,
            wall=self.clock(),
        )

    # --- carrying out actions ------------------------------------------------------------

    def execute(self, actions: Iterable[a.Action]) -> None:
        """Carry out the agent's actions in order (a stop blocks until its users end)."""
        doers = self._doers
        for action in actions:
            doers[type(action)](action)

    def _send(self, action: a.Send) -> None:
        self.link.send(action.message)

    def _report(self, action: a.Report) -> None:
        self.send_stats(final=action.final)

    def _set_state(self, action: a.SetState) -> None:
        self.status.state = action.state

    def _set_user_count(self, action: a.SetUserCount) -> None:
        self.status.user_count = action.count

    def _apply_spawn(self, action: a.ApplySpawn) -> None:
        self.execute(self.agent.apply_spawn(action.spawn, self.monotonic(), self.facts()))

    def _start_users(self, action: a.StartUsers) -> None:
        error = None
        try:
            self.pool.apply(dict(action.counts), action.host)
        except HordeError as exc:  # e.g. a class this worker's script does not define
            error = str(exc)
        self.execute(self.agent.users_started(self.pool.counts(), error))

    def _stop_users(self, action: a.StopUsers) -> None:
        timeout = self.environment.stop_timeout if action.graceful else 0
        if self.arrivals is not None:
            self.arrivals.stop(timeout)
        self.pool.stop_all(timeout)

    def _configure(self, action: a.Configure) -> None:
        environment = self.environment
        environment.stop_timeout = action.stop_timeout
        if action.host:
            environment.host = action.host
        if action.tags is not None:
            environment.set_tags(*action.tags)
        if action.options:
            environment.parsed_options.update(action.options)

    def _fire(self, action: a.Fire) -> None:
        if action.event == "test_start":  # a new test: -i counts its iterations afresh
            self.environment.iterations.reset()
        hook = getattr(self.environment.events, action.event)
        if action.arguments is None:
            hook.fire(environment=self.environment)
        else:
            hook.fire(**dict(action.arguments))

    def _send_locust_stats(self, action: a.SendLocustStats) -> None:
        self.link.send(m.LocustStats(self.agent.node_id, action.report))

    def _reregister(self, action: a.Reregister) -> None:
        self.link.reregister()

    def _deliver(self, action: a.Deliver) -> None:
        runner = self.environment.runner
        if runner is None or not runner.deliver(action.message):
            log.warning("unexpected message from master", type=action.message.type)

    def _finish(self, action: a.Finish) -> None:
        self._done.set()

    # --- listeners on the script's events ------------------------------------------------

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int,
        exception: BaseException | str | None = None,
        **_: Any,
    ) -> None:
        """Record one request a user made (the ``request`` event)."""
        recorder = self.recorder
        recorder.record(
            request_type, name, response_time, response_length or 0, exception, self.clock()
        )
        if response_time is not None:
            lateness = current_lateness()
            if lateness is not None:
                recorder.record_corrected(request_type, name, response_time, lateness)

    def on_user_error(self, user_instance: object, exception: BaseException, tb: Any) -> None:
        """Report an exception a task raised (the ``user_error`` event)."""
        self.execute(self.agent.user_error(exception, tb))

    # --- the loops -----------------------------------------------------------------------

    def _receive_loop(self) -> None:
        heartbeat_received = self.environment.events.heartbeat_received
        while not self.agent.quitting:
            message = self.link.recv()
            if type(message) is m.MasterHeartbeat:  # forwarded only for this hook
                client_id = self.agent.node_id
                heartbeat_received.fire(client_id=client_id, timestamp=self.clock())
                continue
            try:
                self.handle(message)
            except Exception:  # one bad command must not end the worker
                log.exception("handling a message failed", type=message.type)

    def _lease_loop(self) -> None:
        while True:
            gevent.sleep(LEASE_CHECK_INTERVAL)
            try:
                self.check_lease()
            except Exception:
                log.exception("lease check failed")

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
            self.execute(self.agent.log_lines(new_lines()))

    def _probe_loop(self) -> None:
        """Prove the loop is alive, make way for a link thread kept from the GIL
        (:mod:`horde.worker.handoff`), and keep the heartbeat's user count current (users
        that end on their own, e.g. by ``StopUser``, leave the pool between spawns)."""
        status = self.status
        while True:
            status.handoff.make_way(self.monotonic())
            before = self.monotonic()
            gevent.sleep(LOOP_PROBE_INTERVAL)
            after = self.monotonic()
            status.max_lag = max(status.max_lag, after - before - LOOP_PROBE_INTERVAL)
            status.last_tick = after
            status.user_count = self.pool.user_count
