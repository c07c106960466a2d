"""Locust FastHttpUser: no wait, one GET of / (bench/worker_throughput.py)."""

from locust import FastHttpUser, constant, task


class Get(FastHttpUser):
    """Fetches / as fast as it can."""

    wait_time = constant(0)

    @task
    def get(self) -> None:
        """One GET of /."""
        self.client.get("/")
