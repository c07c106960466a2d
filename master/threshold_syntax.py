"""The threshold language: parse ``GET /items: p99<300ms over 30s`` into a :class:`Threshold`.

Responsibility: the one grammar of ``--threshold``, the ``/swarm`` field ``thresholds``
and a script's module-level ``thresholds = [...]``, and the metric names it knows (with
their kind, which says what unit the bound takes and whether a scope or a window may
be given). A bad expression raises :class:`ThresholdSyntaxError` naming the 1-based
column of the problem. Pure.

Grammar (spaces around tokens are free)::

    threshold := [scope ": "] check [" over " span]  |  [scope ": "] "generator_ok"
    check     := metric op number [unit]
    metric    := pNN | p(NN) | avg | med | min | max | fail_ratio | rps | fail_rps
               | requests | failures | dropped_iterations | generator_ok
    op        := < | <= | > | >= | == | !=
    unit      := us | ms | s  (times: required)  |  %  (fail_ratio: optional)

The scope is the text before the last ``": "``: a request entry's name, or its method and
name (``GET /items/[id]``); for ``dropped_iterations``, a user class.

Imports: the standard library and horde.master (timespan), horde.protocol.errors.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from horde.master.timespan import parse_timespan
from horde.protocol.errors import ConfigError

__all__ = [
    "METRIC_KINDS",
    "OPERATORS",
    "MetricKind",
    "Threshold",
    "ThresholdSyntaxError",
    "parse_threshold",
    "parse_thresholds",
]

MAX_WINDOW_SECONDS = 3600.0
"""The longest sliding window (``over``): one hour of per-second samples at most."""
MAX_TEXT = 500
"""The longest threshold expression accepted."""


class MetricKind(Enum):
    """What a metric measures: it decides the bound's unit, and where a metric may apply."""

    TIME = "time"
    """A response time: the bound takes us, ms or s (kept in ms)."""
    RATIO = "ratio"
    """A fraction: the bound is a number (0.01) or a percentage (1%)."""
    RATE = "rate"
    """Per second: a bare number."""
    COUNT = "count"
    """A count: a bare number."""
    RUN_COUNT = "run_count"
    """A count of the run, not of requests: no window; its scope is a user class."""
    FLAG = "flag"
    """True or false (1 or 0) of the whole run: no scope, no window, may stand alone."""


METRIC_KINDS: dict[str, MetricKind] = {
    "percentile": MetricKind.TIME,
    "avg": MetricKind.TIME,
    "med": MetricKind.TIME,
    "min": MetricKind.TIME,
    "max": MetricKind.TIME,
    "fail_ratio": MetricKind.RATIO,
    "rps": MetricKind.RATE,
    "fail_rps": MetricKind.RATE,
    "requests": MetricKind.COUNT,
    "failures": MetricKind.COUNT,
    "dropped_iterations": MetricKind.RUN_COUNT,
    "generator_ok": MetricKind.FLAG,
}
"""Every metric a threshold may name (a percentile is written ``pNN``), with its kind."""

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
"""The comparisons, longest spelling first (so ``<=`` is not read as ``<``)."""

