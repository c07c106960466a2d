"""The scenario ``horde demo`` runs against the demo target: browse, look at items, log in.

Also a readable example of a horde user script.
"""

from horde import HttpUser, between, task


class Browser(HttpUser):
    """Reads pages; the flaky one fails now and then."""

    weight = 3
    wait_time = between(0.05, 0.2)

    @task(5)
    def home(self) -> None:
        self.client.get("/")

    @task(3)
    def item(self) -> None:
        for item_id in (1, 2, 3):
            self.client.get(f"/items/{item_id}", name="/items/[id]")

    @task(1)
    def flaky(self) -> None:
        self.client.get("/flaky")

    @task(1)
    def slow(self) -> None:
        self.client.get("/slow")


class Shopper(HttpUser):
    """Logs in once, then checks items."""

    weight = 1
    wait_time = between(0.1, 0.3)

    def on_start(self) -> None:
        self.client.post("/login", data={"user": "demo", "password": "demo"})

    @task
    def check(self) -> None:
        with self.client.get("/items/42", name="/items/[id]", catch_response=True) as resp:
            if resp.status_code == 200 and b"price" not in resp.content:
                resp.failure("no price in the item")
