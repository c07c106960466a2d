"""horde: idle users, one empty task then a 600 s wait (bench/user_memory.py)."""

from horde import HttpUser, constant, task


class Idle(HttpUser):
    """Does nothing, then waits."""

    wait_time = constant(600)

    @task
    def idle(self) -> None:
        """Nothing."""
