"""Locust's web API on a real horde master, side by side with a real Locust 2.47 master.

One module-scoped rig: the demo target; a horde master with two horde workers; a Locust
master with one Locust worker running the same scenario; and two idle authenticated horde
masters (Basic under ``/horde``, and Bearer). A client written for Locust's API drives a
test on both masters; the tests then compare what each answers, check every route's status,
content type and schema, the CSV downloads, authentication and the refusal of bad input.
"""

from __future__ import annotations

import base64
import csv
import io
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis

from horde.master import openapi
from tests.stats_samples import LOCUST_STATS_KEYS
from tests.support import VENV_BIN, Processes, free_port, processes, wait_for

pytestmark = pytest.mark.process

TIMEOUT = 5.0
USERS = 4
TOKEN = "t0ken-for-tests"
BASIC = ("user", "secret")

SCENARIO = """
class Reader(HttpUser):
    wait_time = constant(0.05)

    @task(8)
    def home(self) -> None:
        self.client.get("/fast")

    @task(1)
    def broken(self) -> None:
        self.client.get("/status/500")

    @task(1)
    def divide(self) -> None:
        print(1 / 0)
"""
"""One class: mostly successes, some HTTP failures and some task exceptions."""

# Locust 2.47's keys, from locust/web.py request_stats(): the tests compare both masters
# with each other and with these, so a change on either side shows.
LOCUST_REPORT_KEYS = LOCUST_STATS_KEYS | {"workers", "worker_count", "state", "user_count"}
LOCUST_WORKER_KEYS = {"id", "state", "user_count", "cpu_usage", "memory_usage"}
HORDE_WORKER_EXTRAS = {"index", "loop_lag", "horde", "requests"}
DOWNLOAD = re.compile(
    r"^attachment;\s*filename=Locust_(?P<ts>\d{4}-\d\d-\d\d-\d\dh\d\d)_(?P<file>[^_]+\.py)"
    r"_(?P<host>\S+)_(?P<kind>requests|failures|exceptions|requests_full_history)\.csv$"
)


