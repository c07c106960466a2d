"""Ramp pacing: Locust's spawn-rate steps as a plan computed step by step."""

from __future__ import annotations

import itertools
import math

import pytest

from horde.master.ramp import RampPlan, RampStep


def table(plan: RampPlan) -> list[tuple[float, int]]:
    """The plan's steps as (seconds after the start, total) pairs, times rounded to 1 us."""
    return [(round(step.at - plan.started_at, 6), step.total) for step in plan.steps()]


@pytest.mark.parametrize(
    ("start", "target", "rate", "expected"),
    [
        (0, 100, 20, [(0.0, 20), (1.0, 40), (2.0, 60), (3.0, 80), (4.0, 100)]),
        (0, 100, 100, [(0.0, 100)]),
        (0, 100, 250, [(0.0, 100)]),
        (0, 3, 1, [(0.0, 1), (1.0, 2), (2.0, 3)]),
        (0, 3, 0.5, [(0.0, 1), (2.0, 2), (4.0, 3)]),
        (0, 5, 2.5, [(0.0, 2), (0.8, 4), (1.6, 5)]),
        (0, 7, 2.5, [(0.0, 2), (0.8, 4), (1.6, 6), (2.4, 7)]),
        (10, 15, 20, [(0.0, 15)]),
        (40, 100, 20, [(0.0, 60), (1.0, 80), (2.0, 100)]),
    ],
)
def test_ramp_up_steps(start: int, target: int, rate: float, expected: list) -> None:
    """Each step adds max(1, floor(rate)) users, step/rate seconds apart, the first at once."""
    assert table(RampPlan(start, target, rate, started_at=50.0)) == expected


@pytest.mark.parametrize(
    ("start", "target", "rate", "expected"),
    [
        (100, 0, 20, [(0.0, 80), (1.0, 60), (2.0, 40), (3.0, 20), (4.0, 0)]),
        (10, 3, 2.5, [(0.0, 8), (0.8, 6), (1.6, 4), (2.4, 3)]),
        (3, 0, 0.5, [(0.0, 2), (2.0, 1), (4.0, 0)]),
        (100, 0, 1000, [(0.0, 0)]),
    ],
)
def test_ramp_down_uses_the_same_rate(start: int, target: int, rate: float, expected: list) -> None:
    """Going down removes users at the same pace, the last step clipped at the target."""
    assert table(RampPlan(start, target, rate)) == expected


def test_unchanged_total_is_one_immediate_step() -> None:
    """A plan to the current total still dispatches once, as Locust does."""
    assert list(RampPlan(7, 7, 3.0, started_at=2.0).steps()) == [RampStep(2.0, 7, 0)]


def test_huge_target_is_planned_lazily() -> None:
    """A million users at rate 10 costs nothing up front; any step is computed directly."""
    plan = RampPlan(0, 1_000_000, 10, started_at=0.0)
    assert list(itertools.islice(plan.steps(), 3)) == [
        RampStep(0.0, 10, 0),
        RampStep(1.0, 20, 1),
        RampStep(2.0, 30, 2),
    ]
    assert plan.step_count == 100_000
    assert plan.step_at(99_999) == RampStep(99_999.0, 1_000_000, 99_999)
    assert plan.ends_at == 99_999.0


def test_plan_shape_properties() -> None:
    """Step size, interval and count follow Locust's formulas."""
    plan = RampPlan(0, 5, 2.5)
    assert (plan.step_size, plan.interval, plan.step_count) == (2, 0.8, 3)
    assert RampPlan(0, 5, 0.25).interval == 4.0


@pytest.mark.parametrize(
    ("now", "current", "total"),
    [
        (9.99, None, 0),
        (10.0, 0, 20),
        (10.99, 0, 20),
        (11.0, 1, 40),
        (13.5, 3, 80),
        (14.0, 4, 100),
        (1e9, 4, 100),
    ],
)
def test_current_step_and_total_at_a_time(now: float, current: int | None, total: int) -> None:
    """The due step at any instant is the latest with at <= now; before the start, none."""
    plan = RampPlan(0, 100, 20, started_at=10.0)
    step = plan.current_step(now)
    assert (step.index if step else None) == current
    assert plan.total_at(now) == total


def test_step_times_on_float_boundaries_are_due() -> None:
    """A step is due exactly at its own computed time, even for inexact intervals."""
    plan = RampPlan(0, 100, 2.5, started_at=0.1)
    for step in plan.steps():
        assert plan.current_step(step.at) == step


def test_next_step_hands_out_each_due_step_once() -> None:
    """A loop ticking on time gets every step once, then done and an infinite next_at."""
    plan = RampPlan(0, 60, 20, started_at=100.0)
    timeline = [
        (99.0, None, 100.0),
        (100.0, 20, 101.0),
        (100.0, None, 101.0),
        (100.5, None, 101.0),
        (101.0, 40, 102.0),
        (102.0, 60, math.inf),
        (103.0, None, math.inf),
    ]
    for now, total, next_at in timeline:
        step = plan.next_step(now)
        assert (step.total if step else None) == total
        assert plan.next_at == next_at
    assert plan.done


def test_next_step_skips_missed_steps_after_a_late_wake() -> None:
    """Waking late returns only the newest due step, not a burst of stale ones."""
    plan = RampPlan(0, 100, 10, started_at=0.0)
    assert plan.next_step(0.0) == RampStep(0.0, 10, 0)
    assert plan.next_step(4.2) == RampStep(4.0, 50, 4)
    assert plan.next_step(4.9) is None
    assert not plan.done
    assert plan.next_step(60.0) == RampStep(9.0, 100, 9)
    assert plan.done


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"rate": 0}, "rate"),
        ({"rate": -1.0}, "rate"),
        ({"rate": math.inf}, "rate"),
        ({"rate": math.nan}, "rate"),
        ({"target": -1}, "target"),
        ({"target": 1.5}, "target"),
        ({"start": -3}, "start"),
        ({"started_at": math.nan}, "started_at"),
    ],
)
def test_invalid_plans_are_rejected(kwargs: dict, field: str) -> None:
    """Bad rates, targets and starts raise ValueError naming the field."""
    arguments = {"start": 0, "target": 10, "rate": 1.0, "started_at": 0.0} | kwargs
    with pytest.raises(ValueError, match=field):
        RampPlan(**arguments)


def test_step_index_outside_the_plan_is_an_error() -> None:
    """Asking for a step that does not exist raises IndexError."""
    plan = RampPlan(0, 10, 5)
    with pytest.raises(IndexError):
        plan.step_at(2)
    with pytest.raises(IndexError):
        plan.step_at(-1)
