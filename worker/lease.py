"""The worker's lease: how long it may keep users running without hearing from its master.

Responsibility: a horde master's ``ack`` grants a lease length (``Ack.lease``, seconds). The
worker numbers its heartbeats (``beat`` 1, 2, 3 ...) and records when it sent each; a master
heartbeat that echoes beat ``k`` proves the master heard the worker at or after the send time
of ``k``, and the master will not declare the worker missing (and give its users to others)
before ``heartbeat_liveness x heartbeat_interval`` after that, which is at least the lease.
So the deadline becomes ``max(deadline, sent(k) + lease)``, all on the worker's own
monotonic clock, and users may run only before the deadline: no user ever runs twice.

Without a grant (a Locust master: no lease in its ack) there is no lease at all and nothing
ever expires: a partitioned worker under a Locust master runs its users on until it quits.

Pure: the caller passes ``now`` (its ``time.monotonic()``); nothing here reads a clock. The
link thread calls :meth:`Lease.grant`, :meth:`Lease.sent` and :meth:`Lease.answered`; the
gevent side only reads (:meth:`Lease.holds`, :meth:`Lease.expired`): each write is a single
attribute store, which is thread-safe enough for a deadline.

Imports: the standard library only.
"""

from __future__ import annotations

__all__ = ["KEEP_BEATS", "Lease"]

KEEP_BEATS = 64
"""Send times kept for unanswered beats (older ones are forgotten; their echoes renew nothing)."""


class Lease:
    """The lease a master grants, renewed by its answers to numbered heartbeats."""

    def __init__(self, keep: int = KEEP_BEATS) -> None:
        """Create a lease that is not in force (no grant yet); no clock, no I/O."""
        self.seconds: float | None = None
        """The lease length the master granted; None: the master grants none (Locust)."""
        self.deadline: float | None = None
        """Monotonic time until which users may run; None: no answer renewed it yet."""
        self._keep = keep
        self._sent: dict[int, float] = {}

    def grant(self, seconds: float | None) -> None:
        """Take the lease length from a master's ``ack`` (None: this master grants none).

        A grant keeps the deadline earned so far (an echo is proof whoever answers it), but
        a master without leases drops it: nothing expires under a Locust master.
        """
        self.seconds = seconds
        if seconds is None:
            self.deadline = None

    def sent(self, beat: int, now: float) -> None:
        """Record that heartbeat ``beat`` left at ``now`` (bounded: the last ``keep`` beats)."""
        sent = self._sent
        sent[beat] = now
        while len(sent) > self._keep:
            del sent[next(iter(sent))]

    def answered(self, beat: int) -> bool:
        """Renew from a master heartbeat echoing ``beat``; return True if the deadline moved.

        Unknown beats (never sent, or forgotten) and answers without a grant renew nothing.
        Earlier beats are forgotten too: their answers could only give an earlier deadline.
        """
        seconds = self.seconds
        at = self._sent.get(beat)
        if seconds is None or at is None:
            return False
        for old in [b for b in self._sent if b <= beat]:
            del self._sent[old]
        deadline = at + seconds
        if self.deadline is not None and deadline <= self.deadline:
            return False
        self.deadline = deadline
        return True

    @property
    def in_force(self) -> bool:
        """True when the master grants leases (a horde master that sent ``lease``)."""
        return self.seconds is not None

    def holds(self, now: float) -> bool:
        """True when users may run at ``now``: no lease in force, or one that has not run out."""
        if self.seconds is None:
            return True
        deadline = self.deadline
        return deadline is not None and now < deadline

    def expired(self, now: float) -> bool:
        """True when leases are in force and none covers ``now`` (the opposite of holds)."""
        return not self.holds(now)

    @property
    def unanswered(self) -> int:
        """Beats sent whose answer has not come (bounded by ``keep``)."""
        return len(self._sent)
