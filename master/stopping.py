"""Stop tracking: which workers a stopping test still waits for, and until when.

Responsibility: after ``stop``, the test is stopped once every worker asked has answered
``client_stopped``, gone missing or left, or once the deadline has passed. Pure: the
caller says which workers are still there and what time it is.

Imports: the standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


class StopTracker:
    """The workers a stop waits for, and its deadline."""

    def __init__(self) -> None:
        self.awaiting: set[str] = set()
        self.deadline: float | None = None

    def begin(self, workers: Iterable[str], deadline: float) -> None:
        """Wait for ``workers`` to stop, until ``deadline``."""
        self.awaiting = set(workers)
        self.deadline = deadline

    def forget(self, worker_id: str) -> bool:
        """Stop waiting for ``worker_id``; return whether it was awaited."""
        if worker_id in self.awaiting:
            self.awaiting.discard(worker_id)
            return True
        return False

    def settle(self, present: Callable[[str], bool], now: float) -> list[str] | None:
        """Whether the stop is over: None while it waits, else the workers it gave up on.

        Workers no longer ``present`` (missing or gone) are not waited for. The list is
        empty when every worker stopped, and names those still running at the deadline.
        """
        self.awaiting = {worker for worker in self.awaiting if present(worker)}
        timed_out = self.deadline is not None and now >= self.deadline
        if self.awaiting and not timed_out:
            return None
        given_up = sorted(self.awaiting)
        self.awaiting = set()
        return given_up
