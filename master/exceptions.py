"""Exceptions workers reported from their users' tasks, grouped as Locust groups them.

Grouped by (message, traceback): a count and the set of workers that raised it. Bounded:
past ``max_distinct`` groups, new kinds are counted in ``dropped`` instead of stored.

Imports: the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_MAX_DISTINCT = 500


@dataclass(slots=True)
class GroupedException:
    """One kind of exception: how often, and on which workers."""

    msg: str
    traceback: str
    count: int = 0
    nodes: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, object]:
        """Locust's ``/exceptions`` row."""
        return {
            "count": self.count,
            "msg": self.msg,
            "traceback": self.traceback,
            "nodes": ", ".join(sorted(self.nodes)),
        }


class ExceptionBook:
    """The exceptions of the current stats epoch."""

    def __init__(self, max_distinct: int = DEFAULT_MAX_DISTINCT) -> None:
        self.max_distinct = max_distinct
        self.dropped = 0
        self._groups: dict[tuple[str, str], GroupedException] = {}

    def record(self, msg: str, traceback: str, node: str) -> None:
        """Count one exception raised on ``node``."""
        key = (msg, traceback)
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= self.max_distinct:
                self.dropped += 1
                return
            group = self._groups[key] = GroupedException(msg, traceback)
        group.count += 1
        group.nodes.add(node)

    def groups(self) -> list[GroupedException]:
        """Every group, most frequent first."""
        return sorted(self._groups.values(), key=lambda g: (-g.count, g.msg))

    def clear(self) -> None:
        """Forget everything (a new run or stats epoch)."""
        self._groups.clear()
        self.dropped = 0
