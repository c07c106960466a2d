"""One class for --arrival-rate runs: each iteration is one GET of the target's root."""

from horde import HttpUser, task


class Api(HttpUser):
    """Driven by the fleet-wide rate the run gives (``--arrival-rate``, ``arrival_rate``)."""

    @task
    def root(self) -> None:
        """One request per iteration."""
        self.client.get("/")
