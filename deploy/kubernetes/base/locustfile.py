"""The example script the manifests ship: replace it with yours (kustomization.yaml names it).

Point it at your system with HORDE_HOST in master.yaml (or --host), or a ``host`` below.
"""

from horde import HttpUser, between, task


class Visitor(HttpUser):
    """Reads the home page and an item, as a first smoke test of a deployment."""

    wait_time = between(0.5, 1.5)

    @task(3)
    def home(self) -> None:
        self.client.get("/")

    @task(1)
    def item(self) -> None:
        self.client.get("/items/1", name="/items/[id]")
