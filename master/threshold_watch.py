"""Judging a run's thresholds as it goes: sliding windows, verdicts, the abort decision.

Responsibility: :class:`ThresholdWatch` checks each threshold of one run on the figures
so far (called about every second, and once more at the end with ``final=True``) and
keeps each one's verdict (:class:`ThresholdResult`):

- a threshold over the whole run is judged on the latest figures: it passes at the end
  if the final figures pass, whatever happened on the way;
- a threshold ``over`` a window is judged on each full window (the last W seconds, once
  the run has lasted W): it fails for good the first time a full window fails, and shows
  its worst window. A run shorter than its window is judged on the whole run at the end.

A window is kept by :class:`SlidingWindow` as per-second differences of its scope's
cumulative figures (the master's own per-second histograms hold only the total, for 20
seconds), with a running sum, so a check costs one second's difference, and in at most
:data:`MAX_STEPS` steps, so its memory is bounded whatever its length.
Pure: ``now`` comes in the inputs.

Imports: the standard library, horde.master (threshold_syntax, thresholds) and
horde.protocol.histogram.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from horde.master.threshold_syntax import MetricKind, Threshold
from horde.master.thresholds import (
    Figures,
    ThresholdInputs,
    entry_figures,
    is_request_metric,
    measure,
    scope_entries,
)
from horde.protocol.histogram import Histogram

__all__ = ["MAX_STEPS", "SlidingWindow", "ThresholdResult", "ThresholdWatch"]

MAX_STEPS = 120
"""The most steps a sliding window keeps (a window over 2 minutes has steps of several seconds)."""


@dataclass(slots=True)
class _Step:
    """The difference of a scope's figures between two samples (or the sum of several)."""

    since: float
    until: float
    requests: int = 0
    failures: int = 0
    none_requests: int = 0
    total_rt_us: int = 0
    hist: Histogram = field(default_factory=Histogram)

    def add(self, other: _Step, sign: int = 1) -> None:
        """Add (or, with ``sign`` -1, take away) ``other``'s figures; extend to its end."""
        self.until = max(self.until, other.until)
        self.requests += sign * other.requests
        self.failures += sign * other.failures
        self.none_requests += sign * other.none_requests
        self.total_rt_us += sign * other.total_rt_us
        counts = self.hist.counts
        for i, n in other.hist.counts.items():
            left = counts.get(i, 0) + sign * n
            if left:
                counts[i] = left
            else:
                counts.pop(i, None)
        self.hist.total += sign * other.hist.total


class SlidingWindow:
    """A scope's figures over the last ``seconds``, from its cumulative figures each second.

    Seconds are kept as steps of at most ``seconds / MAX_STEPS`` (at least one second), so
    a window holds at most about :data:`MAX_STEPS` steps whatever its length; its figures
    then span up to one step more than ``seconds``.
    """

    def __init__(self, seconds: float, started_at: float) -> None:
        self.seconds = seconds
        self.step_seconds = max(1.0, seconds / MAX_STEPS)
        self._steps: deque[_Step] = deque()
        self._last_at = started_at
        self._last: Figures | None = None
        self._sum = _Step(0.0, 0.0)

    def add(self, cumulative: Figures, now: float) -> None:
        """Take the scope's cumulative figures at ``now``."""
        if now <= self._last_at:
            return
        last = self._last
        if last is not None and cumulative.requests < last.requests:  # the stats were reset
            self._steps.clear()
            self._sum = _Step(0.0, 0.0)
            last = None
        before = {} if last is None else last.hist.counts
        counts = {i: n - before.get(i, 0) for i, n in cumulative.hist.counts.items()}
        counts = {i: n for i, n in counts.items() if n}
        step = _Step(
            self._last_at,
            now,
            cumulative.requests - (last.requests if last else 0),
            cumulative.failures - (last.failures if last else 0),
            cumulative.none_requests - (last.none_requests if last else 0),
            cumulative.total_rt_us - (last.total_rt_us if last else 0),
            Histogram(counts),
        )
        self._last = replace(cumulative, hist=Histogram(dict(cumulative.hist.counts)))
        self._last_at = now
        self._sum.add(step)
        steps = self._steps
        if steps and steps[-1].until - steps[-1].since < self.step_seconds:
            steps[-1].add(step)  # a long window: seconds share a step
        else:
            steps.append(step)
        while steps and steps[0].until <= now - self.seconds:
            self._sum.add(steps.popleft(), -1)

    def covered(self, now: float) -> float:
        """The seconds the window's figures span (up to one step more than ``seconds``)."""
        return now - self._steps[0].since if self._steps else 0.0

    def full(self, now: float) -> bool:
        """Whether the window spans its whole length."""
        return self.covered(now) >= self.seconds

    def figures(self, now: float) -> Figures | None:
        """The window's figures (extremes: the run's so far); None before any sample."""
        last = self._last
        if last is None:
            return None
        s = self._sum
        return Figures(
            s.requests,
            s.failures,
            s.none_requests,
            s.total_rt_us,
            Histogram(dict(s.hist.counts)),
            last.min_us,
            last.max_us,
            self.covered(now),
            exact_extremes=False,
        )


