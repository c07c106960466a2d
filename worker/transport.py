"""The worker's link to its master: a DEALER socket in an OS thread of its own.

The thread registers (``client_ready`` until ``ack``, retried after 0.25 s, 0.5 s, 1 s
... up to every ``register_retry``, forever: unlike Locust's worker it never gives up; an
unanswered attempt is retried on a fresh socket, and the wait is logged sparsely),
heartbeats every interval with figures it gathers itself (CPU and RSS from psutil) and
figures the gevent side leaves in a shared :class:`LinkStatus` (state, users, loop lag),
answers ``reconnect`` by rebuilding its socket, and re-registers when a restarted master
asks. Because it is a real thread, user code that blocks the gevent loop cannot silence the
heartbeat, and the loop lag it reports shows the block. The thread makes a pass at least
every :data:`~horde.worker.handoff.LINK_TICK` and stamps it in :attr:`LinkStatus.handoff`;
when users that spin keep it from the GIL, the gevent side's probe makes way for it
(:mod:`horde.worker.handoff`).

With a horde master the thread numbers its heartbeats (``beat``) and renews the worker's
lease (:mod:`horde.worker.lease`, kept in :attr:`LinkStatus.lease`) from the master's
echoes; a horde master that stays silent for ``master_silence`` seconds is registered with
again on a fresh socket. A ``reconnect`` that arrives while the thread is registering
already (an answer to a heartbeat queued before) is ignored. Locust masters get Locust's
heartbeat and no lease.

The gevent side talks to the thread through an inproc PAIR socket pair (thread-safe by
construction): :meth:`WorkerLink.send` and :meth:`WorkerLink.recv`, on ``zmq.green``.

Imports: zmq (plain, in the thread), zmq.green (gevent side), psutil, gevent's
``get_original`` for a native thread, horde.protocol.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import psutil
import structlog
import zmq
import zmq.green as gzmq
from gevent.monkey import get_original
from zmq.utils.monitor import parse_monitor_message

from horde.protocol import messages as m
from horde.protocol.codec import AnyMessage, decode_downstream, encode
from horde.protocol.errors import ProtocolError, TransportError
from horde.protocol.link import apply_link_options
from horde.protocol.security import ClientKeys, apply_curve_client
from horde.protocol.states import WorkerState
from horde.worker.config import DEFAULT_MASTER_SILENCE, LOOP_PROBE_INTERVAL
from horde.worker.diagnose import link_problem, monitored_events, waiting_hint
from horde.worker.handoff import LINK_TICK, Handoff
from horde.worker.lease import Lease

log = structlog.get_logger("horde.worker")
_start_native_thread = get_original("_thread", "start_new_thread")

_SEND = b"send"
_CLOSE = b"close"
_RECONNECT = b"reconnect"
_REREGISTER = b"reregister"
#: Seconds unregistered before the first "still trying" log line; the gap then doubles,
#: up to the maximum.
_WAIT_LOG_FIRST = 5.0
_WAIT_LOG_MAX = 300.0
#: Seconds before the first client_ready retry; the delay doubles up to ``register_retry``.
FIRST_REGISTER_RETRY = 0.25
#: Longest a socket whose handshake has not finished is kept for a retry: while a fleet
#: starts, the master's accept queue and handshakes take seconds (CURVE: about 6 s for
#: 5,000), and a fresh socket would only join the back of the queue again.
HANDSHAKE_WAIT = 10.0


def register_delay(attempts: int, register_retry: float) -> float:
    """Seconds to wait for an ack after the ``attempts``-th client_ready before retrying."""
    return min(register_retry, FIRST_REGISTER_RETRY * 2 ** min(attempts - 1, 16))


@dataclass(slots=True)
class LinkStatus:
    """Figures shared between the gevent side and the link thread.

    The gevent side writes state, users and loop ticks; the thread writes the rest (the
    registration, the master's horde version, the lease). Every write is one attribute
    store, so a reader on the other side sees an old or a new value, never a torn one.
    """

    state: WorkerState = WorkerState.READY
    user_count: int = 0
    last_tick: float = field(default_factory=time.monotonic)
    max_lag: float = 0.0
    horde: int | None = None
    registered: bool = False
    last_master_contact: float = 0.0
    heartbeats_sent: int = 0
    dropped_sends: int = 0
    malformed: int = 0
    lease: Lease = field(default_factory=Lease)
    handoff: Handoff = field(default_factory=Handoff)
    forward_heartbeats: bool = False
    """Whether the thread passes the master's heartbeats on (a script listens for them)."""

    def loop_lag(self, now: float) -> float:
        """The worst lag since the last call, counting a loop that is blocked right now."""
        lag = max(self.max_lag, now - self.last_tick - LOOP_PROBE_INTERVAL, 0.0)
        self.max_lag = 0.0
        return lag


class WorkerLink:
    """A DEALER connected to the master, run by a native thread; start with :meth:`start`."""

    def __init__(
        self,
        endpoint: str,
        node_id: str,
        status: LinkStatus,
        *,
        heartbeat_interval: float,
        register_retry: float,
        max_frame: int,
        master_silence: float = DEFAULT_MASTER_SILENCE,
        curve: ClientKeys | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.curve = curve
        self.node_id = node_id
        self.status = status
        self.heartbeat_interval = heartbeat_interval
        self.register_retry = register_retry
        self.max_frame = max_frame
        self._context: zmq.Context | None = None
        self._pair: gzmq.Socket | None = None
        self._inproc = f"inproc://horde-link-{id(self)}"
        self._process = psutil.Process()
        self._done = False
        # the link thread's own state
        self._silence = max(master_silence, 3 * heartbeat_interval)
        self._dealer: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._monitors = 0
        self._problem: str | None = None
        """What the last handshake event said is wrong (None: nothing, or not known)."""
        self._handshake = "pending"
        """The current socket's handshake: pending, done or failed (from the monitor)."""
        self._dealer_born = 0.0
        self._beat = 0
        self._next_beat = 0.0
        self._next_register = 0.0
        self._ready_attempts = 0
        self._ready_sent_at = 0.0
        self._unregistered_at = 0.0
        self._next_wait_log = self._wait_log_gap = _WAIT_LOG_FIRST

    # --- gevent side ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the link thread; returns at once."""
        self._context = zmq.Context()
        thread_pair = self._context.socket(zmq.PAIR)
        thread_pair.bind(self._inproc)
        green: gzmq.Context = gzmq.Context.shadow(self._context.underlying)
        self._pair = green.socket(zmq.PAIR)
        self._pair.connect(self._inproc)
        self._process.cpu_percent(None)
        _start_native_thread(self._thread_main, (thread_pair,))

    def send(self, message: AnyMessage) -> None:
        """Queue ``message`` for the master (never blocks for long)."""
        if self._pair is None:
            raise TransportError("link is not started")
        self._pair.send_multipart([_SEND, encode(message)])

    def recv(self) -> AnyMessage:
        """Wait (cooperatively) for the next message from the master."""
        if self._pair is None:
            raise TransportError("link is not started")
        while True:
            raw = self._pair.recv()
            try:
                return decode_downstream(raw, max_size=self.max_frame)
            except ProtocolError as exc:
                self.status.malformed += 1
                log.warning("malformed frame from master", error=str(exc)[:200])

    def reconnect(self) -> None:
        """Ask the thread to rebuild its socket and register again."""
        if self._pair is not None:
            self._pair.send_multipart([_RECONNECT])

    def reregister(self) -> None:
        """Ask the thread to register again (client_ready until ack), after what was sent."""
        if self._pair is not None:
            self._pair.send_multipart([_REREGISTER])

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread, waiting up to ``timeout`` for queued sends to leave."""
        if self._pair is None:
            return
        self._pair.send_multipart([_CLOSE])
        import gevent

        deadline = time.monotonic() + timeout
        while not self._done and time.monotonic() < deadline:
            gevent.sleep(0.01)
        self._pair.close(linger=0)
        self._pair = None

    # --- the link thread -----------------------------------------------------------------

    def _new_dealer(self) -> zmq.Socket:
        assert self._context is not None
        dealer = self._context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.IDENTITY, self.node_id.encode())
        dealer.setsockopt(zmq.LINGER, 1000)
        dealer.setsockopt(zmq.SNDHWM, 1000)
        dealer.setsockopt(zmq.RECONNECT_IVL, 200)
        dealer.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        apply_link_options(dealer, zmq)
        if self.curve is not None:
            apply_curve_client(dealer, self.curve, zmq)
        self._monitors += 1
        self._handshake = "pending"
        self._dealer_born = time.monotonic()
        address = f"inproc://horde-link-monitor-{id(self)}-{self._monitors}"
        self._monitor = dealer.get_monitor_socket(monitored_events(zmq), address)
        dealer.connect(self.endpoint)
        return dealer

    def _thread_main(self, pair: zmq.Socket) -> None:
        try:
            self._run(pair)
        except Exception:  # the thread must say why it ended
            log.exception("worker link thread failed")
        finally:
            pair.close(linger=0)
            self.status.handoff.ended()
            self._done = True

    def _run(self, pair: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(pair, zmq.POLLIN)
        self._rebuild(poller)
        self._unregister(time.monotonic())
        handoff = self.status.handoff
        while True:
            due = self._tick(poller, time.monotonic())
            now = time.monotonic()
            handoff.passed(now)
            timeout_ms = max(0, int((min(due - now, LINK_TICK)) * 1000)) + 1
            for sock, _ in poller.poll(timeout_ms):
                if sock is pair:
                    frames = pair.recv_multipart()
                elif sock is self._monitor:
                    self._read_monitor()
                    continue
                elif self._drain_dealer(pair):
                    frames = [_RECONNECT]
                else:
                    continue
                if frames[0] == _SEND:
                    self._dealer_send(frames[1])
                elif frames[0] == _RECONNECT:
                    log.info("reconnecting to master", endpoint=self.endpoint)
                    self._rebuild(poller)
                    self._unregister(time.monotonic())
                elif frames[0] == _REREGISTER:
                    self._unregister(time.monotonic())
                elif frames[0] == _CLOSE:
                    assert self._dealer is not None
                    self._close_monitor(poller)
                    self._dealer.close(linger=1000)
                    return

    def _tick(self, poller: zmq.Poller, now: float) -> float:
        """Send what is due (client_ready while unregistered, else a heartbeat); return
        when the next thing is due."""
        status = self.status
        if not status.registered:
            if now >= self._next_register:
                self._send_ready(poller, now)
            return self._next_register
        if status.horde is not None and now - status.last_master_contact > self._silence:
            log.warning(
                "no word from the master, registering again on a fresh socket",
                silent=round(now - status.last_master_contact, 1),
            )
            self._rebuild(poller)
            self._unregister(now)
            return now
        if now >= self._next_beat:
            self._dealer_send(encode(self._heartbeat(now)))
            status.heartbeats_sent += 1
            self._next_beat = max(self._next_beat + self.heartbeat_interval, now)
        return self._next_beat

    def _send_ready(self, poller: zmq.Poller, now: float) -> None:
        """Send client_ready; after one that went unanswered, on a fresh socket.

        A fresh socket drops the queued copies (a master that starts later gets one, not a
        backlog) and gets a new route if the master ignores the old connection: a ROUTER
        without handover silently ignores a connection whose identity it still holds, which
        is what happens after a ``reconnect`` while the master is still reading the old
        connection's backlog of heartbeats. Hence the quick first retries. A socket whose
        handshake has not finished yet (the socket monitor says) is kept, up to
        :data:`HANDSHAKE_WAIT`: at a fleet start, it is waiting in the master's queue.
        """
        if self._ready_attempts and self.status.last_master_contact < self._ready_sent_at:
            if self._handshake == "pending" and now - self._dealer_born < HANDSHAKE_WAIT:
                # Still being admitted: a copy is queued already, and a fresh socket
                # would start over at the back of the master's accept queue.
                self._next_register = now + FIRST_REGISTER_RETRY
                return
            self._rebuild(poller)
        self._dealer_send(encode(m.ClientReady(self.node_id)))
        self._ready_attempts += 1
        self._ready_sent_at = now
        self._next_register = now + register_delay(self._ready_attempts, self.register_retry)
        waited = now - self._unregistered_at
        if self._ready_attempts > 1 and waited >= self._next_wait_log:
            log.warning(
                "no answer from the master yet, still trying",
                endpoint=self.endpoint,
                waited=round(waited),
                attempts=self._ready_attempts,
                cause=self._problem or waiting_hint(secure=self.curve is not None),
            )
            self._wait_log_gap = min(self._wait_log_gap * 2, _WAIT_LOG_MAX)
            self._next_wait_log = waited + self._wait_log_gap

    def _unregister(self, now: float) -> None:
        """Start (re-)registering: client_ready now, then every ``register_retry``."""
        self.status.registered = False
        self._next_register = now
        self._ready_attempts = 0
        self._unregistered_at = now
        self._next_wait_log = self._wait_log_gap = _WAIT_LOG_FIRST

    def _rebuild(self, poller: zmq.Poller) -> None:
        """Replace the DEALER (same identity), dropping whatever it still queued."""
        if self._dealer is not None:
            self._close_monitor(poller)
            poller.unregister(self._dealer)
            self._dealer.close(linger=0)
        self._dealer = self._new_dealer()
        poller.register(self._dealer, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)

    def _close_monitor(self, poller: zmq.Poller) -> None:
        if self._monitor is None or self._dealer is None:
            return
        poller.unregister(self._monitor)
        self._dealer.disable_monitor()
        self._monitor.close(linger=0)
        self._monitor = None

    def _read_monitor(self) -> None:
        """Log a handshake problem once when it appears (and when it changes)."""
        assert self._monitor is not None
        while True:
            try:
                frames = self._monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            event = parse_monitor_message(frames)
            # only handshake events are monitored: one succeeded, or one failed
            succeeded = event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
            self._handshake = "done" if succeeded else "failed"
            secure = self.curve is not None
            problem = link_problem(event["event"], event["value"], secure=secure, zmq=zmq)
            if problem is not None and problem != self._problem:
                log.error("cannot join the master", endpoint=self.endpoint, cause=problem)
            self._problem = problem

    def _drain_dealer(self, pair: zmq.Socket) -> bool:
        """Forward what the master sent; return True when it asked for a reconnect."""
        assert self._dealer is not None
        status = self.status
        while True:
            try:
                raw = self._dealer.recv(zmq.NOBLOCK)
            except zmq.Again:
                return False
            status.last_master_contact = time.monotonic()
            try:
                message = decode_downstream(raw, max_size=self.max_frame)
            except ProtocolError:
                pair.send(raw)  # the gevent side counts and logs it
                continue
            if isinstance(message, m.MasterHeartbeat):
                if message.beat is not None:
                    status.lease.answered(message.beat)
                if status.forward_heartbeats:  # the script listens (heartbeat_received)
                    pair.send(raw)
                continue
            if isinstance(message, m.Reconnect) and not status.registered:
                continue  # an answer to a stale heartbeat: we are registering already
            if isinstance(message, m.Ack):
                self._on_ack(message)
            pair.send(raw)
            if isinstance(message, m.Reconnect):
                return True

    def _on_ack(self, message: m.Ack) -> None:
        status = self.status
        waited = time.monotonic() - self._unregistered_at
        if not status.registered and self._ready_attempts > 1:
            log.info("master answered", waited=round(waited, 1), attempts=self._ready_attempts)
        status.horde = message.horde
        status.lease.grant(message.lease if message.horde is not None else None)
        status.registered = True
        self._next_beat = time.monotonic()

    def _dealer_send(self, payload: bytes) -> None:
        assert self._dealer is not None
        try:
            self._dealer.send(payload, zmq.NOBLOCK)
        except zmq.ZMQError:
            self.status.dropped_sends += 1

    def _heartbeat(self, now: float) -> m.WorkerHeartbeat:
        status = self.status
        try:
            cpu = self._process.cpu_percent(None)
            rss = self._process.memory_info().rss
        except psutil.Error:
            cpu, rss = 0.0, 0
        if status.horde is None:
            return m.WorkerHeartbeat(self.node_id, status.state, cpu, rss)
        self._beat += 1
        status.lease.sent(self._beat, now)
        return m.WorkerHeartbeat(
            self.node_id,
            status.state,
            cpu,
            rss,
            user_count=status.user_count,
            loop_lag=round(status.loop_lag(now), 6),
            beat=self._beat,
        )
