"""Assigns Locust's statistics settings as locustfiles do; tests/test_porting_stats.py runs
it under horde and, with Locust's imports, under Locust 2.47, and compares the CSV files."""

from horde import HttpUser, constant, stats, task

stats.PERCENTILES_TO_REPORT = [0.25, 0.5, 0.9, 0.999]
stats.PERCENTILES_TO_STATISTICS = [0.9]
stats.PERCENTILES_TO_CHART = [0.25, 0.75, 0.99]
stats.CSV_STATS_INTERVAL_SEC = 0.25


class Reader(HttpUser):
    """Reads two pages, twenty times a second."""

    wait_time = constant(0.05)

    @task
    def read(self) -> None:
        """GET /a, then /b."""
        self.client.get("/a")
        self.client.get("/b")
