"""The master's coordinated-omission corrected series: merged latencies from intended starts.

Responsibility: :class:`CorrectedStats` merges the ``corrected`` items of workers' horde
deltas (see ``horde.protocol.corrected``) per (method, name) and into a total, and answers
the figures the outputs show beside the raw ones: count, average, min, max and
nearest-rank percentiles from the merged µs histogram. Merging adds counts, so it is exact
and order-independent. Distinct names are capped as in :class:`MergedStats`: beyond
``max_names`` they merge into the :data:`OVERFLOW_NAME` entry of their method. Pure: no
clock, no I/O.

Only pacing users (``constant_pacing``, ``constant_throughput``) of horde workers feed it;
an empty :class:`CorrectedStats` means there is nothing to show.

Imports: the standard library and :mod:`horde.protocol` only.
"""

from __future__ import annotations

from collections.abc import Iterable

from horde.protocol.corrected import CorrectedDelta
from horde.protocol.counters import DEFAULT_MAX_NAMES, OVERFLOW_NAME
from horde.protocol.histogram import Histogram

__all__ = ["CorrectedEntry", "CorrectedStats"]


class CorrectedEntry:
    """Merged corrected latencies of one (method, name), or of the ``Aggregated`` total."""

    __slots__ = ("count", "hist", "max_us", "method", "min_us", "name", "total_us")

    def __init__(self, method: str, name: str) -> None:
        """Create an empty entry."""
        self.method = method
        self.name = name
        self.count = 0
        self.total_us = 0
        self.min_us: int | None = None
        self.max_us = 0
        self.hist = Histogram()

    def __repr__(self) -> str:
        """Return a short representation."""
        return f"CorrectedEntry({self.method!r}, {self.name!r}, count={self.count})"

    def add(self, item: CorrectedDelta) -> None:
        """Merge one validated item."""
        self.count += item.requests
        self.total_us += item.total_us
        if self.min_us is None or item.min_us < self.min_us:
            self.min_us = item.min_us
        self.max_us = max(self.max_us, item.max_us)
        self.hist.merge_pairs(item.buckets)

    @property
    def avg_ms(self) -> float:
        """Mean corrected time in ms (0 when empty)."""
        return self.total_us / 1000.0 / self.count if self.count else 0.0

    @property
    def min_ms(self) -> float | None:
        """Smallest corrected time in ms (None when empty)."""
        return None if self.min_us is None else self.min_us / 1000.0

    @property
    def max_ms(self) -> float:
        """Largest corrected time in ms (0 when empty)."""
        return self.max_us / 1000.0

    def percentiles_ms(self, ps: Iterable[float]) -> list[float]:
        """Nearest-rank percentiles in ms, within [min, max]; 0 when empty."""
        values = self.hist.percentiles(ps, min_us=self.min_us, max_us=self.max_us)
        return [us / 1000.0 for us in values]


class CorrectedStats:
    """All merged corrected latencies of the current stats epoch."""

    def __init__(self, *, max_names: int = DEFAULT_MAX_NAMES) -> None:
        """Create empty stats keeping at most ``max_names`` distinct entries."""
        self.max_names = max_names
        self._entries: dict[tuple[str, str], CorrectedEntry] = {}
        self._total = CorrectedEntry("", "Aggregated")

    def __bool__(self) -> bool:
        """True once anything was merged."""
        return self._total.count > 0

    def _entry(self, method: str, name: str) -> CorrectedEntry:
        key = (method, name)
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= self.max_names:
                key = (method, OVERFLOW_NAME)
                entry = self._entries.get(key)
                if entry is not None:
                    return entry
            entry = self._entries[key] = CorrectedEntry(*key)
        return entry

    def merge(self, items: Iterable[CorrectedDelta]) -> int:
        """Merge validated items into their entries and the total; return how many."""
        merged = 0
        total = self._total
        for item in items:
            self._entry(item.method, item.name).add(item)
            total.add(item)
            merged += 1
        return merged

    def reset(self) -> None:
        """Drop every figure (a new run or a stats reset); the names go too."""
        self._entries = {}
        self._total = CorrectedEntry("", "Aggregated")

    def entries(self) -> list[CorrectedEntry]:
        """The entries sorted as the raw stats are: by (name, method)."""
        return [self._entries[k] for k in sorted(self._entries, key=lambda k: (k[1], k[0]))]

    def get(self, method: str, name: str) -> CorrectedEntry | None:
        """The entry of (method, name), if it has one."""
        return self._entries.get((method, name))

    @property
    def total(self) -> CorrectedEntry:
        """The ``Aggregated`` corrected entry."""
        return self._total
