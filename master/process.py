"""Process-wide settings for a master that serves thousands of workers from one core.

Two things that are cheap at ten workers cost a master with thousands its latency goals:

- **Preemption by libzmq's I/O thread.** Under Linux's default policy each reply the
  master queues wakes that thread, which then preempts the master's own thread on the
  same core: 7,000 preemptions a second at 5,000 workers. Under ``SCHED_BATCH`` neither
  thread preempts the other on wake-up; the I/O thread runs when the master's thread
  waits or its time slice ends, and sends many replies per wake-up. Priorities and CPU
  shares do not change, and no privilege is needed.
- **Full garbage collections.** With the default thresholds the cyclic collector walked
  every worker's records every few seconds, 30 to 60 ms each time at 5,000 workers,
  during which no heartbeat is answered. Freezing what start-up allocated (modules, the
  user script) and collecting the young generation less often cut them to one or two a
  minute. Reference counting still frees everything that is not in a cycle at once.

:func:`tune_process` applies both; call it before the first ZeroMQ socket exists, so
libzmq's I/O thread inherits the policy. Processes the master starts (``horde run``'s local
workers) get the normal policy back (:func:`children_scheduled`).

Imports: the standard library.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress

__all__ = ["GC_THRESHOLDS", "batch_scheduling", "children_scheduled", "tune_process"]

GC_THRESHOLDS = (10_000, 50, 50)
"""Collector thresholds (young, middle, old); Python's defaults are (700, 10, 10)."""


def _set_policy(name: str) -> bool:
    """Put this thread under the policy ``os.<name>``; return whether it was set."""
    setter = getattr(os, "sched_setscheduler", None)
    policy = getattr(os, name, None)
    if setter is None or policy is None:
        return False
    try:
        setter(0, policy, os.sched_param(0))
    except OSError:
        return False
    return True


def batch_scheduling() -> bool:
    """Put this thread, and the threads it starts later, under ``SCHED_BATCH``.

    Returns whether the policy was set (never on systems without it).
    """
    return _set_policy("SCHED_BATCH")


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
    """Batch scheduling, and a collector that leaves start-up objects alone."""
    batch_scheduling()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