_TIME_UNITS = {"us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0}
_METRIC = re.compile(r"\s*(p\((\d+(?:\.\d+)?)\)|p(\d+(?:\.\d+)?)|[a-z_]+)")
_NUMBER = re.compile(r"\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)")
_UNIT = re.compile(r"\s*(us|µs|ms|s|%)(?![A-Za-z])")
_OVER = re.compile(r"\s+over\s+(\S+)\s*$")


class ThresholdSyntaxError(ConfigError):
    """A threshold that cannot be read; ``column`` (1-based) points at the problem."""

    def __init__(self, text: str, column: int, problem: str) -> None:
        super().__init__(f"threshold {text!r}: column {column}: {problem}")
        self.text = text
        self.column = column
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Threshold:
    """One parsed threshold: ``scope`` (None: every request), metric, comparison, window."""

    text: str
    """The expression as written (stripped): its name in every output."""
    metric: str
    """A key of :data:`METRIC_KINDS`."""
    op: str
    """A key of :data:`OPERATORS`."""
    bound: float
    """The bound, in ms for times and as a fraction for ratios."""
    scope: str | None = None
    quantile: float | None = None
    """For ``percentile``: the quantile, 0..1 (p99.9 -> 0.999)."""
    window: float | None = None
    """Seconds of the sliding window (None: the whole run)."""

    @property
    def kind(self) -> MetricKind:
        """The metric's kind."""
        return METRIC_KINDS[self.metric]

    def passes(self, value: float) -> bool:
        """Whether a measured ``value`` (same unit as :attr:`bound`) meets the threshold."""
        return OPERATORS[self.op](value, self.bound)


def parse_thresholds(texts: list[str] | tuple[str, ...]) -> tuple[Threshold, ...]:
    """Parse each of ``texts``; the first bad one raises :class:`ThresholdSyntaxError`."""
    return tuple(parse_threshold(text) for text in texts)


def parse_threshold(text: str) -> Threshold:
    """Parse one expression, or raise :class:`ThresholdSyntaxError` naming the column."""
    if not isinstance(text, str):
        raise ThresholdSyntaxError(str(text), 1, "a threshold must be a string")
    if len(text) > MAX_TEXT or any(ord(c) < 32 for c in text):
        raise ThresholdSyntaxError(
            text[:60], 1, f"a threshold is one line of at most {MAX_TEXT} characters"
        )
    source = text
    text = text.strip()
    lead = len(source) - len(source.lstrip())

    def fail(index: int, problem: str) -> ThresholdSyntaxError:
        return ThresholdSyntaxError(source, lead + index + 1, problem)

    if not text:
        raise fail(0, "empty threshold: write e.g. p95<200ms")
    scope, pos = None, 0
    cut = text.rfind(": ")
    if cut >= 0:
        scope, pos = text[:cut].strip(), cut + 2
        if not scope:
            raise fail(0, "empty scope before ': ': name a request entry, or leave it out")
    end, window = len(text), None
    over = _OVER.search(text, pos)
    if over is not None:
        end = over.start()
        window = _window(over.group(1), lambda problem: fail(over.start(1), problem))
    return _check(text, pos, end, scope=scope, window=window, fail=fail)


def _window(raw: str, fail: Callable[[str], ThresholdSyntaxError]) -> float:
    """The seconds of ``over <span>``."""
    try:
        seconds = parse_timespan(raw)
    except ValueError as exc:
        raise fail(f"a window is a time span such as 30s or 5m ({exc})") from None
    if seconds < 1 or seconds > MAX_WINDOW_SECONDS:
        raise fail(f"a window lasts from 1 s to {MAX_WINDOW_SECONDS:g} s, got {raw!r}")
    return seconds


def _check(
    text: str,
    pos: int,
    end: int,
    *,
    scope: str | None,
    window: float | None,
    fail: Callable[[int, str], ThresholdSyntaxError],
) -> Threshold:
    """Read ``metric op number [unit]`` from ``text[pos:end]``."""
    found = _METRIC.match(text, pos, end)
    if found is None:
        raise fail(pos, f"expected a metric ({_names()})")
    at = found.start(1)
    metric, quantile = found.group(1), None
    digits = found.group(2) or found.group(3)
    if digits is not None:
        quantile = round(float(digits) / 100, 9)
        if not 0 < quantile <= 1:
            raise fail(at, f"a percentile is between p0 and p100, got {metric}")
        metric = "percentile"
    elif metric not in METRIC_KINDS or metric == "percentile":
        raise fail(at, f"unknown metric {metric!r}: use one of {_names()}")
    kind = METRIC_KINDS[metric]
    if kind is MetricKind.FLAG and scope is not None:
        raise fail(0, f"{metric} is about the whole run: it takes no scope")
    if scope is not None and kind is MetricKind.RUN_COUNT and " " in scope:
        raise fail(0, f"the scope of {metric} is a user class name, got {scope!r}")
    if window is not None and kind in (MetricKind.FLAG, MetricKind.RUN_COUNT):
        raise fail(_skip(text, end), f"{metric} is about the whole run: it takes no window")
    pos = found.end()
    if kind is MetricKind.FLAG and not text[pos:end].strip():
        return Threshold(text, metric, "==", 1.0, scope, None, window)
    op = next((o for o in OPERATORS if text.startswith(o, _skip(text, pos))), None)
    if op is None:
        raise fail(_skip(text, pos), "expected a comparison: <, <=, >, >=, == or !=")
    pos = _skip(text, pos) + len(op)
    number = _NUMBER.match(text, pos, end)
    if number is None:
        raise fail(_skip(text, pos), "expected a number")
    bound = float(number.group(1))
    if not math.isfinite(bound):
        raise fail(number.start(1), "the bound must be a finite number")
    pos = number.end()
    bound = _unit(text, pos, end, kind=kind, bound=bound, fail=fail)
    return Threshold(text, metric, op, bound, scope, quantile, window)


def _unit(
    text: str,
    pos: int,
    end: int,
    *,
    kind: MetricKind,
    bound: float,
    fail: Callable[[int, str], ThresholdSyntaxError],
) -> float:
    """Apply the unit after the number (checked against the kind); reject what follows."""
    unit = _UNIT.match(text, pos, end)
    at = _skip(text, pos)
    if kind is MetricKind.TIME:
        if unit is None:
            raise fail(at, "a time needs a unit: us, ms or s (e.g. 200ms)")
        if unit.group(1) == "%":
            raise fail(unit.start(1), "a time's unit is us, ms or s, not %")
        bound *= _TIME_UNITS[unit.group(1)]
    elif unit is not None:
        if kind is not MetricKind.RATIO or unit.group(1) != "%":
            allowed = "no unit, or %" if kind is MetricKind.RATIO else "no unit"
            raise fail(unit.start(1), f"this metric takes {allowed}, not {unit.group(1)!r}")
        bound /= 100
    if unit is not None:
        pos = unit.end()
    if text[pos:end].strip():
        raise fail(_skip(text, pos), f"unexpected {text[_skip(text, pos) : end]!r}")
    return bound


def _skip(text: str, pos: int) -> int:
    """The index of the first non-space at or after ``pos``."""
    while pos < len(text) and text[pos] == " ":
        pos += 1
    return pos


def _names() -> str:
    return ", ".join(["pNN", *(m for m in METRIC_KINDS if m != "percentile")])
