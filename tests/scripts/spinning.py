"""A user that never waits: no ``wait_time``, a task that does no I/O (issue 17).

Every 100 iterations fire one ``request`` event, so the stats reports count iterations.
"""

from horde import User, events, task

PER_EVENT = 100
"""Iterations per request event."""


class Spinner(User):
    def on_start(self) -> None:
        self.iterations = 0

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
