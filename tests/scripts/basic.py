"""A plain horde script: one user class, one GET, a short wait."""

from horde import HttpUser, constant, task


class Reader(HttpUser):
    wait_time = constant(0.05)

    @task
    def home(self) -> None:
        self.client.get("/fast")