@dataclass
class Web:
    """One master's web API."""

    url: str
    headers: dict[str, str]

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET ``path`` with this master's credentials."""
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """POST to ``path`` with this master's credentials."""
        return self.call("POST", path, **kwargs)

    def call(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        """Send ``method`` to ``path`` with this master's credentials and ``headers``."""
        return requests.request(
            method,
            self.url + path,
            headers={**self.headers, **(headers or {})},
            timeout=TIMEOUT,
            **kwargs,
        )

    def report(self) -> dict[str, Any]:
        """``GET /stats/requests``."""
        answer = self.get("/stats/requests")
        answer.raise_for_status()
        document: dict[str, Any] = answer.json()
        return document

    def worker_count_is(self, count: int) -> bool:
        """Whether ``GET /worker-count`` says ``count``."""
        return bool(self.get("/worker-count").json() == {"worker_count": count})


@dataclass
class Rig:
    """Every process of the module and how to reach it."""

    procs: Processes
    target: str
    horde: Web
    locust: Web
    basic: Web
    bearer: Web


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class Ports:
    """Distinct free loopback ports."""

    def __init__(self) -> None:
        self.taken: set[int] = set()

    def __call__(self) -> int:
        """A free port not handed out before."""
        port = free_port()
        while port in self.taken:
            port = free_port()
        self.taken.add(port)
        return port


def _workers_ready(web: Web, count: int) -> bool:
    workers = web.report()["workers"]
    return len([w for w in workers if w["state"] == "ready"]) == count


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("web_api")
    script = tmp / "mixed.py"
    script.write_text("from horde import HttpUser, constant, task\n" + SCENARIO)
    locust_script = tmp / "locust_mixed.py"
    locust_script.write_text("from locust import HttpUser, constant, task\n" + SCENARIO)
    locust = shutil.which("locust", path=str(VENV_BIN)) or "locust"
    locust_env = {"LOCUST_SKIP_MONKEY_PATCH": ""}
    port = Ports()
    with processes() as procs:
        target_port = port()
        target_proc = procs.horde("target", "--port", str(target_port))
        target = f"http://127.0.0.1:{target_port}"
        zmq, web = port(), port()
        master = procs.horde(
            "master", "-f", str(script), "--bind", f"tcp://127.0.0.1:{zmq}",
            "--web-port", str(web), "--host", target, "--max-users", "100",
            "--csv", str(tmp / "run"), "--csv-full-history",
        )  # fmt: skip
        for _ in range(2):
            procs.horde(
                "worker", "-f", str(script), "--master", f"127.0.0.1:{zmq}",
                "--stats-interval", "1",
            )  # fmt: skip
        lzmq, lweb = port(), port()
        procs.start(
            locust, "-f", str(locust_script), "--master", "--master-bind-host", "127.0.0.1",
            "--master-bind-port", str(lzmq), "--web-host", "127.0.0.1", "--web-port", str(lweb),
            "-H", target, env=locust_env,
        )  # fmt: skip
        procs.start(
            locust, "-f", str(locust_script), "--worker", "--master-host", "127.0.0.1",
            "--master-port", str(lzmq), env=locust_env,
        )  # fmt: skip
        auth_webs = []
        for auth in (
            ["--web-auth", ":".join(BASIC), "--web-base-path", "/horde"],
            ["--web-auth-token", TOKEN, "--max-users", "100"],
        ):
            auth_webs.append(port())
            procs.horde(
                "master", "-f", str(script), "--bind", f"tcp://127.0.0.1:{port()}",
                "--web-port", str(auth_webs[-1]), *auth,
            )  # fmt: skip
        rig = Rig(
            procs=procs,
            target=target,
            horde=Web(f"http://127.0.0.1:{web}", {}),
            locust=Web(f"http://127.0.0.1:{lweb}", {}),
            basic=Web(f"http://127.0.0.1:{auth_webs[0]}/horde", _basic(*BASIC)),
            bearer=Web(f"http://127.0.0.1:{auth_webs[1]}", {"Authorization": f"Bearer {TOKEN}"}),
        )
        wait_for(lambda: "listening" in procs.output(target_proc), 30, "the demo target")
        wait_for(lambda: _workers_ready(rig.horde, 2), 30, "two horde workers")
        wait_for(lambda: _workers_ready(rig.locust, 1), 30, "the Locust worker")
        wait_for(lambda: rig.basic.get("/worker-count").ok, 30, "the Basic auth master")
        wait_for(lambda: rig.bearer.get("/worker-count").ok, 30, "the Bearer auth master")
        yield rig
        assert master.poll() is None, procs.output(master)[-3000:]


@dataclass
class Run:
    """What a Locust-API client saw while running one test on a master."""

    swarm: dict[str, Any]
    running: dict[str, Any]
    tasks: dict[str, Any]
    exceptions: dict[str, Any]
    stop: dict[str, Any]
    stopped: dict[str, Any]
    answers: list[requests.Response]


def run_like_a_locust_client(web: Web, target: str) -> Run:
    """Swarm with a form, wait for users, requests, errors and exceptions, then stop."""
    answers: list[requests.Response] = []

    def call(method: str, path: str, **kwargs: Any) -> Any:
        answer = web.call(method, path, **kwargs)
        assert answer.status_code == 200, answer.text
        answers.append(answer)
        return answer.json()

    swarm = call("POST", "/swarm", data={"user_count": USERS, "spawn_rate": 20, "host": target})

    def busy() -> dict[str, Any] | None:
        report = call("GET", "/stats/requests")
        names = {e["name"]: e["num_requests"] for e in report["stats"]}
        ready = report["user_count"] == USERS and names.get("/fast", 0) > 0 and report["errors"]
        return report if ready and report["state"] == "running" else None

    def stopped() -> dict[str, Any] | None:
        report = call("GET", "/stats/requests")
        return report if report["state"] == "stopped" else None

    def exceptions() -> dict[str, Any] | None:
        document = call("GET", "/exceptions")
        return document if document["exceptions"] else None

    running = wait_for(busy, 30, f"{USERS} users, requests and errors on {web.url}")
    raised = wait_for(exceptions, 30, f"task exceptions on {web.url}")
    tasks = call("GET", "/tasks")
    stop = call("POST", "/stop")
    done = wait_for(stopped, 30, f"{web.url} stopped")
    return Run(swarm, running, tasks, raised, stop, done, answers)


@pytest.fixture(scope="module")
def runs(rig: Rig) -> tuple[Run, Run]:
    """The same test run by the same client on horde's master, then on Locust's."""
    return run_like_a_locust_client(rig.horde, rig.target), run_like_a_locust_client(
        rig.locust, rig.target
    )


# --- (a) a client written for Locust's API ------------------------------------------------


def test_swarm_and_stop_answer_as_locust_does(rig: Rig, runs: tuple[Run, Run]) -> None:
    """/swarm and /stop answer a form with exactly Locust's bodies."""
    horde, locust = runs
    assert (
        horde.swarm
        == locust.swarm
        == {
            "success": True,
            "message": "Swarming started",
            "host": rig.target,
        }
    )
    assert horde.stop == locust.stop == {"success": True, "message": "Test stopped"}


def test_stats_document_has_locusts_keys(runs: tuple[Run, Run]) -> None:
    """/stats/requests has Locust's keys at every level; workers add only horde's four."""
    horde, locust = runs
    for ours, theirs in ((horde.running, locust.running), (horde.stopped, locust.stopped)):
        assert set(ours) == set(theirs) == LOCUST_REPORT_KEYS
        assert {tuple(sorted(e)) for e in ours["stats"]} == {
            tuple(sorted(e)) for e in theirs["stats"]
        }
        assert set(ours["current_response_time_percentiles"]) == set(
            theirs["current_response_time_percentiles"]
        )
        assert {tuple(sorted(e)) for e in ours["errors"]} == {
            tuple(sorted(e)) for e in theirs["errors"]
        }
        (locust_worker,) = theirs["workers"]
        assert set(locust_worker) == LOCUST_WORKER_KEYS
        for worker in ours["workers"]:
            assert set(worker) == LOCUST_WORKER_KEYS | HORDE_WORKER_EXTRAS
    assert horde.running["stats"][-1]["name"] == locust.running["stats"][-1]["name"] == "Aggregated"
    assert horde.running["stats"][-1]["method"] == locust.running["stats"][-1]["method"] == ""


def test_every_answer_during_the_run_matches_the_document(runs: tuple[Run, Run]) -> None:
    """Each answer horde gave the client while running conforms to /openapi.json's schemas."""
    horde, _ = runs
    schema = schemathesis.openapi.from_dict(openapi.document())
    for answer in horde.answers:
        path = answer.request.path_url
        schema[path][str(answer.request.method)].validate_response(answer)
    assert len(horde.answers) > 4


def test_run_figures_mean_what_locusts_mean(runs: tuple[Run, Run]) -> None:
    """Users, states, worker counts and the failing entry agree with Locust's run."""
    horde, locust = runs
    assert horde.running["user_count"] == locust.running["user_count"] == USERS
    assert sorted(w["user_count"] for w in horde.running["workers"]) == [2, 2]
    assert horde.running["worker_count"] == 2 and locust.running["worker_count"] == 1
    assert horde.stopped["user_count"] == locust.stopped["user_count"] == 0
    for run in runs:
        (error,) = [e for e in run.running["errors"] if e["name"] == "/status/500"]
        assert error["method"] == "GET" and error["occurrences"] > 0
        assert "500" in error["error"]


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested document as {"a/b/c": leaf}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}/"))
        else:
            flat[prefix + key] = value
    return flat


