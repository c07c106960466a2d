"""A script with a load shape: 2 users for 2 s, 4 users of class Reader for 2 s, then stop."""

from horde import HttpUser, LoadTestShape, constant, task


class Reader(HttpUser):
    wait_time = constant(0.05)

    @task
    def home(self) -> None:
        self.client.get("/fast")


class Writer(HttpUser):
    wait_time = constant(0.05)

    @task
    def login(self) -> None:
        self.client.post("/login", data={"user": "a"})


class Steps(LoadTestShape):
    def tick(self):
        run_time = self.get_run_time()
        if run_time < 2:
            return (2, 10)
        if run_time < 4:
            return (4, 10, [Reader])
        return None
