"""Each user makes exactly REQUESTS_PER_USER requests and then stops: totals are known."""

from horde import HttpUser, StopUser, constant, task

REQUESTS_PER_USER = 25


class FixedRequests(HttpUser):
    wait_time = constant(0.01)

    def on_start(self) -> None:
        self.made = 0

    @task
    def hit(self) -> None:
        if self.made >= REQUESTS_PER_USER:
            raise StopUser()
        self.made += 1
        self.client.get("/fast")
