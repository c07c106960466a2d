"""Process-wide settings for a master that serves thousands of workers from one core.

Two things that are cheap at ten workers cost a master with thousands its latency goals:

- **Preemption by libzmq's I/O thread.** Under Linux's default policy each reply the
  master queues wakes that thread, which then preempts the master's own thread on the
  same core: 7,000 preemptions a second at 5,000 workers. Under ``SCHED_BATCH`` neither
  thread preempts the other on wake-up; the I/O thread runs when the master's thread
  waits or its time slice ends, and sends many replies per wake-up. Priorities and CPU
  shares do not change, and no privilege is needed. That trade pays only while frames
  arrive fast: slower, a message waits in the kernel for the rest of the master's time
  slice before the I/O thread reads it (at 1,000 workers heartbeat replies took 4.5 to
  5.7 ms at p99 under ``SCHED_BATCH``, 2.2 ms without). So the receive loops switch the
  policy (:class:`Scheduling`) with the arrival rate that also decides whether they
  batch (:data:`~horde.master.arrivals.HOLD_RATE_MAX`); under the default policy the I/O
  threads ask for a short time slice (:data:`IO_SLICE_NS`), so they preempt at once.
- **Full garbage collections.** With the default thresholds the cyclic collector walked
  every worker's records every few seconds, 30 to 60 ms each time at 5,000 workers,
  during which no heartbeat is answered. Freezing what start-up allocated (modules, the
  user script) and collecting the young generation less often cut them to one or two a
  minute. Reference counting still frees everything that is not in a cycle at once.

:func:`tune_process` tunes the collector; :class:`Scheduling` sets the policy of every
thread of the process, libzmq's I/O thread included, when it changes. Processes the master
starts (``horde run``'s local workers) get the normal policy (:func:`children_scheduled`).

Imports: the standard library.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import struct
import sys
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, suppress

__all__ = [
    "GC_THRESHOLDS",
    "Scheduling",
    "batch_scheduling",
    "children_scheduled",
    "request_slice",
    "tune_process",
]

GC_THRESHOLDS = (10_000, 50, 50)
"""Collector thresholds (young, middle, old); Python's defaults are (700, 10, 10)."""
IO_SLICE_NS = 100_000
"""The time slice libzmq's I/O threads ask for while frames arrive slowly. Under Linux's
EEVDF scheduler (6.6+) a thread with a short slice gets an early deadline, so a message
that wakes it is read at once rather than after the rest of the master thread's slice:
heartbeat replies at 1,000 workers, p99 2.4 ms, from 2.8 to 3.5."""
IO_THREAD_PREFIX = "ZMQbg/IO"
"""How libzmq names its I/O threads."""
_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274}
"""``sched_setattr``'s system call number by machine."""


def _set_policy(name: str, tid: int = 0) -> bool:
    """Put thread ``tid`` (0: this one) under the policy ``os.<name>``; return whether it
    was set (never on systems without it)."""
    setter = getattr(os, "sched_setscheduler", None)
    policy = getattr(os, name, None)
    if setter is None or policy is None:
        return False
    try:
        setter(tid, policy, os.sched_param(0))
    except OSError:  # a thread that just ended, or a policy that needs a privilege
        return False
    return True


def _threads(prefix: str = "") -> list[int]:
    """The ids of this process's threads whose name starts with ``prefix``."""
    found = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return [] if prefix else [0]
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/comm") as fh:
                name = fh.read()
        except OSError:  # a thread that just ended
            continue
        if name.startswith(prefix):
            found.append(int(task))
    return found


def request_slice(tid: int, slice_ns: int) -> bool:
    """Put thread ``tid`` (0: this one) under ``SCHED_OTHER`` asking for a time slice of
    ``slice_ns`` (``sched_setattr(2)``; Linux 6.12+ honours it, older kernels ignore it).

    Returns whether the call succeeded (never where the call does not exist).
    """
    number = _SCHED_SETATTR.get(platform.machine())
    if number is None or not sys.platform.startswith("linux"):
        return False
    # struct sched_attr, first version: size, policy, flags, nice, priority, runtime, ...
    attr = struct.pack("IIQiIQQQ", 48, 0, 0, 0, 0, slice_ns, 0, 0)
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.syscall(number, tid, ctypes.create_string_buffer(attr), 0)) == 0


def batch_scheduling(on: bool = True) -> bool:
    """Put every thread of this process under ``SCHED_BATCH`` (``on``) or back under the
    default policy, libzmq's I/O threads then with a short time slice
    (:data:`IO_SLICE_NS`); threads started later inherit the policy of the thread
    starting them.

    Returns whether the policy was set on any thread.
    """
    name = "SCHED_BATCH" if on else "SCHED_OTHER"
    done = [_set_policy(name, tid) for tid in _threads()]  # every thread: no short cut
    if not on:
        for tid in _threads(IO_THREAD_PREFIX):
            request_slice(tid, IO_SLICE_NS)
    return any(done)


class Scheduling:
    """Batch scheduling while any receive loop has frames arriving fast; none otherwise.

    Each loop states whether its frames arrive fast (:meth:`update`); the policy changes
    only when the answer for the process changes, so the system calls are rare.
    """

    def __init__(self, apply: Callable[[bool], object] = batch_scheduling) -> None:
        self._apply = apply
        self._fast: set[Hashable] = set()
        self.batch = False
        """Whether the threads run under ``SCHED_BATCH`` now."""

    def start(self) -> None:
        """Set the policy for the present answer (call once the sockets exist)."""
        self._apply(self.batch)

    def update(self, loop: Hashable, *, fast: bool) -> None:
        """Record whether ``loop``'s frames arrive fast; set the policy if that changes it."""
        if fast:
            self._fast.add(loop)
        else:
            self._fast.discard(loop)
        batch = bool(self._fast)
        if batch != self.batch:
            self.batch = batch
            self._apply(batch)


@contextmanager
def children_scheduled(name: str = "SCHED_OTHER") -> Iterator[None]:
    """Processes started inside this block run under the policy ``os.<name>`` (Linux's
    normal ``SCHED_OTHER`` by default), not under this thread's.

    A child inherits the policy of the thread that starts it, and ``horde run``'s local
    workers must not inherit the master's ``SCHED_BATCH``: a batch-scheduled thread that
    wakes does not preempt, so a worker's link thread, woken when the GIL is dropped for
    an instant, always finds it taken again while users spin (see
    ``horde.worker.handoff``). The thread's own policy comes back afterwards.
    """
    getter = getattr(os, "sched_getscheduler", None)
    before = getter(0) if getter is not None else None
    changed = _set_policy(name) and before != getattr(os, name)
    try:
        yield
    finally:
        if changed and before is not None:
            with suppress(OSError):  # a policy that needs a privilege: keep the new one
                os.sched_setscheduler(0, before, os.sched_param(0))


def tune_process() -> None:
    """A collector that leaves start-up objects alone (scheduling: :class:`Scheduling`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
