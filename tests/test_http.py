"""The HTTP shim's parsing and answers, through Flask's test client on a real coordinator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from horde.master.config import MasterSettings
from horde.master.coordinator import Coordinator, SwarmRequest
from horde.master.dispatch import UserClassSpec
from horde.master.http import RENDER_SLICE, WebContext, create_app
from horde.master.loops import MasterLoops
from horde.master.registry import WorkerRecord, WorkerState
from horde.master.snapshot import MasterSnapshot
from horde.master.transport import RouterTransport
from horde.master.view import requests_report, worker_rows, worker_rows_json
from horde.protocol import messages as m


@pytest.fixture
def client() -> tuple[FlaskClient, Coordinator]:
    sent: list[Any] = []
    coordinator = Coordinator(
        MasterSettings(host="http://127.0.0.1:9"),
        [UserClassSpec("A", 1, 0)],
        lambda i, msg: sent.append(msg),
    )
    transport = RouterTransport("tcp://127.0.0.1:0", max_frame=1024)
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


def test_a_swarm_on_a_script_with_one_shape_runs_that_shape() -> None:
    """As in Locust, the script's only shape takes a swarm that names none (users ignored)."""

    class Steps:
        def tick(self) -> tuple[int, float] | None:
            return (3, 10.0)

    coordinator = Coordinator(
        MasterSettings(host="http://127.0.0.1:9"),
        [UserClassSpec("A", 1, 0)],
        lambda i, msg: None,
        shapes={"Steps": Steps},
    )
    transport = RouterTransport("tcp://127.0.0.1:0", max_frame=1024)
    loops = MasterLoops(coordinator, [transport], clock=lambda: 100.0)  # never started
    context = WebContext(shape_names=["Steps"], default_shape="Steps")
    http = create_app(loops, context).test_client()
    coordinator.handle("h_1", m.ClientReady("h_1"), 100.0)
    answer = http.post("/swarm", data={"user_count": "4", "spawn_rate": "2"})
    assert answer.status_code == 200, answer.json
    assert answer.json["message"] == "Swarming started using shape class 'Steps'"
    assert coordinator.shape is not None


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


def _app(settings: MasterSettings, context: WebContext | None = None) -> FlaskClient:
    coordinator = Coordinator(settings, [UserClassSpec("A", 1, 0)], lambda i, msg: None)
    transport = RouterTransport("tcp://127.0.0.1:0", max_frame=1024)
    loops = MasterLoops(coordinator, [transport], clock=lambda: 100.0)
    return create_app(loops, context).test_client()


def test_every_route_lives_under_the_base_path() -> None:
    """With a base path, routes answer under it and not at the root; /base redirects."""
    http = _app(MasterSettings(web_base_path="/horde"))
    assert http.get("/horde/stats/requests").status_code == 200
    assert http.get("/stats/requests").status_code == 404
    assert http.get("/horde/").status_code == 200
    assert http.get("/horde").status_code in (301, 308)
    assert http.get("/horde/assets/app.js").status_code == 200
    assert http.get("/horde/assets/../http.py").status_code == 404


def test_tasks_logs_history_and_ui_config() -> None:
    """The helper documents carry Locust's keys (/tasks, /logs) and the dashboard's."""

    class A:
        tasks: list[object] = []

    context = WebContext(
        locustfile="basic.py",
        user_classes=[A],
        shape_names=["Steps"],
        version="9.9",
        log_lines=lambda: ["a line"],
    )
    http = _app(MasterSettings(host="http://127.0.0.1:9"), context)
    assert http.get("/tasks").json == {
        "per_class": {"A": {"ratio": 0.0, "tasks": {}}},
        "total": {"A": {"ratio": 0.0, "tasks": {}}},
    }
    assert http.get("/logs").json == {"master": ["a line"], "workers": {}}
    assert http.get("/stats/history").json == {"history": []}
    config = http.get("/ui-config").json
    assert config["user_classes"] == ["A"] and config["shape_classes"] == ["Steps"]
    assert config["locustfile"] == "basic.py" and config["host"] == "http://127.0.0.1:9"


def test_downloads_are_attachments_with_locusts_names() -> None:
    """CSV downloads name the file as Locust does; history CSV is 404 unless enabled."""
    http = _app(MasterSettings(host="http://127.0.0.1:9"), WebContext(locustfile="basic.py"))
    for route, kind in (
        ("/stats/requests/csv", "requests"),
        ("/stats/failures/csv", "failures"),
        ("/exceptions/csv", "exceptions"),
    ):
        answer = http.get(route)
        assert answer.status_code == 200 and answer.mimetype == "text/csv"
        disposition = answer.headers["Content-Disposition"]
        assert disposition.startswith("attachment;filename=Locust_")
        assert disposition.endswith(f"_basic.py_http___127.0.0.1_9_{kind}.csv")
    assert http.get("/stats/requests_full_history/csv").status_code == 404
    report = http.get("/stats/report?download=1")
    assert report.status_code == 200 and "attachment" in report.headers["Content-Disposition"]
    assert http.get("/metrics").status_code == 200
    assert http.get("/openapi.json").json["openapi"].startswith("3.")


