"""A script whose task raises, to see exceptions reported with their tracebacks."""

from horde import User, constant, task


class Raiser(User):
    wait_time = constant(0.2)

    @task
    def divide(self) -> None:
        print(1 / 0)
