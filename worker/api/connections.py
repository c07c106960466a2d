"""The keep-alive connections HTTP sessions send on, pooled per destination.

:class:`ConnectionPool` keeps the idle connections of each destination (a hashable key: scheme,
host, port and TLS trust); a request takes one, or opens a new one when none is idle, and
gives it back when its response is read. With ``concurrency`` set, at most that many
connections per destination are in use at once and a further request waits until one comes
back (as the pool under Locust's ``FastHttpUser`` does); without it, each concurrent request
gets a connection of its own. A user has a pool of its own unless its class shares one
(``FastHttpUser.client_pool``).

Imports: the standard library, gevent and ``horde.worker.api.http11``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from gevent.lock import BoundedSemaphore

from horde.worker.api.http11 import Connection

__all__ = ["ConnectionPool"]


class ConnectionPool:
    """Idle keep-alive connections per destination, at most ``concurrency`` in use per
    destination (None: no limit). Creating it opens nothing."""

    def __init__(self, concurrency: int | None = None) -> None:
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency!r}")
        self.concurrency = concurrency
        self._idle: dict[Hashable, list[Connection]] = {}
        self._gates: dict[Hashable, BoundedSemaphore] = {}

    def acquire(
        self, key: Hashable, open_connection: Callable[..., Connection], *args: Any
    ) -> Connection:
        """An idle connection to ``key``, else a new one from ``open_connection(*args)``;
        waits while ``concurrency`` connections to ``key`` are in use."""
        gate = None
        if self.concurrency is not None:
            gate = self._gates.get(key)
            if gate is None:
                gate = self._gates[key] = BoundedSemaphore(self.concurrency)
            gate.acquire()
        idle = self._idle.get(key)
        if idle:
            return idle.pop()
        if idle is None:
            self._idle[key] = []
        try:
            return open_connection(*args)
        except BaseException:
            if gate is not None:
                gate.release()
            raise

    def release(self, key: Hashable, connection: Connection) -> None:
        """Give back a connection taken with :meth:`acquire` (open or closed)."""
        self._idle[key].append(connection)
        if self.concurrency is not None:
            self._gates[key].release()

    def in_use(self, key: Hashable) -> int:
        """How many connections to ``key`` are taken now (counted only with a limit)."""
        gate = self._gates.get(key)
        return 0 if gate is None or self.concurrency is None else self.concurrency - gate.counter

    def close(self) -> None:
        """Close every idle connection (one in use closes itself if its request is killed)."""
        for idle in self._idle.values():
            for connection in idle:
                connection.close()

    def __len__(self) -> int:
        """The number of destinations this pool has talked to."""
        return len(self._idle)
