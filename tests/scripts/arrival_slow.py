"""An arrival-rate class of its own (a class attribute): 100 iterations/s of a 100 ms page."""

from horde import HttpUser, task


class Slow(HttpUser):
    """100 iterations per second across the fleet, each waiting 100 ms for its answer."""

    arrival_rate = 100

    @task
    def slow(self) -> None:
        """One slow request per iteration."""
        self.client.get("/delay?ms=100", name="/delay")
