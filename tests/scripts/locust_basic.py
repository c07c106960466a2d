"""The same scenario written for Locust, for a real `locust --worker` joining a horde master."""

from locust import FastHttpUser, constant, task


class Reader(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def home(self) -> None:
        self.client.get("/fast")