def test_exceptions_and_tasks_match_locust(runs: tuple[Run, Run]) -> None:
    """/exceptions rows carry Locust's keys, and /tasks ratios equal Locust's."""
    horde, locust = runs
    assert set(horde.exceptions) == set(locust.exceptions) == {"exceptions"}
    ours, theirs = horde.exceptions["exceptions"][0], locust.exceptions["exceptions"][0]
    assert set(ours) == set(theirs) == {"count", "msg", "traceback", "nodes"}
    assert "print(1 / 0)" in ours["traceback"] and "print(1 / 0)" in theirs["traceback"]
    # Locust sends str(exception); horde's worker sends repr(exception) (worker/agent.py).
    assert theirs["msg"] == "division by zero" and theirs["msg"] in ours["msg"]
    assert _flat(horde.tasks) == pytest.approx(_flat(locust.tasks))
    assert horde.tasks["per_class"]["Reader"]["tasks"]["home"]["ratio"] == pytest.approx(0.8)


def test_helper_documents_have_locusts_keys(rig: Rig, runs: tuple[Run, Run]) -> None:
    """/worker-count and /logs answer in Locust's shapes, counting as Locust counts."""
    for web, workers in ((rig.horde, 2), (rig.locust, 1)):
        wait_for(partial(web.worker_count_is, workers), 10, f"{workers} workers on {web.url}")
        assert web.report()["worker_count"] == workers
        logs = web.get("/logs").json()
        assert set(logs) == {"master", "workers"} and isinstance(logs["master"], list)


