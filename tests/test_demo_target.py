"""The demo target's ``/count`` endpoint: what a test compares a run's total with."""

from __future__ import annotations

import json
from typing import Any

from horde.demo_target import DemoApp


def call(app: DemoApp, path: str) -> tuple[str, bytes]:
    """One GET through the WSGI app: its status line and body."""
    seen: list[str] = []

    def start_response(status: str, _headers: list[Any]) -> None:
        seen.append(status)

    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "QUERY_STRING": ""}
    body = b"".join(app(environ, start_response))
    return seen[0], body


def test_count_reports_every_request_but_its_own() -> None:
    """``/count`` reports the requests answered, failures and 404s included, not itself."""
    app = DemoApp()
    for path in ("/", "/status/500", "/nowhere", "/items/1"):
        call(app, path)
    status, body = call(app, "/count")
    assert status == "200 OK"
    assert json.loads(body) == {"served": 4}
    assert json.loads(call(app, "/count")[1]) == {"served": 4}
