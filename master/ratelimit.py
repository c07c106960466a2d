"""Rate limiting for repetitive log lines (malformed frames, unknown workers).

:class:`LogThrottle` decides, from ``now``, whether a line under a key may be written,
and how many were suppressed since the last one. Pure: the caller passes the clock.

Imports: the standard library only.
"""

from __future__ import annotations


class LogThrottle:
    """Allows one line per ``key`` every ``interval`` seconds and counts the rest."""

    def __init__(self, interval: float = 5.0, max_keys: int = 1024) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def allow(self, key: str, now: float) -> int | None:
        """Return the number suppressed since the last allowed line, or ``None`` to stay quiet."""
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        if last is None and len(self._last) >= self.max_keys:
            self._last.clear()
            self._suppressed.clear()
        self._last[key] = now
        return self._suppressed.pop(key, 0)
