"""A script whose test_start listener blocks the process's gevent loop for $STALL_SECONDS
(default 0), where $STALL_SECONDS is set: the master's, in the health tests."""

import os

from gevent.monkey import get_original

from horde import HttpUser, constant, events, task

real_sleep = get_original("time", "sleep")


class Reader(HttpUser):
    wait_time = constant(0.1)

    @task
    def home(self) -> None:
        self.client.get("/fast")


@events.test_start.add_listener
def stall(**_kwargs: object) -> None:
    """Block the whole loop (as a listener doing blocking I/O would)."""
    real_sleep(float(os.environ.get("STALL_SECONDS", "0")))
