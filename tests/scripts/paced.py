"""Pacing users whose task overruns its period (coordinated omission), and a plain user.

``Paced`` wants an iteration every 50 ms but each takes about 80 ms, so every iteration
after the first starts about 30 ms late: its corrected times are about 110 ms. ``Plain``
does not pace, so it has no corrected series.
"""

from horde import HttpUser, constant, constant_pacing, task


class Paced(HttpUser):
    wait_time = constant_pacing(0.05)

    @task
    def slow(self) -> None:
        self.client.get("/delay?ms=80", name="/paced")


class Plain(HttpUser):
    wait_time = constant(0.05)

    @task
    def fast(self) -> None:
        self.client.get("/fast")
