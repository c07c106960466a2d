"""A FastHttpUser locustfile with Locust's imports: params, names, rest, rest_, catch_response
and files (tests/test_porting_http.py runs it under Locust and, imports rewritten, horde)."""

from locust import FastHttpUser, constant, task
from locust.contrib.fasthttp import RestResponseContextManager


class Api(FastHttpUser):
    wait_time = constant(0.2)

    @task
    def flow(self) -> None:
        self.client.get("/items", params={"page": 2})
        self.client.get("/items/1", name="/items/[id]")
        with self.rest("POST", "/orders", json={"sku": 1}) as resp:
            check: RestResponseContextManager = resp
            if check.js["echo"] != {"sku": 1}:
                resp.failure("the order was not echoed")
        with self.rest_("GET", "/orders") as resp:
            assert resp.js["ok"], "not ok,"
        with self.client.get("/missing", catch_response=True) as resp:
            if resp.status_code == 404:
                resp.success()
        self.client.post("/upload", files={"f": ("a.txt", b"abc", "text/plain")})