# --- (b) every route: status, content type, schema, downloads -------------------------------


def _expected_routes() -> list[tuple[str, str, str]]:
    """(method, path, media type) of each documented 200 answer; /assets with a real file."""
    doc = openapi.document()
    routes = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if path in ("/swarm", "/stop", "/stats/reset"):
                continue  # control actions: exercised by the runs and the last test
            (media_type,) = operation["responses"]["200"]["content"]
            routes.append((method, path.replace("{path}", "app.js"), media_type))
    return routes


@pytest.mark.parametrize(("method", "path", "media_type"), _expected_routes())
def test_every_route_answers_its_documented_type(
    rig: Rig, runs: tuple[Run, Run], method: str, path: str, media_type: str
) -> None:
    """Each route answers 200 with its documented media type and a body its schema allows."""
    answer = rig.horde.get(path)
    assert answer.status_code == 200, answer.text[:500]
    mimetype = answer.headers["Content-Type"].split(";")[0]
    assert media_type in ("*/*", mimetype), answer.headers["Content-Type"]
    schema = schemathesis.openapi.from_dict(openapi.document())
    template = "/assets/{path}" if path.startswith("/assets/") else path
    schema[template][method.upper()].validate_response(answer)


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/stats/requests/csv", "requests"),
        ("/stats/failures/csv", "failures"),
        ("/exceptions/csv", "exceptions"),
    ],
)
def test_csv_downloads_match_locusts(rig: Rig, runs: tuple[Run, Run], path: str, kind: str) -> None:
    """Each CSV has Locust's header and Locust's attachment name pattern."""
    ours, theirs = rig.horde.get(path), rig.locust.get(path)
    assert ours.status_code == theirs.status_code == 200
    assert _csv_rows(ours.text)[0] == _csv_rows(theirs.text)[0]
    ours_name = DOWNLOAD.match(ours.headers["Content-Disposition"])
    theirs_name = re.match(
        r"^attachment;filename=Locust_(?P<ts>\S+?)_(?P<file>locust_mixed\.py)_(?P<host>.+)"
        rf"_(?P<kind>{kind})\.csv$",
        theirs.headers["Content-Disposition"],
    )
    assert ours_name and theirs_name, (ours.headers, theirs.headers)
    assert (ours_name["kind"], ours_name["file"]) == (kind, "mixed.py")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d-\d\dh\d\d", theirs_name["ts"])
    # Locust puts the host verbatim; horde makes it safe for a file name (':' and '/' -> '_').
    assert ours_name["host"] == re.sub(r"[^A-Za-z0-9._~+-]", "_", theirs_name["host"])


def test_csv_headers_equal_locusts_writer(rig: Rig, runs: tuple[Run, Run], tmp_path: Path) -> None:
    """The requests, failures, exceptions and full-history headers equal Locust's StatsCSV's."""
    from locust.stats import PERCENTILES_TO_REPORT, StatsCSV, StatsCSVFileWriter

    locust_csv = StatsCSV(None, PERCENTILES_TO_REPORT)  # type: ignore[arg-type]
    history = StatsCSVFileWriter(None, PERCENTILES_TO_REPORT, str(tmp_path / "l"), True)  # type: ignore[arg-type]
    history.close_files()
    for path, header in (
        ("/stats/requests/csv", locust_csv.requests_csv_columns),
        ("/stats/failures/csv", locust_csv.failures_columns),
        ("/exceptions/csv", locust_csv.exceptions_columns),
        ("/stats/requests_full_history/csv", history.stats_history_csv_columns),
    ):
        rows = _csv_rows(rig.horde.get(path).text)
        assert rows[0] == header, path
        assert len(rows) > 1, f"{path} has no data rows after a run"
    failures = _csv_rows(rig.horde.get("/stats/failures/csv").text)
    assert any(row[:2] == ["GET", "/status/500"] for row in failures[1:])


