"""One merged (method, name) entry of the master's stats, and one merged error.

Responsibility: :class:`MergedEntry` holds a (method, name)'s merged figures (or the
``Aggregated`` total's) and answers what the outputs show from them: ms figures,
percentiles, and rates as Locust computes them over the run's :class:`Span`.
:class:`ErrorRecord` is one merged error. Pure: ``now`` is always an argument.

Imports: the standard library and :mod:`horde.protocol` (counters, histogram).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from horde.protocol.counters import EntryCounters
from horde.protocol.histogram import Histogram

__all__ = [
    "CURRENT_WINDOW_SECONDS",
    "RATE_LAG_SECONDS",
    "ErrorRecord",
    "MergedEntry",
    "Span",
]

CURRENT_WINDOW_SECONDS = 10
"""Length of the window behind ``current_*`` rates and percentiles."""
RATE_LAG_SECONDS = 3
"""The current rate window ends this many seconds before ``now`` (reports arrive late)."""


class Span:
    """The run's time span shared by every entry (Locust computes rates over it)."""

    __slots__ = ("last", "start")

    def __init__(self, start: float | None) -> None:
        """Create a span starting at ``start`` (None: at the first activity seen)."""
        self.start = start
        self.last: float | None = None


_PLAIN_FIGURES = (
    "num_requests",
    "num_none_requests",
    "num_failures",
    "total_rt_us",
    "min_rt_us",
    "max_rt_us",
    "total_content_length",
)
"""The figures of an entry that are numbers (copied as they are)."""


class MergedEntry(EntryCounters):
    """Merged figures of one (method, name), or of the ``Aggregated`` total.

    Raw figures are integer µs; the ``*_ms`` accessors convert. Rates follow Locust: total
    rates divide by the run's span, current rates average per-second counts over
    ``[now - 13, now - 3)``.
    """

    __slots__ = ("_span",)

    def __init__(self, method: str, name: str, span: Span) -> None:
        """Create an empty entry bound to the stats' shared span."""
        self._span = span
        super().__init__(method, name)

    def __repr__(self) -> str:
        """Return a short representation."""
        return f"MergedEntry({self.method!r}, {self.name!r}, num_requests={self.num_requests})"

    def snapshot(self, span: Span) -> MergedEntry:
        """An independent copy of these figures, bound to ``span`` (a copy of the run's)."""
        copy = MergedEntry(self.method, self.name, span)
        for name in _PLAIN_FIGURES:
            setattr(copy, name, getattr(self, name))
        copy.hist = Histogram(dict(self.hist.counts))
        copy.hist.total = self.hist.total
        copy.req_per_sec = dict(self.req_per_sec)
        copy.fail_per_sec = dict(self.fail_per_sec)
        return copy

    @property
    def total_response_time_ms(self) -> float:
        """Sum of response times in ms."""
        return self.total_rt_us / 1000.0

    @property
    def min_response_time_ms(self) -> float | None:
        """Smallest response time in ms (None before any timed request)."""
        return None if self.min_rt_us is None else self.min_rt_us / 1000.0

    @property
    def max_response_time_ms(self) -> float:
        """Largest response time in ms (0 before any timed request)."""
        return self.max_rt_us / 1000.0

    @property
    def avg_response_time_ms(self) -> float:
        """Mean response time in ms over requests that had one."""
        timed = self.num_requests - self.num_none_requests
        return self.total_rt_us / 1000.0 / timed if timed > 0 else 0.0

    @property
    def avg_content_length(self) -> float:
        """Mean response length in bytes."""
        return self.total_content_length / self.num_requests if self.num_requests else 0.0

    @property
    def fail_ratio(self) -> float:
        """Failures per request (1.0 for failures without requests, as Locust)."""
        if self.num_requests:
            return self.num_failures / self.num_requests
        return 1.0 if self.num_failures else 0.0

    def percentiles_ms(self, ps: Iterable[float]) -> list[float]:
        """Return nearest-rank percentiles in ms (p=0 is the min, p=1 the max); 0 when empty."""
        values = self.hist.percentiles(ps, min_us=self.min_rt_us, max_us=self.max_rt_us)
        return [us / 1000.0 for us in values]

    def percentile_ms(self, p: float) -> float:
        """Return the nearest-rank ``p`` (0..1) percentile in ms; never above the max."""
        return self.percentiles_ms((p,))[0]

    @property
    def median_ms(self) -> float:
        """The 50th percentile in ms."""
        return self.percentile_ms(0.5)

    def _current(self, counts: dict[int, int], now: float) -> float:
        """Mean of ``counts`` per second over the current-rate window ending at ``now``."""
        hi = int(now) - RATE_LAG_SECONDS
        lo = hi - CURRENT_WINDOW_SECONDS
        start = self._span.start
        if start is not None:
            lo = max(lo, int(start))
        if hi <= lo:
            return 0.0
        get = counts.get
        return sum(get(s, 0) for s in range(lo, hi)) / (hi - lo)

    def current_rps(self, now: float) -> float:
        """Requests per second over ``[now - 13, now - 3)`` (clipped to the run start)."""
        return self._current(self.req_per_sec, now)

    def current_fail_per_sec(self, now: float) -> float:
        """Failures per second over ``[now - 13, now - 3)`` (clipped to the run start)."""
        return self._current(self.fail_per_sec, now)

    def _per_run_second(self, count: int, now: float) -> float:
        """``count`` divided by the run's span (last request, at most ``now``, minus start)."""
        start, last = self._span.start, self._span.last
        if start is None or last is None:
            return 0.0
        elapsed = min(last, now) - start
        return count / elapsed if elapsed > 0 else 0.0

    def total_rps(self, now: float) -> float:
        """Requests per second over the whole run, as Locust computes it."""
        return self._per_run_second(self.num_requests, now)

    def total_fail_per_sec(self, now: float) -> float:
        """Failures per second over the whole run, as Locust computes it."""
        return self._per_run_second(self.num_failures, now)


@dataclass(frozen=True)
class ErrorRecord:
    """One merged error: occurrences summed, first seen earliest, last seen latest."""

    method: str
    name: str
    error: str
    occurrences: int
    first_seen: float | None
    last_seen: float | None
