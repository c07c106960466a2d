"""The HTTP shim's parsing and answers, through Flask's test client on a real coordinator."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from horde.master.config import MasterSettings
from horde.master.coordinator import Coordinator
from horde.master.dispatch import UserClassSpec
from horde.master.http import create_app
from horde.master.loops import MasterLoops
from horde.master.transport import RouterTransport
from horde.protocol import messages as m


@pytest.fixture
def client() -> tuple[FlaskClient, Coordinator]:
    sent: list[Any] = []
    coordinator = Coordinator(
        MasterSettings(host="http://127.0.0.1:9"),
        [UserClassSpec("A", 1, 0)],
        lambda i, msg: sent.append(msg),
    )
    transport = RouterTransport(
        "tcp://127.0.0.1:0", max_frame=1024, heartbeat_ivl=1, heartbeat_timeout=5
    )
    loops = MasterLoops(coordinator, [transport], clock=lambda: 100.0)  # never started
    return create_app(loops).test_client(), coordinator


def test_swarm_accepts_form_and_json(client: tuple[FlaskClient, Coordinator]) -> None:
    """A form or a JSON body starts the test and answers Locust's keys."""
    http, coordinator = client
    coordinator.handle("h_1", m.ClientReady("h_1"), 100.0)
    answer = http.post("/swarm", data={"user_count": "4", "spawn_rate": "2", "run_time": "1m"})
    assert answer.status_code == 200
    assert answer.json == {
        "success": True,
        "message": "Swarming started",
        "host": "http://127.0.0.1:9",
        "run_time": 60.0,
    }
    answer = http.post("/swarm", json={"user_count": 6, "spawn_rate": 3, "host": "https://x.test"})
    assert answer.status_code == 200 and answer.json["host"] == "https://x.test"
    assert coordinator.target_total == 6


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"spawn_rate": "1"}, "user_count"),
        ({"user_count": "1.5"}, "user_count"),
        ({"user_count": "nan"}, "user_count"),
        ({"user_count": "3", "spawn_rate": "-1"}, "spawn_rate"),
        ({"user_count": "3", "spawn_rate": "inf"}, "spawn_rate"),
        ({"user_count": "3", "host": "javascript:alert(1)"}, "host"),
        ({"user_count": "3", "run_time": "1x"}, "run_time"),
        ({"user_count": "-3"}, "user_count"),
    ],
)
def test_bad_fields_get_400_naming_the_field(
    client: tuple[FlaskClient, Coordinator], body: dict[str, str], field: str
) -> None:
    """Each bad field is refused with 400 and Locust's failure body naming it."""
    http, coordinator = client
    coordinator.handle("h_1", m.ClientReady("h_1"), 100.0)
    answer = http.post("/swarm", data=body)
    assert answer.status_code == 400
    assert answer.json["success"] is False and field in answer.json["message"]
    assert answer.json["host"] == "http://127.0.0.1:9"


def test_broken_bodies_and_unknown_routes_are_clean_errors(
    client: tuple[FlaskClient, Coordinator],
) -> None:
    """Malformed JSON is a 400, an unknown route a 404, a wrong method a 405: never a 500."""
    http, _ = client
    answer = http.post("/swarm", data=b"{not json", content_type="application/json")
    assert answer.status_code == 400
    answer = http.post("/swarm", data=b"[1, 2]", content_type="application/json")
    assert answer.status_code == 400
    assert http.get("/nope").status_code == 404
    assert http.get("/swarm").status_code == 405
    assert http.post("/swarm", data={"user_count": "1"}).status_code == 400  # no workers


def test_stop_reset_and_reports(client: tuple[FlaskClient, Coordinator]) -> None:
    """Stop and reset answer with GET and POST; the reports carry Locust's keys."""
    http, _ = client
    for method in (http.get, http.post):
        assert method("/stop").json == {"success": True, "message": "Test stopped"}
        answer = method("/stats/reset")
        assert (answer.status_code, answer.data) == (200, b"ok")
    report = http.get("/stats/requests").json
    assert {"stats", "errors", "workers", "worker_count", "state", "user_count"} <= set(report)
    assert report["stats"][-1]["name"] == "Aggregated"
    assert http.get("/worker-count").json == {"worker_count": 0}
    assert http.get("/exceptions").json == {"exceptions": []}
