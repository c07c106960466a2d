"""The running figures of one stats entry, shared by the worker's recorder and the master.

:class:`EntryCounters` holds what both sides accumulate for a (method, name): counts,
response-time sum, min and max in microseconds, content length, the log-linear histogram
and per-second request and failure counts. The worker's entry adds its interned id; the
master's adds its rate window. Both sides cap the number of distinct entries
(:data:`DEFAULT_MAX_NAMES`); beyond it requests go to the :data:`OVERFLOW_NAME` entry of
their method. Slotted: these objects sit on the hottest paths.

Imports: the standard library and horde.protocol.
"""

from __future__ import annotations

from horde.protocol.histogram import Histogram

__all__ = ["DEFAULT_MAX_NAMES", "OVERFLOW_NAME", "EntryCounters"]

DEFAULT_MAX_NAMES = 10_000
"""How many distinct (method, name) entries a worker or master keeps by default.

Enough for any sane naming (Locust users group URLs with ``name=``); a script that names
each request by its full URL would otherwise grow the stats without bound.
"""

OVERFLOW_NAME = "(other names)"
"""The entry name that collects requests whose (method, name) came after the cap."""


class EntryCounters:
    """Mutable figures for one (method, name); :meth:`clear` zeroes them."""

    __slots__ = (
        "fail_per_sec",
        "hist",
        "max_rt_us",
        "method",
        "min_rt_us",
        "name",
        "num_failures",
        "num_none_requests",
        "num_requests",
        "req_per_sec",
        "total_content_length",
        "total_rt_us",
    )

    def __init__(self, method: str, name: str) -> None:
        """Create empty counters for ``method`` and ``name``."""
        self.method = method
        self.name = name
        self.clear()

    def clear(self) -> None:
        """Zero every figure (the key stays)."""
        self.num_requests = 0
        self.num_none_requests = 0
        self.num_failures = 0
        self.total_rt_us = 0
        self.min_rt_us: int | None = None
        self.max_rt_us = 0
        self.total_content_length: float = 0
        self.hist = Histogram()
        self.req_per_sec: dict[int, int] = {}
        self.fail_per_sec: dict[int, int] = {}

    def add(self, other: EntryCounters) -> None:
        """Add ``other``'s figures to these (an aggregate of several entries)."""
        self.num_requests += other.num_requests
        self.num_none_requests += other.num_none_requests
        self.num_failures += other.num_failures
        self.total_rt_us += other.total_rt_us
        if other.min_rt_us is not None:
            low = self.min_rt_us
            self.min_rt_us = other.min_rt_us if low is None else min(low, other.min_rt_us)
        self.max_rt_us = max(self.max_rt_us, other.max_rt_us)
        self.total_content_length += other.total_content_length
        self.hist.merge(other.hist)
        for mine, theirs in (
            (self.req_per_sec, other.req_per_sec),
            (self.fail_per_sec, other.fail_per_sec),
        ):
            for sec, n in theirs.items():
                mine[sec] = mine.get(sec, 0) + n
