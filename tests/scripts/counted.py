"""A script whose workers count their own requests and users, for exact-total checks.

Each process prints ``REQUESTS_MADE=<n>`` (every ``request`` event it fired since it
started) when a run stops and when it quits, and ``LIVE_USERS=<n> AT=<unix time> REQUESTS=<n>``
whenever a user starts or stops (processes on one machine share the clock, so the times of two
workers' lines can be compared).
"""

import time
from typing import Any

from horde import HttpUser, constant, events, task

made = {"requests": 0, "live": 0}


@events.request.add_listener
def _count_request(**_: Any) -> None:
    made["requests"] += 1


def _print_requests(**_: Any) -> None:
    print(f"REQUESTS_MADE={made['requests']}", flush=True)


events.test_stop.add_listener(_print_requests)
events.quitting.add_listener(_print_requests)


def _live(change: int) -> None:
    made["live"] += change
    print(f"LIVE_USERS={made['live']} AT={time.time():.6f} REQUESTS={made['requests']}", flush=True)


class Counted(HttpUser):
    wait_time = constant(0.05)

    def on_start(self) -> None:
        _live(+1)

    def on_stop(self) -> None:
        _live(-1)

    @task
    def fast(self) -> None:
        self.client.get("/fast")