def count_renders(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The times /stats/requests is rendered from now on (the shim's report is counted)."""
    import horde.master.http as http_module

    renders: list[float] = []
    original = http_module.requests_report

    def counting(snapshot: MasterSnapshot, **how: Any) -> dict[str, Any]:
        renders.append(snapshot.run.now)
        return original(snapshot, **how)

    monkeypatch.setattr(http_module, "requests_report", counting)
    return renders


def test_stats_requests_cost_is_bounded_with_many_entries_and_pollers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """2,000 entries give 500 rows plus Aggregated; 100 polls in one cache window render once."""
    from horde.worker.stats import RequestRecorder

    coordinator = Coordinator(MasterSettings(), [UserClassSpec("A", 1, 0)], lambda i, msg: None)
    coordinator.handle("h_1", m.ClientReady("h_1"), 99.0)
    coordinator.start(SwarmRequest(1, 1.0), 99.0)
    recorder = RequestRecorder()
    for i in range(2000):
        recorder.record("GET", f"/item/{i:04d}", 1.0, 10, None, 99.0)
    delta = recorder.take_horde_delta(
        run_id=coordinator.run_id, epoch=0, seq=1, now=99.5, user_classes_count={}, user_count=1
    )
    coordinator.handle("h_1", m.HordeStats("h_1", delta), 99.5)
    renders = count_renders(monkeypatch)
    transport = RouterTransport("tcp://127.0.0.1:0", max_frame=1024)
    loops = MasterLoops(coordinator, [transport], clock=lambda: 100.0)
    http = create_app(loops).test_client()
    answers = [http.get("/stats/requests").json for _ in range(100)]
    assert len(renders) == 1
    rows = answers[-1]["stats"]
    assert len(rows) == 501 and rows[-1]["name"] == "Aggregated"
    assert rows[-1]["num_requests"] == 2000 and rows[0]["name"] == "/item/0000"


def test_stats_requests_renders_many_workers_in_slices_as_one_document(
    client: tuple[FlaskClient, Coordinator],
) -> None:
    """With more workers than one render slice, the body is the report's exact JSON."""
    http, coordinator = client
    for k in range(2 * RENDER_SLICE + 7):
        coordinator.handle(f"h_{k}", m.ClientReady(f"h_{k}"), 100.0)
    answer = http.get("/stats/requests")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    expected = json.loads(json.dumps(requests_report(coordinator.snapshot(100.0))))
    assert answer.json == expected
    assert [w["id"] for w in answer.json["workers"]] == [
        r.worker_id for r in coordinator.registry.all()
    ]
    assert len(answer.json["workers"]) == 2 * RENDER_SLICE + 7


def test_pollers_during_a_render_share_it(
    client: tuple[FlaskClient, Coordinator], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests that arrive while the report renders (it yields) do not render it again."""
    import gevent

    http, coordinator = client
    for k in range(3 * RENDER_SLICE):
        coordinator.handle(f"h_{k}", m.ClientReady(f"h_{k}"), 100.0)
    renders = count_renders(monkeypatch)
    pollers = [gevent.spawn(http.get, "/stats/requests") for _ in range(5)]
    gevent.joinall(pollers, timeout=30, raise_error=True)
    answers = [p.value for p in pollers]
    assert len(renders) == 1
    assert all(a.status_code == 200 and a.json == answers[0].json for a in answers)
    assert len(answers[0].json["workers"]) == 3 * RENDER_SLICE


def test_worker_rows_are_written_as_json_dumps_writes_them() -> None:
    """The hand-written rows equal json.dumps' text, escapes and number forms included."""
    records = [
        WorkerRecord("host_a", 0, WorkerState.RUNNING, 1.0, 1.0, 12.345678901, 52_000_000, 7),
        WorkerRecord("h\u00fc_\u2028", 1, WorkerState.MISSING, 1.0, 1.0, 1e300, loop_lag=0.25),
        WorkerRecord('q"uote\\back', 2, WorkerState.READY, 1.0, 1.0, 0.1, is_horde=True),
        WorkerRecord("ctl\x01\x7f\ttab", 3, WorkerState.STOPPED, 1.0, 1.0, 2, loop_lag=1e-7),
        WorkerRecord("", 4, WorkerState.SPAWNING, 1.0, 1.0, -0.0, 0, 0, is_horde=True),
    ]
    requests = {"host_a": 3, "": 12}
    expected = json.dumps(worker_rows(records, requests), separators=(",", ":"))[1:-1]
    assert worker_rows_json(records, requests) == expected
    assert worker_rows_json([], requests) == ""
