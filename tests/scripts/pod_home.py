"""The pod tests' load: users that GET / every 50 ms (the demo target counts each one)."""

from horde import HttpUser, constant, task


class Home(HttpUser):
    """Asks the home page again and again."""

    wait_time = constant(0.05)

    @task
    def home(self) -> None:
        self.client.get("/")
