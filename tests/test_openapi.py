"""The OpenAPI document: valid, in step with the Flask routes, and honoured by the server.

Three layers: pure checks of :func:`horde.master.openapi.document`; schemathesis against the
app in process (a fake worker is registered, so valid ``/swarm`` bodies must be accepted
and invalid ones refused); and schemathesis over HTTP against a real, authenticated
``horde master`` with no worker connected, so no load is generated.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
import pytest
import requests
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import load_all_checks, not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.pytest.lazy import get_all_tests
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from horde.master import openapi
from horde.master.config import MasterSettings
from horde.master.coordinator import Coordinator, RunState
from horde.master.dispatch import UserClassSpec
from horde.master.http import WebContext, create_app
from horde.master.loops import MasterLoops
from horde.master.transport import RouterTransport
from horde.protocol import messages as m
from tests.support import Processes, processes, start_master, wait_for

USER, PASSWORD = "user", "secret"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "trace"}
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
FUZZ = settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
"""Per operation: bounded, and the same cases every run (raise max_examples to explore)."""


class Steps:
    """A load shape that asks for one user forever."""

    def tick(self) -> tuple[int, float]:
        """One user at one per second."""
        return (1, 1.0)


def _app(base_path: str = "", worker: bool = False) -> tuple[Flask, Coordinator]:
    """An app on a coordinator whose loops never start (``worker``: one fake worker ready)."""
    coordinator = Coordinator(
        MasterSettings(host="http://127.0.0.1:9", web_base_path=base_path, max_users=100),
        [UserClassSpec("A", 1, 0), UserClassSpec("B", 1, 0)],
        lambda identity, message: None,
        shapes={"Steps": Steps},
    )
    transport = RouterTransport("tcp://127.0.0.1:0", max_frame=1024)
    loops = MasterLoops(coordinator, [transport], clock=lambda: 100.0)
    if worker:
        coordinator.handle("h_1", m.ClientReady("h_1"), 100.0)
    return create_app(loops, WebContext(locustfile="basic.py")), coordinator


def _routes(app: Flask, base_path: str) -> set[tuple[str, str]]:
    """(method, OpenAPI path) for every rule the app serves, HEAD and OPTIONS aside."""
    found = set()
    for rule in app.url_map.iter_rules():
        path = rule.rule.removeprefix(base_path) or "/"
        path = path.replace("<path:path>", "{path}")
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                found.add((method.lower(), path))
    return found


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in doc["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


@pytest.mark.parametrize("base_path", ["", "/horde"])
def test_document_is_valid_openapi(base_path: str) -> None:
    """The document passes the OpenAPI 3.0 meta-schema and serves under the base path."""
    doc = openapi.document(base_path)
    schema = schemathesis.openapi.from_dict(doc)
    schema.validate()
    assert doc["openapi"] == "3.0.3"
    assert doc["servers"] == [{"url": base_path or "/"}]
    assert all(isinstance(result, Ok) for result in schema.get_all_operations())


def test_every_reference_resolves() -> None:
    """Each $ref names a schema or response the document defines."""
    doc = openapi.document(user_classes=["A"], shape_classes=["Steps"], max_users=5)
    for ref in set(_refs(doc)):
        _, section, kind, name = ref.split("/")
        assert (section, kind) in (("components", "schemas"), ("components", "responses"))
        assert name in doc["components"][kind], ref


@pytest.mark.parametrize("base_path", ["", "/horde"])
def test_document_and_flask_routes_match(base_path: str) -> None:
    """Every route the app registers is documented, and every documented route exists."""
    app, _ = _app(base_path)
    assert _routes(app, base_path) == _documented(openapi.document(base_path))


def test_served_document_describes_the_same_routes() -> None:
    """GET /openapi.json serves a valid document of this master's base path."""
    app, _ = _app("/horde")
    served = app.test_client().get("/horde/openapi.json").json
    assert served is not None and served["servers"] == [{"url": "/horde"}]
    schemathesis.openapi.from_dict(served).validate()
    assert _documented(served) == _documented(openapi.document("/horde"))


def test_every_operation_declares_auth_and_its_401() -> None:
    """Basic and Bearer are the global schemes and every operation documents the 401."""
    doc = openapi.document()
    assert doc["security"] == [{"basicAuth": []}, {"bearerAuth": []}]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["basicAuth"] == {"type": "http", "scheme": "basic"}
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    for item in doc["paths"].values():
        for operation in item.values():
            assert "401" in operation["responses"]


