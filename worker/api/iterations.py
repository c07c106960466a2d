"""``-i/--iterations N`` on a worker: at most N task iterations, then its users stop.

Responsibility: the meaning locust-plugins gives ``-i`` (the flag Locust users know; Locust
2.47 itself has none), per worker: every task a task set starts counts as one iteration
(nested task sets' tasks included, as locust-plugins counts ``TaskSet.execute_task``).
Once N have started, each user stops (``StopUser``, its ``on_stop`` runs) at the start of
its next task; the last one to stop sends the master :data:`DONE_MESSAGE`, and the master
ends the test when every worker has (:mod:`horde.master.iterations`). The limit is the
``iterations`` option of the spawn (``environment.parsed_options``, where locust-plugins
reads it too); the count starts again with each test.

Imports: the standard library and structlog.
"""

from __future__ import annotations

from typing import Any

import structlog

__all__ = ["DONE_MESSAGE", "IterationCount", "take_iteration"]

log = structlog.get_logger("horde.worker")

DONE_MESSAGE = "horde_iterations_done"
"""The custom message a worker sends the master when its last user stopped at the limit."""


class IterationCount:
    """One worker's task iterations in the current test."""

    __slots__ = ("done_sent", "started", "stopped")

    def __init__(self) -> None:
        self.started = 0
        self.stopped = 0
        """Users stopped at the limit (each stops there once)."""
        self.done_sent = False

    def reset(self) -> None:
        """Start counting again (a new test)."""
        self.started = self.stopped = 0
        self.done_sent = False


def _limit(environment: Any) -> int:
    """The ``iterations`` option as an int (0: no limit)."""
    value = environment.parsed_options.get("iterations") or 0
    return int(value)


def take_iteration(environment: Any) -> bool:
    """Count one task iteration about to start: False once the limit's iterations have all
    started, and the user must stop (the last user to stop tells the master)."""
    limit = _limit(environment)
    if not limit:
        return True
    count: IterationCount = environment.iterations
    if count.started < limit:
        count.started += 1
        return True
    if not count.stopped:
        log.info("iteration limit reached; users stop at the start of their next task", limit=limit)
    count.stopped += 1
    runner = environment.runner
    if runner is not None and not count.done_sent and count.stopped >= runner.user_count:
        count.done_sent = True
        log.info("the last user stopped at the iteration limit; telling the master")
        runner.send_message(DONE_MESSAGE)
    return False
