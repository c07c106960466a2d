"""Wait-time functions: how long a user pauses between two tasks.

Each factory returns a function of the user (or TaskSet) instance, to assign as the
class attribute ``wait_time``, with Locust's semantics. ``constant_pacing`` and
``constant_throughput`` keep their state on the instance (``_cp_last_run``,
``_cp_last_wait_time``, as Locust), so every user paces itself, and note when the next
iteration is due (``horde.worker.api.pacing``) for the coordinated-omission corrected series.
They take an optional ``clock`` so tests can drive them without sleeping. Pure: nothing
here sleeps.

Imports: the standard library and ``horde.worker.api.pacing``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from horde.worker.api.pacing import PACING_MARK, set_schedule

WaitTime = Callable[[Any], float]
Clock = Callable[[], float]


def between(min_wait: float, max_wait: float) -> WaitTime:
    """A uniformly random wait between ``min_wait`` and ``max_wait`` seconds."""
    span = max_wait - min_wait

    def wait_time(_instance: Any) -> float:
        return min_wait + random.random() * span

    return wait_time


def constant(wait: float) -> WaitTime:
    """Always the same wait of ``wait`` seconds."""

    def wait_time(_instance: Any) -> float:
        return wait

    return wait_time


def constant_pacing(period: float, *, clock: Clock = time.perf_counter) -> WaitTime:
    """A wait that makes tasks start every ``period`` seconds, whatever they take.

    It measures the time since the previous task started (the previous call plus the wait it
    returned) and waits for the rest of the period, or not at all if the task overran. The
    next iteration is due one period after the previous one was due (in the past when the
    task overran); its lateness is what the corrected series charges.
    """

    def wait_time(instance: Any) -> float:
        now = clock()
        last_run = getattr(instance, "_cp_last_run", None)
        if last_run is None:
            last_run = now
        last_wait = getattr(instance, "_cp_last_wait_time", 0.0)
        run_time = now - last_run - last_wait
        wait = max(0.0, period - run_time)
        instance._cp_last_wait_time = wait
        instance._cp_last_run = now
        set_schedule(instance, clock, now + period - run_time)
        return wait

    setattr(wait_time, PACING_MARK, True)
    return wait_time


def constant_throughput(
    task_runs_per_second: float, *, clock: Clock = time.perf_counter
) -> WaitTime:
    """A wait that makes one user run ``task_runs_per_second`` tasks a second at most.

    The inverse of :func:`constant_pacing`: a period of ``1 / task_runs_per_second``.
    """
    if task_runs_per_second <= 0:
        raise ValueError(f"constant_throughput() needs a positive rate, got {task_runs_per_second}")
    return constant_pacing(1.0 / task_runs_per_second, clock=clock)


def poisson(rate: float) -> WaitTime:
    """A random wait with mean ``1 / rate`` seconds (exponentially distributed): tasks
    arrive as a Poisson process of ``rate`` a second, bursts and lulls included."""
    if rate <= 0:
        raise ValueError(f"poisson() needs a positive rate, got {rate}")

    def wait_time(_instance: Any) -> float:
        return random.expovariate(rate)

    return wait_time