def test_downloads_are_attachments(rig: Rig, runs: tuple[Run, Run]) -> None:
    """The full-history CSV and the report download are attachments named as Locust names them."""
    history = rig.horde.get("/stats/requests_full_history/csv")
    assert DOWNLOAD.match(history.headers["Content-Disposition"]), history.headers
    report = rig.horde.get("/stats/report", params={"download": "1"})
    disposition = report.headers["Content-Disposition"]
    assert re.match(r"^attachment;\s*filename=Locust_\S+_mixed\.py_\S+\.html$", disposition)
    assert "Content-Disposition" not in rig.horde.get("/stats/report").headers


def test_full_history_is_404_without_the_flag(rig: Rig) -> None:
    """A master without --csv-full-history answers the history CSV with a JSON 404."""
    answer = rig.bearer.get("/stats/requests_full_history/csv")
    assert answer.status_code == 404 and answer.json()["success"] is False


# --- (c) authentication --------------------------------------------------------------------


def _every_route() -> list[tuple[str, str]]:
    """(method, path) of every documented operation, plus an unknown path."""
    doc = openapi.document()
    routes = [
        (method.upper(), path.replace("{path}", "app.js"))
        for path, item in doc["paths"].items()
        for method in item
    ]
    return [*routes, ("GET", "/nope")]


def _denied(answer: requests.Response, scheme: str) -> None:
    assert answer.status_code == 401, (answer.request.method, answer.url, answer.status_code)
    assert answer.headers["WWW-Authenticate"] == f'{scheme} realm="horde"'
    assert answer.json() == {"success": False, "message": "authentication required"}


@pytest.mark.parametrize(("method", "path"), _every_route())
def test_basic_auth_guards_every_route(rig: Rig, method: str, path: str) -> None:
    """Without or with wrong credentials every route is 401; the right ones get through."""
    url = rig.basic.url + path
    wrong = [
        {},
        _basic("user", "wrong"),
        _basic("other", "secret"),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": f"Bearer {TOKEN}"},
    ]
    for headers in wrong:
        answer = requests.request(method, url, headers=headers, timeout=TIMEOUT)
        _denied(answer, "Basic")
    answer = requests.request(method, url, headers=rig.basic.headers, timeout=TIMEOUT)
    expected = {"/nope": 404, "/stats/requests_full_history/csv": 404, "/swarm": 400}
    assert answer.status_code == expected.get(path, 200), answer.text[:300]


def test_base_path_is_required_and_guarded(rig: Rig) -> None:
    """Outside the base path, a request is refused without credentials and 404 with them."""
    root = rig.basic.url.removesuffix("/horde")
    _denied(requests.get(f"{root}/stats/requests", timeout=TIMEOUT), "Basic")
    answer = requests.get(f"{root}/stats/requests", headers=rig.basic.headers, timeout=TIMEOUT)
    assert answer.status_code == 404
    assert rig.basic.get("/stats/requests").json()["state"] == "ready"


def test_bearer_token_guards_every_route(rig: Rig) -> None:
    """With --web-auth-token the Bearer token gets through and anything else is 401."""
    for method, path in _every_route():
        url = rig.bearer.url + path
        for headers in ({}, {"Authorization": "Bearer wrong"}, _basic("user", TOKEN)):
            _denied(requests.request(method, url, headers=headers, timeout=TIMEOUT), "Bearer")
        answer = requests.request(method, url, headers=rig.bearer.headers, timeout=TIMEOUT)
        assert answer.status_code != 401, (method, path)


# --- (d) bad input, on the idle master (no worker: a body accepted by mistake starts nothing,
# and its "no worker is connected" message would not name the field) -----------------------

