"""The run's history: one point per interval for charts, reports and exporters.

Responsibility: keep a bounded series of :class:`HistoryPoint` (users, current rates and
current-window percentiles) sampled while a test runs. When the series is full, every
other point is dropped and the interval doubles, so a run of any length keeps its whole
shape in at most ``max_points`` points. Pure: the caller passes ``now``.

Imports: the standard library and horde.master (stats, statsconf, units).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from horde.master.stats import MergedStats
from horde.master.statsconf import current_window
from horde.master.units import round_ms

DEFAULT_INTERVAL = 1.0
"""Seconds between points at the start of a run (Locust samples its history every second)."""
DEFAULT_MAX_POINTS = 2048
"""Most points kept; reaching it halves the series and doubles the interval."""


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """The state of the run at one moment (rates per second, times in ms)."""

    time: float
    user_count: int
    current_rps: float
    current_fail_per_sec: float
    response_time_percentile_50: float
    response_time_percentile_95: float
    total_requests: int
    total_failures: int

    def to_json(self) -> dict[str, Any]:
        """The point as a JSON-ready dict (the keys of ``GET /stats/history``)."""
        return asdict(self)


def history_point(stats: MergedStats, user_count: int, now: float) -> HistoryPoint:
    """Sample ``stats`` at ``now``."""
    stats.fold()
    total = stats.total
    p50, p95 = stats.current_percentiles_ms((0.5, 0.95), now, current_window())
    return HistoryPoint(
        time=round(now, 3),
        user_count=user_count,
        current_rps=round(total.current_rps(now), 3),
        current_fail_per_sec=round(total.current_fail_per_sec(now), 3),
        response_time_percentile_50=round_ms(p50),
        response_time_percentile_95=round_ms(p95),
        total_requests=total.num_requests,
        total_failures=total.num_failures,
    )


class History:
    """A bounded, evenly thinned series of points."""

    def __init__(
        self, interval: float = DEFAULT_INTERVAL, max_points: int = DEFAULT_MAX_POINTS
    ) -> None:
        if interval <= 0 or max_points < 2:
            raise ValueError("interval must be positive and max_points at least 2")
        self.base_interval = interval
        self.interval = interval
        self.max_points = max_points
        self._points: list[HistoryPoint] = []
        self._next_at: float | None = None

    def __len__(self) -> int:
        return len(self._points)

    def due(self, now: float) -> bool:
        """Whether a point should be taken at ``now``."""
        return self._next_at is None or now >= self._next_at

    def add(self, point: HistoryPoint) -> None:
        """Append ``point``; thin the series first if it is full."""
        if len(self._points) >= self.max_points:
            self._points = self._points[::2]
            self.interval *= 2
        self._points.append(point)
        self._next_at = point.time + self.interval

    def points(self) -> list[HistoryPoint]:
        """The points, oldest first."""
        return list(self._points)

    def clear(self) -> None:
        """Forget every point (a new run or a stats reset)."""
        self._points = []
        self.interval = self.base_interval
        self._next_at = None
