"""Two requests per task iteration, no wait; tests/test_porting_iterations.py runs it with
``-i`` under horde and, with Locust's imports and locust-plugins (which offers Locust's
``-i``), under Locust 2.47, and compares the requests made."""

import os

from horde import HttpUser, constant, task

if os.environ.get("WITH_LOCUST_PLUGINS"):
    import locust_plugins  # noqa: F401 - adds -i/--iterations to Locust


class Looper(HttpUser):
    """GET /a then /b, as fast as it can."""

    wait_time = constant(0)

    @task
    def both(self) -> None:
        """One iteration: two requests."""
        self.client.get("/a")
        self.client.get("/b")
