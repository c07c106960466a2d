"""A failing scenario for the pod tests: every request answers 500."""

from horde import HttpUser, constant, task


class Failing(HttpUser):
    """Asks a page that always fails."""

    wait_time = constant(0.1)

    @task
    def broken(self) -> None:
        self.client.get("/status/500")
