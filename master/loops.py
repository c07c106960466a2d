"""The master's greenlets: the only code on the master that waits or sleeps.

:class:`MasterLoops` owns the ROUTER transports and the greenlets: one receive loop per
transport (frames -> codec -> coordinator) and the timer loop (liveness sweep, ramp steps,
run-time deadline). Several transports can feed one coordinator (the Locust-compatible
plaintext endpoint, and later an authenticated one beside it); a worker is answered on the
transport it last spoke on. Below a rate of frames, a receive loop answers heartbeats as
they arrive and handles the other frames in batches (:mod:`horde.master.arrivals`).
Commands from the HTTP shim or the CLI go through
:meth:`command`, which runs them on the coordinator with the current time and wakes the
timer loop; readers take :meth:`snapshot` (or the cheaper :meth:`run_snapshot`).
Nothing that a peer sends can end a receive loop: decode errors are counted, handler
bugs are logged.

Imports: gevent, structlog, horde.master, horde.protocol.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import gevent
import gevent.event
import structlog

from horde.master.arrivals import HOLD_RATE_MAX, ArrivalGauge, HeldBatch
from horde.master.config import MasterSettings
from horde.master.coordinator import Coordinator
from horde.master.process import Scheduling
from horde.master.snapshot import MasterSnapshot, RunSnapshot
from horde.master.transport import RouterTransport
from horde.protocol.codec import AnyMessage, decode_upstream_many, encode
from horde.protocol.errors import ProtocolError, TransportError

log = structlog.get_logger("horde.master")
T = TypeVar("T")
YIELD_EVERY = 128
"""Frames a receive loop handles before it lets other greenlets run."""
RECEIVE_PAUSE = 0.005
"""How long a receive loop gathers frames before it handles them together (seconds).

With thousands of workers (frames arriving faster than
:data:`~horde.master.arrivals.HOLD_RATE_MAX`), a receive loop that emptied its queue
waits this long before it looks again: the next look then finds a batch rather than one
frame, and the costs paid per wake-up (the hub, libzmq's signalling, the numpy calls that
validate and merge a batch of deltas) are shared by the batch, for at most this much added
latency. Slower, it keeps receiving instead: it answers each heartbeat as it arrives and
holds the other frames for this long (a :class:`~horde.master.arrivals.HeldBatch`).
"""
SWEEP_DEFER_MAX = 10.0
"""Longest the liveness sweep waits for a receive loop that has a backlog (seconds)."""
PAUSE_MAX = 0.05
"""Longest :meth:`MasterLoops.pause` waits for a receive loop's turn (seconds)."""
SLICE_SECONDS = 0.001
"""How long a long job (a :class:`Pacer`'s) works between two pauses (seconds), while
heartbeats are answered as they arrive: a heartbeat waits for one slice at most."""
SLICE_SECONDS_BATCHED = 0.004
"""The same while frames arrive fast and are handled in batches
(:data:`~horde.master.arrivals.HOLD_RATE_MAX`): each pause costs a batch, and heartbeats
wait for a receive pause anyway."""


