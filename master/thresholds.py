"""What a threshold measures: the metric table and the figures it reads.

Responsibility: :func:`measure` gives a :class:`~horde.master.threshold_syntax.Threshold`'s
value from what the master holds at one moment (:class:`ThresholdInputs`), or from a
sliding window's :class:`Figures`. Counts and rates are 0 without requests (a scope
never seen has none); a time or a ratio without any measures None ("no data", which
fails no threshold). Two small tables say how each metric is computed:
:data:`REQUEST_METRICS` (functions of a scope's :class:`Figures`: the whole run's, or a
window's) and :data:`RUN_METRICS` (functions of the :class:`ThresholdInputs` themselves:
``dropped_iterations``, ``generator_ok``). Pure.

Imports: the standard library and horde.master (entry, threshold_syntax),
horde.protocol.histogram.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from horde.master.entry import MergedEntry
from horde.master.threshold_syntax import METRIC_KINDS, MetricKind, Threshold
from horde.protocol.histogram import Histogram

__all__ = [
    "REQUEST_METRICS",
    "RUN_METRICS",
    "Figures",
    "ThresholdInputs",
    "entry_figures",
    "measure",
    "scope_entries",
]

AGGREGATED = "Aggregated"
"""The scope naming every request (as the total's row is named)."""


@dataclass(frozen=True, slots=True)
class Figures:
    """A scope's request figures over some seconds: the whole run, or a window."""

    requests: int
    failures: int
    none_requests: int
    total_rt_us: int
    hist: Histogram
    min_us: int | None
    max_us: int
    seconds: float
    """The time the figures cover (rates divide by it)."""
    exact_extremes: bool = True
    """Whether ``min_us``/``max_us`` are the figures' own (a window has only the run's)."""

    @property
    def timed(self) -> int:
        """Requests that have a response time."""
        return self.requests - self.none_requests


@dataclass(frozen=True, slots=True)
class ThresholdInputs:
    """What the master holds at ``now``, as thresholds read it (folded stats)."""

    now: float
    entries: Sequence[MergedEntry]
    total: MergedEntry
    start: float | None
    """The run's start (rates divide by the time since)."""
    last: float | None
    """The latest request seen."""
    dropped_iterations: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Arrival-rate iterations dropped, per user class."""
    generator_ok: bool = True
    """False once a worker was saturated for too long (:mod:`horde.master.saturation`)."""

    def run_seconds(self) -> float:
        """The whole run's span as Locust's total rates use it (last request, at most now)."""
        if self.start is None or self.last is None:
            return 0.0
        return max(0.0, min(self.last, self.now) - self.start)


def scope_entries(inputs: ThresholdInputs, scope: str | None) -> list[MergedEntry]:
    """The entries a scope names: the total (None, "Aggregated"), else every entry whose
    name, or method and name (``GET /items``), is the scope."""
    if scope is None or scope == AGGREGATED:
        return [inputs.total]
    return [e for e in inputs.entries if scope in (e.name, f"{e.method} {e.name}")]


def entry_figures(entries: Sequence[MergedEntry], seconds: float) -> Figures:
    """The figures of ``entries`` together (no entry: no request)."""
    if len(entries) == 1:
        e = entries[0]
        return Figures(
            e.num_requests,
            e.num_failures,
            e.num_none_requests,
            e.total_rt_us,
            e.hist,
            e.min_rt_us,
            e.max_rt_us,
            seconds,
        )
    hist = Histogram()
    for e in entries:
        hist.merge(e.hist)
    mins = [e.min_rt_us for e in entries if e.min_rt_us is not None]
    return Figures(
        sum(e.num_requests for e in entries),
        sum(e.num_failures for e in entries),
        sum(e.num_none_requests for e in entries),
        sum(e.total_rt_us for e in entries),
        hist,
        min(mins) if mins else None,
        max((e.max_rt_us for e in entries), default=0),
        seconds,
    )


def _percentile(f: Figures, q: float) -> float | None:
    """The ``q`` percentile in ms (None before any timed request)."""
    if f.timed <= 0 or not f.hist.total:
        return None
    if f.exact_extremes:
        return f.hist.percentile(q, min_us=f.min_us, max_us=f.max_us) / 1000.0
    value = f.hist.percentile(q)  # the window's extremes are unknown: the run's bound it
    return max(min(value, f.max_us), f.min_us or 0) / 1000.0


def _avg(f: Figures, _: Threshold) -> float | None:
    return f.total_rt_us / 1000.0 / f.timed if f.timed > 0 else None


def _fail_ratio(f: Figures, _: Threshold) -> float | None:
    if f.requests:
        return f.failures / f.requests
    return 1.0 if f.failures else None  # failures without requests: 1, as Locust


def _per_second(count: int, f: Figures) -> float:
    return count / f.seconds if f.seconds > 0 else 0.0


REQUEST_METRICS: dict[str, Callable[[Figures, Threshold], float | None]] = {
    "percentile": lambda f, t: _percentile(f, t.quantile or 0.0),
    "avg": _avg,
    "med": lambda f, t: _percentile(f, 0.5),
    "min": lambda f, t: _percentile(f, 0.0),
    "max": lambda f, t: _percentile(f, 1.0),
    "fail_ratio": _fail_ratio,
    "rps": lambda f, t: _per_second(f.requests, f),
    "fail_rps": lambda f, t: _per_second(f.failures, f),
    "requests": lambda f, t: float(f.requests),
    "failures": lambda f, t: float(f.failures),
}
"""Metrics of requests: a function of a scope's :class:`Figures` (times in ms)."""


def _dropped_iterations(inputs: ThresholdInputs, scope: str | None) -> float | None:
    """Iterations dropped, of one user class (``scope``) or of all of them."""
    dropped = inputs.dropped_iterations
    if scope is None:
        return float(sum(dropped.values()))
    return float(dropped.get(scope, 0))


RUN_METRICS: dict[str, Callable[[ThresholdInputs, str | None], float | None]] = {
    "dropped_iterations": _dropped_iterations,
    "generator_ok": lambda inputs, scope: 1.0 if inputs.generator_ok else 0.0,
}
"""Metrics of the run: a function of the :class:`ThresholdInputs` and the scope."""


def measure(
    threshold: Threshold, inputs: ThresholdInputs, window: Figures | None = None
) -> float | None:
    """The threshold's value now: over ``window`` when given, else over the whole run."""
    run_metric = RUN_METRICS.get(threshold.metric)
    if run_metric is not None:
        return run_metric(inputs, threshold.scope)
    figures = window
    if figures is None:
        entries = scope_entries(inputs, threshold.scope)
        figures = entry_figures(entries, inputs.run_seconds())
    return REQUEST_METRICS[threshold.metric](figures, threshold)


def is_request_metric(metric: str) -> bool:
    """Whether ``metric`` is computed from request figures (and so may take a window)."""
    return METRIC_KINDS[metric] not in (MetricKind.RUN_COUNT, MetricKind.FLAG)