BAD_FORMS = [
    ({"user_count": "-1"}, "user_count"),
    ({"user_count": "1.5"}, "user_count"),
    ({"user_count": "many"}, "user_count"),
    ({"user_count": "101"}, "user_count"),
    ({"spawn_rate": "0"}, "spawn_rate"),
    ({"spawn_rate": "-1"}, "spawn_rate"),
    ({"spawn_rate": "nan"}, "spawn_rate"),
    ({"spawn_rate": "x"}, "spawn_rate"),
    ({"host": "ftp://x"}, "host"),
    ({"host": "javascript:alert(1)"}, "host"),
    ({"host": "http://"}, "host"),
    ({"run_time": "abc"}, "run_time"),
    ({"run_time": "0"}, "run_time"),
    ({"csv": "/tmp/x"}, "csv"),
    ({"user_classes": "Missing"}, "user_classes"),
    ({"shape_class": "Nope"}, "shape_class"),
    ({"stop_timeout": "-1"}, "stop_timeout"),
    ({"profile": "two\nlines"}, "profile"),
    ({"tags": [f"t{i}" for i in range(101)]}, "tags"),
]


@pytest.mark.parametrize(("fields", "name"), BAD_FORMS)
def test_bad_swarm_forms_are_refused_naming_the_field(
    rig: Rig, fields: dict[str, Any], name: str
) -> None:
    """Each bad form field gets 400 with Locust's failure body naming the field."""
    form = {"user_count": 1, "spawn_rate": 1, **fields}
    answer = rig.bearer.post("/swarm", data=form)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert set(body) == {"success", "message", "host"}
    assert body["success"] is False and name in body["message"], body


@pytest.mark.parametrize(
    ("body", "name"),
    [
        (b"[1, 2]", "body"),
        (b'"users"', "body"),
        (b"{not json", "body"),
        (b'{"user_count": true}', "user_count"),
        (b'{"user_count": 1, "spawn_rate": "fast"}', "spawn_rate"),
        (b'{"user_count": 1, "tags": [1]}', "tags"),
        (b'{"user_count": ["5"]}', "user_count"),
        (b'{"user_count": 1, "run_time": []}', "run_time"),
        (b'{"user_count": 1, "spawn_rate": [2]}', "spawn_rate"),
    ],
)
def test_bad_swarm_json_is_refused_naming_the_field(rig: Rig, body: bytes, name: str) -> None:
    """A JSON body that is not an object, not JSON, or holds a wrong type gets 400."""
    headers = {"Content-Type": "application/json"}
    answer = rig.bearer.post("/swarm", data=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["success"] is False and name in answer.json()["message"]


def test_nothing_started_after_bad_input(rig: Rig) -> None:
    """After every refused /swarm the idle master is still ready, with no users and no run."""
    report = rig.bearer.report()
    assert report["state"] == "ready" and report["user_count"] == 0
    assert report["stats"][-1]["num_requests"] == 0


def test_unknown_route_is_404_and_wrong_method_405(rig: Rig) -> None:
    """An unknown route is a JSON 404; a wrong method a JSON 405 listing the allowed ones."""
    missing = rig.horde.get("/no/such/route")
    assert missing.status_code == 404
    assert missing.json() == {"success": False, "message": "not found", "host": rig.target}
    for method, path, allowed in (
        ("GET", "/swarm", {"POST"}),
        ("DELETE", "/stop", {"GET", "POST"}),
        ("PUT", "/stats/requests", {"GET"}),
    ):
        answer = requests.request(method, rig.horde.url + path, timeout=TIMEOUT)
        assert answer.status_code == 405
        assert answer.json()["success"] is False
        allow = {m.strip() for m in answer.headers.get("Allow", "").split(",") if m.strip()}
        assert allowed <= allow <= allowed | {"HEAD", "OPTIONS"}, (path, answer.headers)


def test_stats_reset_answers_as_locust_and_clears(rig: Rig, runs: tuple[Run, Run]) -> None:
    """POST /stats/reset answers Locust's "ok" and empties the stats (run last: it clears)."""
    reset = rig.horde.post("/stats/reset")
    assert (reset.status_code, reset.text) == (200, rig.locust.post("/stats/reset").text)
    assert reset.headers["Content-Type"].startswith("text/html")  # as Locust
    report = rig.horde.report()
    assert report["stats"][-1]["num_requests"] == 0 and report["errors"] == []
    assert rig.horde.get("/exceptions").json() == {"exceptions": []}
