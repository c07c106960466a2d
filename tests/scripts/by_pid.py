"""Requests go to /w/<worker pid>, so a counting target and the master's entries tell
each worker's requests apart."""

import os

from horde import HttpUser, constant, task


class ByPid(HttpUser):
    wait_time = constant(0.05)

    @task
    def hit(self) -> None:
        self.client.get(f"/w/{os.getpid()}")
