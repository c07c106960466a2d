"""A user that never waits: no ``wait_time``, a task that does no I/O (issue 17).

Every 100 iterations fire one ``request`` event, so the stats reports count iterations. Unless
a tracer runs already (coverage does, in ``make test``), each user installs a trivial one,
as a profiler or a coverage tool would: it slows every line, which makes the GIL starvation
that once silenced the link thread certain rather than likely.
"""

import sys
from typing import Any

from horde import User, events, task

PER_EVENT = 100
"""Iterations per request event."""


def _trace(frame: Any, event: str, arg: Any) -> Any:
    return _trace


class Spinner(User):
    def on_start(self) -> None:
        self.iterations = 0
        if sys.gettrace() is None:
            sys.settrace(_trace)

    @task
    def spin(self) -> None:
        self.iterations += 1
        if self.iterations % PER_EVENT == 0:
            events.request.fire(
                request_type="SPIN",
                name=f"{PER_EVENT} iterations",
                response_time=0.0,
                response_length=0,
                exception=None,
                context={},
            )