@dataclass(frozen=True, slots=True)
class ThresholdResult:
    """One threshold's verdict so far: the value it rests on, and whether it passes."""

    threshold: Threshold
    value: float | None
    """The measured value (ms for times, a fraction for ratios); None: no data yet."""
    ok: bool
    first_failed_after: float | None = None
    """Seconds from the run's start to the first failed check (None: none)."""
    judged: bool = True
    """False for a window not full yet (its value is shown, not judged)."""

    @property
    def unit(self) -> str:
        """The unit of :attr:`value`: ``ms`` for times, else empty."""
        return "ms" if self.threshold.kind is MetricKind.TIME else ""

    def to_json(self) -> dict[str, Any]:
        """The result as ``GET /stats/thresholds`` and ``--json`` show it."""
        t = self.threshold
        return {
            "threshold": t.text,
            "scope": t.scope,
            "metric": t.metric if t.quantile is None else f"p{t.quantile * 100:g}",
            "op": t.op,
            "bound": t.bound,
            "window": t.window,
            "value": None if self.value is None else round(self.value, 6),
            "unit": self.unit,
            "ok": self.ok,
            "first_failed_after": self.first_failed_after,
        }


def _worse(t: Threshold, a: float | None, b: float | None) -> float | None:
    """The value of ``a`` and ``b`` further from passing (the first failing for == and !=)."""
    if a is None or b is None:
        return b if a is None else a
    if t.op in ("<", "<="):
        return max(a, b)
    if t.op in (">", ">="):
        return min(a, b)
    return a if not t.passes(a) else b


class ThresholdWatch:
    """The thresholds of one run, started at ``started_at``, and their verdicts."""

    def __init__(self, thresholds: Sequence[Threshold], started_at: float) -> None:
        self.thresholds = tuple(thresholds)
        self.started_at = started_at
        self._windows: dict[tuple[str | None, float], SlidingWindow] = {}
        for t in self.thresholds:
            if t.window is not None and is_request_metric(t.metric):
                self._windows.setdefault((t.scope, t.window), SlidingWindow(t.window, started_at))
        self._results = [ThresholdResult(t, None, True, judged=False) for t in self.thresholds]
        self.failing_now = False
        """Whether the latest check of any judged threshold failed."""

    def check(self, inputs: ThresholdInputs, *, final: bool = False) -> list[ThresholdResult]:
        """Check every threshold on ``inputs``; return the verdicts so far."""
        now = inputs.now
        for (scope, _), window in self._windows.items():
            window.add(entry_figures(scope_entries(inputs, scope), 0.0), now)
        failing = False
        for k, t in enumerate(self.thresholds):
            before = self._results[k]
            if t.window is None:
                value = measure(t, inputs)
                passed = _passes(t, value)
                result = ThresholdResult(t, value, passed, self._first(before, passed, now))
            else:
                result = self._check_window(t, inputs, before, final)
            failing = failing or (result.judged and not _passes(t, result.value))
            self._results[k] = result
        self.failing_now = failing
        return list(self._results)

    def _check_window(
        self, t: Threshold, inputs: ThresholdInputs, before: ThresholdResult, final: bool
    ) -> ThresholdResult:
        """A windowed threshold: judged on each full window, failed for good once failed."""
        window = self._windows[(t.scope, t.window or 0.0)]
        now = inputs.now
        if window.full(now):
            value = measure(t, inputs, window.figures(now))
        elif final and not before.judged:  # the run was shorter than its window
            value = measure(t, inputs)
        else:  # shown, not judged yet
            value = measure(t, inputs, window.figures(now))
            return ThresholdResult(
                t, value, before.ok, before.first_failed_after, judged=before.judged
            )
        passed = _passes(t, value)
        if before.ok:
            shown, ok = value, passed
        else:  # failed for good: show the worst failed window
            shown, ok = before.value if passed else _worse(t, before.value, value), False
        return ThresholdResult(t, shown, ok, self._first(before, passed, now))

    def _first(self, before: ThresholdResult, passed: bool, now: float) -> float | None:
        """When the threshold first failed, in seconds from the start."""
        if before.first_failed_after is not None or passed:
            return before.first_failed_after
        return round(now - self.started_at, 3)

    def results(self) -> list[ThresholdResult]:
        """The verdicts as of the latest check."""
        return list(self._results)

    @property
    def passed(self) -> bool:
        """Whether every threshold passes (as of the latest check)."""
        return all(r.ok for r in self._results)


def _passes(t: Threshold, value: float | None) -> bool:
    return value is None or t.passes(value)
