"""Locust's response_validations pattern: a request listener added in ``init`` raises
RescheduleTask on a failed request, ending the task early; tests/test_porting_events.py
runs it under horde and Locust and compares the requests and failures recorded."""

from horde import HttpUser, constant, events, task
from horde.exception import RescheduleTask


class Checker(HttpUser):
    """Fails its first request on purpose; the second is never made."""

    wait_time = constant(0.1)

    @task
    def flow(self) -> None:
        """A failing step, then a step the listener's RescheduleTask skips."""
        with self.client.get("/first", catch_response=True) as response:
            response.failure("orderId missing")
        self.client.get("/second")


@events.init.add_listener
def register_request_listener(environment, **kwargs):  # type: ignore[no-untyped-def]
    """Add the listener that ends a task at its first failed request."""

    @events.request.add_listener
    def request(exception, **kwargs):  # type: ignore[no-untyped-def]
        if exception:
            raise RescheduleTask()
