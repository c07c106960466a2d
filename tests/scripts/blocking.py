"""A script whose task blocks the whole gevent loop for 5 s (as badly written user code does)."""

from gevent.monkey import get_original

from horde import User, constant, task

real_sleep = get_original("time", "sleep")


class Blocker(User):
    wait_time = constant(30)

    @task
    def block(self) -> None:
        real_sleep(5)