def test_known_names_and_bounds_narrow_the_swarm_fields() -> None:
    """Given the script's classes, shapes and --max-users, /swarm's schema names them."""
    doc = openapi.document(user_classes=["A", "B"], shape_classes=["Steps"], max_users=7)
    body = doc["components"]["schemas"]["SwarmRequest"]["properties"]
    assert body["user_count"]["maximum"] == 7
    assert body["shape_class"]["enum"] == ["Steps", None]
    assert "(A|B)" in body["user_classes"]["anyOf"][0]["items"]["pattern"]
    without_shapes = openapi.document(shape_classes=[])["components"]["schemas"]
    assert "shape_class" not in without_shapes["SwarmRequest"]["properties"]


def test_the_swarm_schema_lists_exactly_the_fields_the_server_reads() -> None:
    """Every field parse_swarm understands is documented, and nothing else is."""
    from horde.master.forms import RUN_OPTIONS, SWARM_FIELDS

    doc = openapi.document(user_classes=["A"], shape_classes=["Steps"])
    for name in ("SwarmRequest", "SwarmForm"):
        properties = doc["components"]["schemas"][name]["properties"]
        assert sorted(properties) == sorted([*SWARM_FIELDS, *RUN_OPTIONS]), name


GOOD_FORMS = [
    {"user_count": 20, "spawn_rate": 10, "host": "http://127.0.0.1:8080"},
    {"user_count": 0, "host": "https://user@example.test:65535/base?q=1#top"},
    {"user_count": 5, "host": "http://127.0.0.1:37217", "run_time": "1h20m"},
    {"user_count": 5, "run_time": 90, "user_classes": ["A", "B"], "tags": ["a", "b"]},
    {"user_count": 5, "run_time": "", "host": "", "user_classes": "A,B", "stop_timeout": 0},
    {"shape_class": "Steps"},
    {"arrival_rate": 500},
    {"stages": "1m:50"},
    {"user_count": 5, "arrival_rate": "0.5", "user_classes": ["A"]},
    {"user_count": 5, "stages": "30s:100,2m:500,30s:0"},
    {"user_count": 5, "stages": "10s:0,1m:20"},
    {"user_count": 5, "arrival_rate": "", "stages": "30s:100"},
]
BAD_FORMS = [
    {"spawn_rate": 1},
    {"arrival_rate": ""},
    {"user_count": -1},
    {"user_count": 1.5},
    {"user_count": 101},
    {"user_count": 1, "spawn_rate": 0},
    {"user_count": 1, "host": "ftp://x"},
    {"user_count": 1, "host": "javascript:alert(1)"},
    {"user_count": 1, "host": "http://x:65536"},
    {"user_count": 1, "run_time": "abc"},
    {"user_count": 1, "run_time": "0"},
    {"user_count": 1, "user_classes": ["Missing"]},
    {"user_count": 1, "shape_class": "Nope"},
    {"user_count": 1, "profile": "two\nlines"},
    {"user_count": 1, "csv": "/tmp/x"},
    {"user_count": 1, "arrival_rate": 0},
    {"user_count": 1, "arrival_rate": "fast"},
    {"user_count": 1, "arrival_rate": 2_000_000},
    {"user_count": 1, "stages": "30s:0"},
    {"user_count": 1, "stages": "30s"},
    {"user_count": 1, "arrival_rate": 5, "stages": "30s:100"},
    {"user_count": 1, "arrival_rate": 5, "shape_class": "Steps"},
]


def _form_validator() -> jsonschema_rs.Draft4Validator:
    doc = openapi.document(user_classes=["A", "B"], shape_classes=["Steps"], max_users=100)
    return jsonschema_rs.Draft4Validator(doc["components"]["schemas"]["SwarmForm"])


@pytest.mark.parametrize("form", GOOD_FORMS)
def test_swarm_schema_accepts_real_bodies(form: dict[str, Any]) -> None:
    """Bodies the README shows and real hosts (five-digit ports) are valid per the schema."""
    assert _form_validator().is_valid(form)


@pytest.mark.parametrize("form", BAD_FORMS)
def test_swarm_schema_refuses_bad_bodies(form: dict[str, Any]) -> None:
    """Each field the server refuses is invalid per the schema too."""
    assert not _form_validator().is_valid(form)


# --- schemathesis in process: valid /swarm bodies are accepted, invalid ones refused -----


