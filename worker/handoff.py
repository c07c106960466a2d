"""Making way for the link thread: the gevent side hands it the GIL when it falls behind.

Responsibility: the worker's link thread (:mod:`horde.worker.transport`) needs the GIL for
every pass of its loop (a heartbeat, the master's answers, the lease). CPython's GIL does not
guarantee it a turn. A thread waiting for the GIL asks the holder to drop it only after a
whole switch interval (5 ms) without a switch, and every time the holder releases the GIL,
however briefly, the waiter's wait starts again. A busy gevent loop releases the GIL for a
few microseconds on every loop iteration (its poll), and gevent iterates at least every
switch interval while greenlets yield with ``gevent.sleep(0)`` (users without a wait time).
So the waiter wakes, finds the GIL taken again, waits anew and never asks: with users that
spin, the thread could go seconds without a pass and the lease ran out (issue 17). A thread
that cannot preempt when it wakes makes this certain: under ``SCHED_BATCH`` (which
``horde run``'s workers once inherited from the master) or on the spinning thread's core.

The cure is cooperative and cheap: the thread stamps :meth:`Handoff.passed` on every pass
(its poll wakes it at least every :data:`LINK_TICK`), and the gevent side's probe calls
:meth:`Handoff.make_way` every :data:`~horde.worker.config.LOOP_PROBE_INTERVAL`. When the
thread's last pass is older than :data:`LINK_LATE`, the gevent side blocks on a native lock,
without the GIL, until the thread has made a pass and released it (at most
:data:`HANDOFF_WAIT`). A loop that user code blocks needs no help: a blocking call
(``time.sleep`` unpatched, blocking I/O) releases the GIL, and a tight Python loop drops it
when the waiting thread asks, 5 ms after it began to wait, since nothing restarts that wait.
Only a single C call that holds the GIL for seconds keeps the thread out, and nothing
in the worker's process can help that.

Imports: the standard library and gevent's ``get_original`` (a lock that blocks the
native thread, not the greenlet).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from gevent.monkey import get_original

__all__ = ["HANDOFF_WAIT", "LINK_LATE", "LINK_TICK", "Handoff"]

LINK_TICK = 0.2
"""The longest the link thread waits in its poll: it makes a pass at least this often."""
LINK_LATE = 0.4
"""A thread whose last pass is older than this is kept from the GIL: make way for it."""
HANDOFF_WAIT = 0.25
"""The longest the gevent side waits, without the GIL, for the thread's pass."""

_allocate_lock: Callable[[], Any] = get_original("_thread", "allocate_lock")


class Handoff:
    """The link thread's last pass, and a lock the gevent side waits on for the next one.

    Every write is one attribute store: the two sides see an old or a new value.
    """

    def __init__(self, now: float | None = None) -> None:
        """A thread that made its last pass at ``now`` (monotonic; default: the present)."""
        self.last_pass = time.monotonic() if now is None else now
        """When the link thread last made a pass (monotonic seconds)."""
        self.handoffs = 0
        """How often the gevent side made way (a thread kept from the GIL)."""
        self._waiting: Any = None  # the held lock the gevent side waits on, if it waits

    def passed(self, now: float) -> None:
        """The thread's side: a pass is done at ``now``; let a waiting gevent side go on."""
        self.last_pass = now
        waiting = self._waiting
        if waiting is not None:
            self._waiting = None
            waiting.release()  # held until this release: only this side releases it

    def ended(self) -> None:
        """The thread's side: it has ended; nobody waits for its passes any more."""
        self.passed(math.inf)

    def late(self, now: float) -> bool:
        """True when the thread's last pass is older than :data:`LINK_LATE` at ``now``."""
        return now - self.last_pass > LINK_LATE

    def make_way(self, now: float, wait: float = HANDOFF_WAIT) -> bool:
        """The gevent side's: if the thread is late at ``now``, wait (GIL released, the whole
        process's loop blocked) until it made a pass or ``wait`` seconds went by.

        Returns True when it waited. Call it from one greenlet only.
        """
        if not self.late(now):
            return False
        lock = _allocate_lock()
        lock.acquire()
        self._waiting = lock
        lock.acquire(True, wait)  # blocks the native thread: the GIL goes to the link thread
        self._waiting = None
        self.handoffs += 1
        return True
