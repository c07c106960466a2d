"""horde's built-in demo target: a small gevent WSGI app to point load at, on loopback.

Endpoints of different latencies and one that fails on purpose now and then:

- ``GET /`` and ``GET /fast``: answer at once.
- ``GET /slow``: 50 ms.  ``GET /delay?ms=N``: N milliseconds (0-10,000).
- ``GET /items/<id>``: a small JSON document.
- ``POST /login``: 200 for any form.
- ``GET /flaky``: every 10th request answers 500.
- ``GET /status/<code>``: answers with that status code.
- ``GET /count``: ``{"served": N}``, the requests answered so far (not counting ``/count``),
  so a test can compare a load generator's total with the target's own.
- ``GET /iterations``: every request so far that carried ``X-Horde-Iteration`` (an
  arrival-rate iteration's ``class:index``), as JSON ``[[arrival time (s, wall clock),
  "class:index"], ...]``, the most recent :data:`MAX_ITERATIONS` kept: a test counts
  iterations per second and repeated indices from it.

Imports: the standard library and gevent.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import gevent
from gevent.pywsgi import WSGIServer

from horde.master.wsgi import start_server

StartResponse = Callable[..., Any]
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
MAX_DELAY_MS = 10_000
FLAKY_EVERY = 10
MAX_ITERATIONS = 1_000_000


class DemoApp:
    """The WSGI application; a counter for ``/flaky`` and one of requests served."""

    def __init__(self) -> None:
        self._flaky = itertools.count(1)
        self.served = 0
        """Requests answered so far, ``/count`` excluded."""
        self.iterations: deque[tuple[float, str]] = deque(maxlen=MAX_ITERATIONS)
        """The latest requests that carried ``X-Horde-Iteration``: (wall time, its value)."""

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/count":
            body = json.dumps({"served": self.served}).encode()
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            start_response("200 OK", headers)
            return [body]
        self.served += 1
        iteration = environ.get("HTTP_X_HORDE_ITERATION")
        if iteration is not None:
            self.iterations.append((time.time(), iteration[:100]))
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            environ["wsgi.input"].read(min(length, 1 << 20))
        status, body, ctype = self._route(method, path, environ.get("QUERY_STRING", ""))
        headers = [("Content-Type", ctype), ("Content-Length", str(len(body)))]
        start_response(f"{status} {_REASONS.get(status, 'Status')}", headers)
        return [body]

    def _route(  # noqa: PLR0911 - a small router reads best as one chain of returns
        self, method: str, path: str, query: str
    ) -> tuple[int, bytes, str]:
        text = "text/plain"
        if path in ("/", "/fast"):
            return 200, b"ok\n", text
        if path == "/iterations":
            return 200, json.dumps(list(self.iterations)).encode(), "application/json"
        if path == "/slow":
            gevent.sleep(0.05)
            return 200, b"slow\n", text
        if path == "/delay":
            try:
                ms = int(parse_qs(query).get("ms", ["0"])[0])
            except ValueError:
                return 400, b"ms must be an integer\n", text
            gevent.sleep(min(max(ms, 0), MAX_DELAY_MS) / 1000)
            return 200, b"delayed\n", text
        if path.startswith("/items/"):
            item = path.rsplit("/", 1)[1]
            body = json.dumps({"id": item, "name": f"item {item}", "price": 9.99}).encode()
            return 200, body, "application/json"
        if path == "/login" and method == "POST":
            return 200, b"welcome\n", text
        if path == "/flaky":
            if next(self._flaky) % FLAKY_EVERY == 0:
                return 500, b"flaky failure\n", text
            return 200, b"fine\n", text
        if path.startswith("/status/"):
            code = path.rsplit("/", 1)[1]
            if code.isdigit() and 200 <= int(code) <= 599:
                return int(code), f"status {code}\n".encode(), text
        return 404, b"not found\n", text


def start_target(host: str = "127.0.0.1", port: int = 0) -> WSGIServer:
    """Start the demo target on ``host:port`` (0 picks a free port); returns the server."""
    return start_server(host, port, DemoApp(), error_log=None)
