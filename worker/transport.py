"""The worker's link to its master: a DEALER socket in an OS thread of its own.

The thread registers (``client_ready`` until ``ack``), heartbeats every interval with
figures it gathers itself (CPU and RSS from psutil) and figures the gevent side leaves in
a shared :class:`LinkStatus` (state, users, loop lag), answers ``reconnect`` by
rebuilding its socket, and re-registers when a restarted master asks. Because it is a
real thread, user code that blocks the gevent loop cannot silence the heartbeat, and the
loop lag it reports shows the block.

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

from horde.protocol import messages as m
from horde.protocol.codec import AnyMessage, decode_downstream, encode
from horde.protocol.errors import ProtocolError, TransportError
from horde.worker.config import LOOP_PROBE_INTERVAL

log = structlog.get_logger("horde.worker")
_start_native_thread = get_original("_thread", "start_new_thread")

_SEND = b"send"
_CLOSE = b"close"
_RECONNECT = b"reconnect"


@dataclass(slots=True)
class LinkStatus:
    """Figures shared between the gevent side (writer) and the link thread (reader)."""

    state: str = "ready"
    user_count: int = 0
    last_tick: float = field(default_factory=time.monotonic)
    max_lag: float = 0.0
    horde: int | None = None
    registered: bool = False
    last_master_contact: float = 0.0
    heartbeats_sent: int = 0
    dropped_sends: int = 0
    malformed: int = 0

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
    ) -> None:
        self.endpoint = endpoint
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
        dealer.setsockopt(zmq.HEARTBEAT_IVL, 1000)
        dealer.setsockopt(zmq.HEARTBEAT_TIMEOUT, 5000)
        dealer.setsockopt(zmq.TCP_KEEPALIVE, 1)
        dealer.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 30)
        dealer.connect(self.endpoint)
        return dealer

    def _thread_main(self, pair: zmq.Socket) -> None:
        try:
            self._run(pair)
        except Exception:  # the thread must say why it ended
            log.exception("worker link thread failed")
        finally:
            pair.close(linger=0)
            self._done = True

    def _run(self, pair: zmq.Socket) -> None:
        dealer = self._new_dealer()
        poller = zmq.Poller()
        poller.register(dealer, zmq.POLLIN)
        poller.register(pair, zmq.POLLIN)
        next_register = time.monotonic()
        next_beat = time.monotonic()
        while True:
            now = time.monotonic()
            status = self.status
            if not status.registered and now >= next_register:
                self._dealer_send(dealer, encode(m.ClientReady(self.node_id)))
                next_register = now + self.register_retry
            if status.registered and now >= next_beat:
                self._dealer_send(dealer, encode(self._heartbeat(now)))
                status.heartbeats_sent += 1
                next_beat = max(next_beat + self.heartbeat_interval, now)
            due = next_beat if status.registered else next_register
            timeout_ms = max(0, int((due - time.monotonic()) * 1000)) + 1
            for sock, _ in poller.poll(timeout_ms):
                if sock is dealer:
                    if not self._drain_dealer(dealer, pair):
                        continue
                    frames = [_RECONNECT]
                else:
                    frames = pair.recv_multipart()
                if frames[0] == _SEND:
                    self._dealer_send(dealer, frames[1])
                elif frames[0] == _RECONNECT:
                    log.info("reconnecting to master", endpoint=self.endpoint)
                    poller.unregister(dealer)
                    dealer.close(linger=0)
                    dealer = self._new_dealer()
                    poller.register(dealer, zmq.POLLIN)
                    status.registered = False
                    next_register = time.monotonic()
                elif frames[0] == _CLOSE:
                    dealer.close(linger=1000)
                    return

    def _drain_dealer(self, dealer: zmq.Socket, pair: zmq.Socket) -> bool:
        """Forward what the master sent; return True when it asked for a reconnect."""
        reconnect = False
        while not reconnect:
            try:
                raw = dealer.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            self.status.last_master_contact = time.monotonic()
            try:
                message = decode_downstream(raw, max_size=self.max_frame)
            except ProtocolError:
                pair.send(raw)  # the gevent side counts and logs it
                continue
            if isinstance(message, m.MasterHeartbeat):
                continue
            if isinstance(message, m.Ack):
                self.status.registered = True
                self.status.horde = message.horde
            elif isinstance(message, m.Reconnect):
                reconnect = True
            pair.send(raw)
        return reconnect

    def _dealer_send(self, dealer: zmq.Socket, payload: bytes) -> None:
        try:
            dealer.send(payload, zmq.NOBLOCK)
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
        return m.WorkerHeartbeat(
            self.node_id,
            status.state,
            cpu,
            rss,
            user_count=status.user_count,
            loop_lag=round(status.loop_lag(now), 6),
        )
