"""Coordinated-omission bookkeeping: when a pacing user's task iteration should have started.

Responsibility: a user whose ``wait_time`` paces it (``constant_pacing``,
``constant_throughput``) has a schedule. After each wait the task loop calls
:func:`mark_iteration_start`, which stores on the user how late the iteration starts
(actual start minus scheduled start, at least 0). The worker's request listener asks
:func:`current_lateness` for the lateness of the user running in the current greenlet and
records the request a second time, from its intended start (raw time plus lateness).

The schedule follows Locust's ``constant_pacing``: the next iteration is due one period
after the previous one was due; when a task overruns its period the schedule restarts from
the late start (Locust's pacing never bunches iterations to catch up), so an overrun is
charged once, to the iteration it delays. Arrival-rate users (``horde.worker.arrival``)
set the lateness themselves: their iterations are due on the fleet's schedule.

Imports: the standard library and gevent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gevent import getcurrent

__all__ = [
    "GATE_ATTR",
    "ITERATION_ATTR",
    "LATENESS_ATTR",
    "PACING_MARK",
    "SCHEDULE_ATTR",
    "current_lateness",
    "is_pacing",
    "mark_iteration_start",
    "set_schedule",
]

PACING_MARK = "horde_pacing"
"""Attribute set (True) on wait-time functions that pace: their users get a corrected series."""
SCHEDULE_ATTR = "_horde_schedule"
"""Instance attribute: ``(clock, due)``, when the next iteration is due by that clock."""
LATENESS_ATTR = "_horde_lateness"
"""User attribute: seconds the current iteration started late."""
GATE_ATTR = "_horde_gate"
"""Class attribute (True) of an arrival-rate pool's users: they wait for an iteration
before their first task too, and their iterations are timed from the scheduled start."""
ITERATION_ATTR = "_horde_iteration"
"""User attribute: ``class:index`` of the arrival-rate iteration it runs (a header)."""


def set_schedule(instance: Any, clock: Callable[[], float], due: float) -> None:
    """Note on a pacing wait's ``instance`` (user or TaskSet) when its next iteration is due."""
    setattr(instance, SCHEDULE_ATTR, (clock, due))


def mark_iteration_start(holder: Any, user: Any) -> None:
    """Store on ``user`` the lateness of the iteration starting now (after a wait).

    The schedule lives on whichever instance the pacing ``wait_time`` ran for: ``holder``
    (a TaskSet that declares its own ``wait_time``) or else ``user``.
    """
    schedule = getattr(holder, SCHEDULE_ATTR, None)
    if schedule is None:
        schedule = getattr(user, SCHEDULE_ATTR, None)
        if schedule is None:
            return
    clock, due = schedule
    setattr(user, LATENESS_ATTR, max(0.0, clock() - due))


def is_pacing(user: Any) -> bool:
    """Whether ``user``'s class paces it (its ``wait_time`` is a pacing wait)."""
    return bool(getattr(getattr(type(user), "wait_time", None), PACING_MARK, False))


def current_lateness() -> float | None:
    """The lateness (s) of the pacing user running in this greenlet; None if not pacing.

    A user's greenlet has the user as its first argument (as in Locust). A pacing user
    before its first wait is on time (0.0).
    """
    args = getattr(getcurrent(), "args", None)
    if not args:
        return None
    user = args[0]
    lateness = getattr(user, LATENESS_ATTR, None)
    if lateness is None and is_pacing(user):
        return 0.0
    return lateness
