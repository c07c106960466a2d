"""The recent log lines each connected worker sent (``/logs``).

Responsibility: a bounded ring of lines per worker, dropped when the worker is forgotten,
so worker churn cannot grow the master.

Imports: the standard library only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from types import MappingProxyType

MAX_LOG_LINES = 500
"""Lines kept per worker (the oldest go first)."""


class WorkerLogs:
    """The last :data:`MAX_LOG_LINES` lines of each worker."""

    def __init__(self, max_lines: int = MAX_LOG_LINES) -> None:
        self.max_lines = max_lines
        self._lines: dict[str, deque[str]] = {}

    def add(self, worker_id: str, lines: Iterable[str]) -> None:
        """Keep ``lines`` as the newest of ``worker_id``'s."""
        ring = self._lines.get(worker_id)
        if ring is None:
            ring = self._lines[worker_id] = deque(maxlen=self.max_lines)
        ring.extend(lines)

    def forget(self, worker_id: str) -> None:
        """Drop everything ``worker_id`` sent."""
        self._lines.pop(worker_id, None)

    def snapshot(self) -> Mapping[str, tuple[str, ...]]:
        """Every worker's lines now, oldest first, as an immutable mapping."""
        return MappingProxyType({w: tuple(lines) for w, lines in self._lines.items()})
