"""The master's event counters: rejected frames by reason, failed sends, strangers.

Responsibility: one named count per kind of event the master noticed. Components and
loops call :meth:`Counters.count`; readers see a copy in the coordinator's snapshot
(``/metrics`` lists them). A read-only mapping, so tests and readers can look a key up.

Imports: the standard library only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping


class Counters(Mapping[str, int]):
    """Counts by key; only :meth:`count` adds to them."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def count(self, key: str) -> None:
        """Add one to ``key``."""
        self._counts[key] = self._counts.get(key, 0) + 1

    def copy(self) -> dict[str, int]:
        """The counts now, as a new dict."""
        return dict(self._counts)

    def __getitem__(self, key: str) -> int:
        return self._counts[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._counts)

    def __len__(self) -> int:
        return len(self._counts)
