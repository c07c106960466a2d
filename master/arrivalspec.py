"""How arrival rates are written: ``--arrival-rate``, ``--stages`` and a class's attributes.

Responsibility: turn what a user writes into a :class:`~horde.protocol.rates.Schedule`:
a rate (``500``: iterations per second, held for the whole run), a stages text
(``30s:100,2m:500,30s:0``: linear ramps from 0, each to its rate over its time span), or
a user class's ``arrival_rate = 500`` / ``stages = [("30s", 100), ("2m", 500)]``
attributes (:func:`class_schedule`). Errors are ``ValueError`` naming the bad part.
Pure.

Imports: the standard library, horde.master.timespan and horde.protocol.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from horde.master.timespan import parse_timespan
from horde.protocol.errors import ConfigError
from horde.protocol.rates import MAX_RATE, Schedule


def parse_rate(raw: object, what: str = "arrival rate") -> float:
    """A rate in iterations per second, above 0 and at most :data:`MAX_RATE`."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"{what} must be a number of iterations per second, got {raw!r}")
    try:
        rate = float(raw)
    except ValueError:
        raise ValueError(f"{what} must be a number of iterations per second, got {raw!r}") from None
    if not (math.isfinite(rate) and 0 <= rate <= MAX_RATE):
        raise ValueError(f"{what} must be between 0 and {MAX_RATE:g} per second, got {raw!r}")
    return rate


MIN_RATE = 0.001
"""Lowest constant rate, iterations per second (one iteration in about 17 minutes)."""


def constant(raw: object) -> Schedule:
    """A constant rate (``--arrival-rate``), at least :data:`MIN_RATE`."""
    rate = parse_rate(raw)
    if rate < MIN_RATE:
        raise ValueError(f"arrival rate must be at least {MIN_RATE:g} per second, got {raw!r}")
    return Schedule(rate)


def stages_schedule(pairs: Iterable[Any]) -> Schedule:
    """Linear ramps from 0: each ``(time span, rate)`` pair, the span as ``--run-time``
    takes it (``30``, ``30s``, ``2m``)."""
    stages = []
    for number, pair in enumerate(pairs, 1):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError(f"stage {number} must be (time span, rate), got {pair!r}")
        try:
            seconds = parse_timespan(pair[0])
        except ValueError as exc:
            raise ValueError(f"stage {number}: {exc}") from None
        stages.append((seconds, parse_rate(pair[1], f"stage {number} rate")))
    if not stages:
        raise ValueError("stages must list at least one (time span, rate)")
    if not any(rate > 0 for _, rate in stages):
        raise ValueError("stages must ask for some iterations (every rate is 0)")
    return Schedule(0.0, tuple(stages))


def parse_stages(text: str) -> Schedule:
    """``--stages 30s:100,2m:500,30s:0``: comma-separated ``span:rate`` linear ramps."""
    pairs = []
    for number, part in enumerate(text.split(","), 1):
        span, sep, rate = part.strip().rpartition(":")
        if not sep or not span:
            raise ValueError(f"stage {number} ({part.strip()!r}) must be SPAN:RATE, e.g. 30s:100")
        pairs.append((span, rate))
    return stages_schedule(pairs)


def class_schedule(cls: type) -> Schedule | None:
    """A user class's own schedule (``arrival_rate`` or ``stages``), or None."""
    rate = getattr(cls, "arrival_rate", None)
    stages = getattr(cls, "stages", None)
    name = getattr(cls, "__name__", "?")
    try:
        if rate is not None and stages is not None:
            raise ValueError("set arrival_rate or stages, not both")
        if rate is not None:
            return constant(rate)
        if stages is not None:
            if isinstance(stages, str):
                return parse_stages(stages)
            return stages_schedule(stages)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    return None


def class_schedules(user_classes: Mapping[str, type]) -> dict[str, Schedule]:
    """The arrival-rate classes among ``user_classes`` and their own schedules."""
    out = {}
    for name, cls in user_classes.items():
        schedule = class_schedule(cls)
        if schedule is not None:
            out[name] = schedule
    return out


def arrival_classes(user_classes: Mapping[str, type]) -> dict[str, Schedule]:
    """:func:`class_schedules`, a bad attribute refused as a :class:`ConfigError`."""
    try:
        return class_schedules(user_classes)
    except ValueError as exc:
        raise ConfigError(f"arrival rate of user class {exc}") from None