@dataclass
class InProcess:
    """The app under test and its coordinator, whose one worker never really runs."""

    app: Flask
    coordinator: Coordinator

    def settle(self) -> None:
        """Stop a run and let the fake worker finish the stop, so each case meets a master
        ready to swarm (a run refuses a new arrival rate until it stops: a 400 for valid
        data; changing a running test is tested in test_web_api)."""
        if self.coordinator.state in (RunState.SPAWNING, RunState.RUNNING):
            self.coordinator.stop(100.0)
        if self.coordinator.state is RunState.STOPPING:
            self.coordinator.handle("h_1", m.ClientStopped("h_1"), 100.0)
            self.coordinator.handle("h_1", m.ClientReady("h_1"), 100.0)


@pytest.fixture
def in_process() -> InProcess:
    app, coordinator = _app(worker=True)
    return InProcess(app, coordinator)


def run_schema(schema: Any, test: Callable[[schemathesis.Case], None]) -> set[tuple[str, str]]:
    """Run ``test`` on cases of every operation of ``schema``; fail listing each failure.

    This is what ``schemathesis.pytest.from_fixture(...).parametrize()`` does, without its
    subtest reporting (which needs pytest < 9.2); returns the (method, path) of each
    operation run.
    """
    load_all_checks()
    failures, ran = [], set()
    for result in get_all_tests(schema=schema, test_func=test, settings=FUZZ, given_kwargs=None):
        if not isinstance(result, Ok):
            failures.append(f"invalid operation: {result.err()}")
            continue
        operation, hypothesis_test = result.ok()
        ran.add((operation.method.lower(), operation.path))
        try:
            hypothesis_test()
        except (Exception, BaseExceptionGroup) as exc:  # reported below, with the operation
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
    return ran


def test_app_honours_its_document(in_process: InProcess) -> None:
    """With a worker ready, every operation answers as documented; good data is accepted."""
    names = [spec.name for spec in in_process.coordinator.user_classes]
    doc = openapi.document(user_classes=names, shape_classes=["Steps"], max_users=100)
    schema = schemathesis.openapi.from_dict(doc)
    schema.app = in_process.app

    def test(case: schemathesis.Case) -> None:
        in_process.settle()
        case.call_and_validate(checks=[*CHECKS, positive_data_acceptance, unsupported_method])

    assert run_schema(schema, test) == _documented(doc)


# --- schemathesis over HTTP against a real authenticated master, no worker ------------------


@dataclass
class LiveMaster:
    """A running ``horde master`` under ``/horde`` with Basic auth and no worker."""

    procs: Processes
    process: subprocess.Popen[str]
    url: str


@pytest.fixture(scope="module")
def live_master() -> Iterator[LiveMaster]:
    with processes() as procs:
        master = start_master(
            procs,
            "basic.py",
            "--web-auth",
            f"{USER}:{PASSWORD}",
            "--web-base-path",
            "/horde",
            "--host",
            "http://127.0.0.1:9",
            wait=False,
        )
        process = master.proc
        url = f"{master.web}/horde"

        def up() -> bool:
            response = requests.get(f"{url}/worker-count", headers=AUTH, timeout=2)
            return response.status_code == 200

        wait_for(up, 20, "the master's web API")
        yield LiveMaster(procs, process, url)
        assert process.poll() is None, procs.output(process)[-3000:]


@pytest.mark.process
@pytest.mark.no_cover  # the master is another process; tracing schemathesis here costs 11 s
def test_live_master_honours_its_document(live_master: LiveMaster) -> None:
    """Over HTTP with auth, every operation answers as documented and demands credentials."""
    url = f"{live_master.url}/openapi.json"
    schema = schemathesis.openapi.from_url(url, headers=AUTH, timeout=10)
    assert schema.raw_schema["servers"] == [{"url": "/horde"}]
    sent: list[str] = []

    def test(case: schemathesis.Case) -> None:
        response = case.call_and_validate(
            headers=AUTH, timeout=10, checks=[*CHECKS, ignored_auth, unsupported_method]
        )
        sent.append(str(response.request.url))
        started = (case.method.upper(), case.path, response.status_code) == ("POST", "/swarm", 200)
        assert not started, "with no worker connected, no swarm may start"

    # Schemathesis leaves out the operation that served the schema it loaded.
    assert run_schema(schema, test) == _documented(schema.raw_schema) - {("get", "/openapi.json")}
    assert sent and all(u.startswith(f"{live_master.url}/") for u in sent), sent[:3]
