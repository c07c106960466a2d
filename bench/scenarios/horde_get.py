"""horde: 50 users, no wait, one GET of / (bench/worker_throughput.py)."""

from horde import HttpUser, constant, task


class Get(HttpUser):
    """Fetches / as fast as it can."""

    wait_time = constant(0)

    @task
    def get(self) -> None:
        """One GET of /."""
        self.client.get("/")
