"""The worker states both sides name: the one list of them, shared by worker and master.

Responsibility: :class:`WorkerState`, the states a worker reports in its heartbeat and the
master keeps in its registry and documents in its OpenAPI description. The values are
Locust's strings, so they travel on the wire unchanged (a ``StrEnum`` member packs as its
string).

Imports: the standard library only.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["WorkerState"]


class WorkerState(StrEnum):
    """A worker's state; the values are Locust's strings.

    A worker reports ``ready``, ``spawning``, ``running`` and ``stopping``; the master adds
    ``missing`` (silent too long) and Locust's ``stopped``. Locust workers also report
    ``"cleanup"`` (stopping their users); it parses as :attr:`STOPPING`, so
    ``WorkerState("cleanup") is WorkerState.STOPPING``.
    """

    READY = "ready"
    SPAWNING = "spawning"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    MISSING = "missing"

    @classmethod
    def _missing_(cls, value: object) -> WorkerState | None:
        if value == "cleanup":
            return cls.STOPPING
        return None
