"""Worker churn leaves nothing behind: 1,000 simulated workers come and go on real sockets.

The master runs in this process (its loops on a real ROUTER on loopback, its clock a
virtual one the test moves); the workers are real ZeroMQ DEALER sockets speaking the
horde protocol. They register, get their users, report stats and logs; then half of them
leave, 250 by quitting and 250 by going silent until the master forgets them. A walk over
everything reachable from the master's objects must then find every staying worker's id
and no departed worker's.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterator

import gevent
import zmq.green as zmq

from horde.master.config import MasterSettings
from horde.master.coordinator import Coordinator
from horde.master.dispatch import UserClassSpec
from horde.master.loops import MasterLoops
from horde.master.swarm import SwarmRequest
from horde.master.transport import RouterTransport
from horde.protocol import messages as m
from horde.protocol.codec import decode_downstream, encode
from horde.worker.stats import RequestRecorder

WORKERS = 1_000
STAYERS = 500
"""Workers that stay. As many stay as leave, so a structure pruned only once it holds
twice as many entries as there are workers (the loops' routes once were) is caught."""
ID_PATTERN = re.compile(r"churn-w\d{4}")
TEST_SECONDS = 180.0


def worker_id(i: int) -> str:
    """The id (ZeroMQ identity) of simulated worker ``i``."""
    return f"churn-w{i:04d}"


def reachable_ids(root: object) -> dict[str, set[str]]:
    """Every worker id found in a string or bytes reachable from ``root``, with where.

    The walk follows the attributes of horde's own objects (``__dict__`` and slots) and
    the items of dicts (keys and values), lists, tuples, sets, deques and object arrays;
    it stops at other libraries' objects (sockets, greenlets, functions). Each id found
    maps to the paths it was seen at, e.g. ``.coordinator.worker_logs[key]``.
    """
    found: dict[str, set[str]] = {}
    seen: set[int] = set()
    stack: list[tuple[object, str]] = [(root, "")]
    while stack:
        obj, path = stack.pop()
        if isinstance(obj, bytes | bytearray | memoryview):
            obj = bytes(obj).decode("latin-1")
        if isinstance(obj, str):  # a leaf, looked at wherever it is shared
            for worker in ID_PATTERN.findall(obj):
                found.setdefault(worker, set()).add(path)
            continue
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            stack.extend((key, f"{path}[key]") for key in obj)
            stack.extend((value, f"{path}[]") for value in obj.values())
        elif isinstance(obj, list | tuple | set | frozenset | deque):
            stack.extend((item, f"{path}[]") for item in obj)
        elif type(obj).__name__ == "ndarray":
            if str(getattr(obj, "dtype", "")) == "object":
                stack.extend((item, f"{path}[]") for item in obj.ravel().tolist())  # type: ignore[attr-defined]
        elif type(obj).__module__.startswith("horde."):
            stack.extend((value, f"{path}.{name}") for name, value in _attributes(obj))
    return found


def _attributes(obj: object) -> Iterator[tuple[str, object]]:
    """``obj``'s instance attributes (name, value), from ``__dict__`` and every ``__slots__``."""
    yield from getattr(obj, "__dict__", {}).items()
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if hasattr(obj, name) and name not in ("__dict__", "__weakref__"):
                yield name, getattr(obj, name)


def settled(root: object, stayers: list[str], timeout: float = 10.0) -> dict[str, set[str]]:
    """:func:`reachable_ids` once only ``stayers`` are found, or as it is after ``timeout``.

    The timer loop drops a forgotten worker's route on its next pass, so the walk may
    need a moment to come clean.
    """
    deadline = time.monotonic() + timeout
    while True:
        found = reachable_ids(root)
        if set(found) <= set(stayers) or time.monotonic() > deadline:
            return found
        gevent.sleep(0.02)


def wait_until(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Let the master's greenlets run until ``condition()`` holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        gevent.sleep(0.01)


class Fleet:
    """The simulated workers: one DEALER each, on a context of their own."""

    def __init__(self, port: int, count: int) -> None:
        self.context = zmq.Context()
        self.context.set(zmq.MAX_SOCKETS, count + 64)
        self.sockets: dict[str, zmq.Socket] = {}
        for i in range(count):
            sock = self.context.socket(zmq.DEALER)
            sock.setsockopt(zmq.IDENTITY, worker_id(i).encode())
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(f"tcp://127.0.0.1:{port}")
            self.sockets[worker_id(i)] = sock

    def send(self, worker: str, message: m.Message) -> None:
        """Send ``message`` from ``worker``."""
        self.sockets[worker].send(encode(message))

    def expect(self, worker: str, kind: type[m.Message], beat: int | None = None) -> m.Message:
        """Read ``worker``'s inbox up to the next message of ``kind`` (and ``beat``)."""
        with gevent.Timeout(30):
            while True:
                message = decode_downstream(self.sockets[worker].recv())
                if isinstance(message, kind) and (
                    beat is None or getattr(message, "beat", None) == beat
                ):
                    return message

    def heartbeat(self, workers: list[str], beat: int) -> None:
        """Each of ``workers`` heartbeats and reads the master's answer to that beat."""
        for worker in workers:
            self.send(worker, m.WorkerHeartbeat(worker, "running", 1.0, 1 << 20, beat=beat))
        for worker in workers:
            self.expect(worker, m.MasterHeartbeat, beat)

    def close(self) -> None:
        """Close every socket and the context."""
        for sock in self.sockets.values():
            sock.close()
        self.context.term()


class VirtualClock:
    """The master's clock: it moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _delta(worker: str, run_id: str, epoch: int) -> m.HordeStats:
    recorder = RequestRecorder()
    recorder.record("GET", "/churn", 2.5, 100, None, 1.0)
    recorder.record("GET", "/churn", 3.5, 100, "ConnectionError('refused')", 1.0)
    delta = recorder.take_horde_delta(
        run_id=run_id, epoch=epoch, seq=1, now=1.0, user_classes_count={"A": 1}, user_count=1
    )
    return m.HordeStats(worker, delta)


def test_departed_workers_leave_no_trace_in_the_master() -> None:
    """Once 500 of 1,000 workers have quit or been forgotten, nothing keeps their ids."""
    clock = VirtualClock()
    settings = MasterSettings(sweep_interval=0.05, forget_missing_after=5.0)
    holder: list[MasterLoops] = []

    def send(worker: str, message: m.Message) -> None:
        holder[0].send(worker, message)

    coordinator = Coordinator(settings, [UserClassSpec("A", 1, 0)], send)
    loops = MasterLoops(
        coordinator,
        [RouterTransport("tcp://127.0.0.1:0", max_frame=settings.max_frame)],
        clock=clock,
    )
    holder.append(loops)
    loops.start()
    fleet = Fleet(loops.transport.port, WORKERS)
    everyone = list(fleet.sockets)
    stayers, quitters = everyone[:STAYERS], everyone[STAYERS::2]  # the rest vanish
    started = time.monotonic()
    try:
        with gevent.Timeout(TEST_SECONDS):
            for worker in everyone:
                fleet.send(worker, m.ClientReady(worker, m.HORDE_CLIENT_VERSION))
            for worker in everyone:
                fleet.expect(worker, m.Ack)
            loops.command(lambda c, now: c.start(SwarmRequest(WORKERS, float(WORKERS)), now))
            for worker in everyone:
                spawn = fleet.expect(worker, m.Spawn)
                assert isinstance(spawn, m.Spawn)
                fleet.send(worker, m.Logs(worker, (f"{worker} started", "a line")))
                fleet.send(worker, _delta(worker, spawn.run_id, spawn.epoch))
            for worker in everyone:
                fleet.expect(worker, m.HordeStatsAck)  # its logs came first, on the same socket
            clock.now = 2.0
            fleet.heartbeat(everyone, 2)
            before = reachable_ids(loops)
            assert set(before) == set(everyone)

            for worker in quitters:
                fleet.send(worker, m.WorkerQuit(worker))
            wait_until(lambda: len(coordinator.registry) == WORKERS - len(quitters), "the quits")
            for beat in range(3, 30):  # the vanished go missing, then are forgotten
                clock.now = float(beat)
                fleet.heartbeat(stayers, beat)
                loops.command(lambda c, now: c.sweep(now))
                if len(coordinator.registry) == STAYERS:
                    break
            assert len(coordinator.registry) == STAYERS, "the missing workers were not forgotten"
            after = settled(loops, stayers)
    finally:
        fleet.close()
        loops.stop()
    elapsed = time.monotonic() - started
    print(
        f"churn: {WORKERS} workers, {elapsed:.1f} s, ids before {len(before)}, after {len(after)}"
    )
    held = {path for worker, paths in after.items() if worker not in stayers for path in paths}
    assert set(after) == set(stayers), f"departed workers' ids are still held in {sorted(held)}"