class Pacer:
    """A long job's pause point: it pauses once ``budget`` seconds have run since the last.

    The job calls it often (every few rows); only every ``budget`` of work does it
    call ``pause``, so the slices are even whatever a row costs.
    """

    def __init__(
        self,
        pause: Callable[[], None],
        budget: float = SLICE_SECONDS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._pause = pause
        self._budget = budget
        self._clock = clock
        self._since = clock()
        self.pauses = 0
        """How many times it paused."""

    def __call__(self) -> None:
        """Pause if this slice has used its budget."""
        if self._clock() - self._since >= self._budget:
            self._pause()
            self.pauses += 1
            self._since = self._clock()


class MasterLoops:
    """Runs a coordinator on one or more transports; nothing starts until :meth:`start`."""

    def __init__(
        self,
        coordinator: Coordinator,
        transports: Sequence[RouterTransport],
        *,
        clock: Callable[[], float] = time.time,
        scheduling: Scheduling | None = None,
    ) -> None:
        if not transports:
            raise ValueError("at least one transport is needed")
        self.coordinator = coordinator
        self.transports = list(transports)
        self.clock = clock
        self._routes: dict[str, RouterTransport] = {}
        self._wake = gevent.event.Event()
        self._greenlets: list[gevent.Greenlet] = []
        self._running = False
        self._turn = gevent.event.Event()
        """Set (and replaced) each time a receive loop has handled a batch."""
        self._nudge = gevent.event.Event()
        """Set by :meth:`pause`: a receive loop waiting out its pause looks again now."""
        self._scheduling = scheduling or Scheduling()
        """Batch scheduling while frames arrive fast (see :mod:`horde.master.process`)."""
        self._held: dict[RouterTransport, HeldBatch] = {}
        """Each receive loop's frames held to be handled together (see :mod:`.arrivals`)."""
        self.turned = time.monotonic()
        """When the timer loop last turned (monotonic; the health endpoint's liveness)."""
        self._behind_since: float | None = None
        """When a receive loop last started to have frames waiting (None: it is caught up).

        Heartbeats that wait in our own inbox are not a worker's silence: while a receive
        loop works through a backlog (a burst: every worker's answer to a swarm at once),
        the liveness sweep waits, up to :data:`SWEEP_DEFER_MAX`.
        """

    @property
    def running(self) -> bool:
        """Whether the sockets are bound and the loops run (from :meth:`start` to :meth:`stop`)."""
        return self._running

    @property
    def transport(self) -> RouterTransport:
        """The first (Locust-compatible) transport."""
        return self.transports[0]

    def start(self) -> list[str]:
        """Bind every socket and start the loops; return the bound endpoints."""
        endpoints = [transport.open() for transport in self.transports]
        self._scheduling.start()  # libzmq's I/O thread exists now
        self._running = True
        self._greenlets = [gevent.spawn(self._receive_loop, t) for t in self.transports]
        self._greenlets.append(gevent.spawn(self._timer_loop))
        log.info("master listening", endpoints=endpoints)
        return endpoints

    def send(self, worker_id: str, message: AnyMessage) -> None:
        """Encode and send one message; a failed send is counted, never raised."""
        transport = self._routes.get(worker_id, self.transports[0])
        try:
            transport.send(worker_id, encode(message))
        except TransportError as exc:
            self.coordinator.counters.count("send_failed")
            log.debug("send failed", worker=worker_id, type=message.type, error=str(exc))

    def command(self, action: Callable[[Coordinator, float], T]) -> T:
        """Run ``action(coordinator, now)`` and wake the timer loop to act on its result."""
        try:
            return action(self.coordinator, self.clock())
        finally:
            self._wake.set()

    @property
    def settings(self) -> MasterSettings:
        """The coordinator's settings."""
        return self.coordinator.settings

    def snapshot(self, now: float | None = None) -> MasterSnapshot:
        """The coordinator's :class:`~horde.master.snapshot.MasterSnapshot` (at ``now``)."""
        return self.coordinator.snapshot(self.clock() if now is None else now)

    def run_snapshot(self, now: float | None = None) -> RunSnapshot:
        """The coordinator's :class:`~horde.master.snapshot.RunSnapshot` (at ``now``)."""
        return self.coordinator.run_snapshot(self.clock() if now is None else now)

    def pause(self) -> None:
        """Let a receive loop handle its next batch before going on (long work calls this).

        ``gevent.sleep(0)`` alone does not do it: a receive loop waiting out
        :data:`RECEIVE_PAUSE` is not ready, so the next slice of a long job would run
        first, and heartbeats would queue behind slice after slice. The receive loop is
        woken, so a pause costs one batch rather than a receive pause. With nothing
        queued to receive (or before :meth:`start`) it only yields; it waits at most
        :data:`PAUSE_MAX`.
        """
        if self._running and any(t.pending() for t in self.transports):
            turn = self._turn
            self._nudge.set()
            turn.wait(timeout=PAUSE_MAX)
        else:  # nothing waits to be received: just let the ready greenlets run
            gevent.sleep(0)

    def held(self) -> int:
        """How many received frames wait, held, to be handled together."""
        return sum(len(batch) for batch in self._held.values())

    def pacer(self) -> Pacer:
        """A :class:`Pacer` for one long job, pausing with :meth:`pause`."""
        batched = self._scheduling.batch  # frames arrive fast
        return Pacer(self.pause, SLICE_SECONDS_BATCHED if batched else SLICE_SECONDS)

    def stop(self) -> None:
        """Stop the loops and close the socket."""
        self._running = False
        gevent.killall(self._greenlets, timeout=2)
        for transport in self.transports:
            transport.close()

    def _receive_loop(self, transport: RouterTransport) -> None:
        try:
            self._receive(transport)
        finally:  # stopped: this loop's frames no longer arrive fast
            self._scheduling.update(transport, fast=False)

    def _receive(self, transport: RouterTransport) -> None:
        gauge = ArrivalGauge()
        held = self._held[transport] = HeldBatch()
        while self._running:
            deadline = held.deadline(RECEIVE_PAUSE)
            timeout = None if deadline is None else deadline - time.monotonic()
            try:
                batch = transport.recv_many(YIELD_EVERY, timeout)
            except TransportError as exc:
                if not self._running:
                    return
                log.error("receive failed", error=str(exc))
                gevent.sleep(0.1)
                continue
            gauge.add(len(batch), time.monotonic())
            if len(batch) < YIELD_EVERY:
                self._behind_since = None
            elif self._behind_since is None:
                self._behind_since = self.clock()
            fast = gauge.busy(HOLD_RATE_MAX)
            self._scheduling.update(transport, fast=fast)
            busy = not held and fast
            paused = self._nudge.is_set()  # a long job waits for this round
            if busy:
                self.handle_batch(batch, transport)
            else:
                self._hold(batch, held, transport, paused=paused, whole=fast)
            turn, self._turn = self._turn, gevent.event.Event()
            turn.set()
            # A flood of frames must not starve HTTP and the timer: always yield.
            if len(batch) >= YIELD_EVERY or (paused and not busy):
                gevent.sleep(0)
            elif busy:  # wait so that the next look finds a batch
                self._nudge.wait(timeout=RECEIVE_PAUSE)
                self._nudge.clear()

    def _hold(
        self,
        batch: list[list[bytes]],
        held: HeldBatch,
        transport: RouterTransport,
        *,
        paused: bool,
        whole: bool,
    ) -> None:
        """Answer the heartbeats that may go ahead; handle a piece of the held frames once due.

        One piece a round: heartbeats that arrive meanwhile wait for one stats report at
        most, not for the whole batch. A round that a :meth:`pause` waits for (``paused``)
        only answers heartbeats: the long job goes on sooner, and the held frames wait
        for the next round. A full batch, or any once frames arrive fast (``whole``), is
        handled whole, so a flood cannot grow it.
        """
        self._nudge.clear()
        ahead = held.add(batch, time.monotonic())
        if ahead:
            self.handle_batch(ahead, transport)
        full = len(held) >= YIELD_EVERY
        if (full or not paused) and held.due(time.monotonic(), RECEIVE_PAUSE, YIELD_EVERY):
            self.handle_batch(held.take_all() if full or whole else held.take(), transport)

    def handle_batch(self, batch: list[list[bytes]], transport: RouterTransport) -> None:
        """Decode received messages and hand them to the coordinator, in order.

        Decoding them together lets the deltas among them be validated in one go.
        """
        now = self.clock()
        coordinator = self.coordinator
        senders: list[str] = []
        payloads: list[bytes] = []
        for frames in batch:
            if len(frames) != 2:
                coordinator.count_malformed("?", "frames", f"{len(frames)} frames", now)
                continue
            try:
                senders.append(frames[0].decode())
            except UnicodeDecodeError:
                coordinator.count_malformed(repr(frames[0][:40]), "identity", "not UTF-8", now)
                continue
            payloads.append(frames[1])
        decoded = decode_upstream_many(payloads, max_size=coordinator.settings.max_frame)
        for worker_id, message in zip(senders, decoded, strict=True):
            if isinstance(message, ProtocolError):
                coordinator.count_malformed(worker_id, message.reason, str(message), now)
                continue
            self._routes[worker_id] = transport
            try:
                coordinator.handle(worker_id, message, now)
            except Exception:  # a handler bug must not end the receive loop
                coordinator.counters.count("handler_error")
                log.exception("message handler failed", worker=worker_id, type=message.type)
        if coordinator.state.value in ("stopping", "spawning"):
            self._wake.set()

    def _timer_loop(self) -> None:
        while self._running:
            self.turned = time.monotonic()
            coordinator = self.coordinator
            now = self.clock()
            try:
                behind = self._behind_since
                if behind is None or now - behind > SWEEP_DEFER_MAX:
                    coordinator.sweep(now)
                    self.pause()  # the sweep and the tick each take a while at scale
                    now = self.clock()
                wait = coordinator.tick(now)
                self._prune_routes()
            except Exception:
                log.exception("timer step failed")
                wait = coordinator.settings.sweep_interval
            self._wake.wait(timeout=max(0.0, wait))
            self._wake.clear()

    def _prune_routes(self) -> None:
        """Forget routes and key bindings of identities the registry does not know
        (strangers, forgotten workers)."""
        registry = self.coordinator.registry
        if len(self._routes) > len(registry):
            self._routes = {i: t for i, t in self._routes.items() if i in registry}
        for transport in self.transports:
            if transport.gate is not None and len(transport.gate) > len(registry):
                transport.gate.prune(registry, time.monotonic())
