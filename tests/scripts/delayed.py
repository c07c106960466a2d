"""Fixed server-side delay versus no delay: the end-to-end median check."""

from horde import HttpUser, constant, task


class Probe(HttpUser):
    """Requests the target's undelayed page: the loopback overhead."""

    wait_time = constant(0.01)

    @task
    def fast(self) -> None:
        self.client.get("/fast")


class Delayed(HttpUser):
    """Requests a page the target answers after a fixed 40 ms."""

    wait_time = constant(0.01)

    @task
    def delayed(self) -> None:
        self.client.get("/delay?ms=40", name="/delay")
