"""HttpSession against a real gevent WSGI server: timing, failures, catch_response, reuse."""

from __future__ import annotations

import gzip
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.event
import pytest
from gevent.pywsgi import WSGIServer

import horde
from horde.worker.api.client import CatchResponseError, HTTPError, HttpSession, ResponseError
from horde.worker.api.environment import Environment
from horde.worker.api.events import Events
from horde.worker.pool import UserPool

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


class Target:
    """A small WSGI app with one route per behaviour under test."""

    def __init__(self) -> None:
        self.release = gevent.event.Event()  # /slow answers once this is set

    def __call__(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        path = environ["PATH_INFO"]
        status, headers, body = self.route(path, environ)
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    def route(self, path: str, environ: Environ) -> tuple[str, list[tuple[str, str]], bytes]:
        """Status, headers and body for ``path``."""
        plain = [("Content-Type", "text/plain; charset=utf-8")]
        fixed = {
            "/ok": ("200 OK", plain, b"hello"),
            "/redirect": ("302 Found", [("Location", "/ok")], b""),
            "/login": ("200 OK", [("Set-Cookie", "sid=abc123; Path=/")], b"in"),
            "/gzip": ("200 OK", [("Content-Encoding", "gzip")], gzip.compress(b"x" * 1000)),
        }
        if path in fixed:
            status, headers, body = fixed[path]
            return status, list(headers), body
        if path == "/port":
            return "200 OK", plain, str(environ["REMOTE_PORT"]).encode()
        if path == "/echo":
            return "200 OK", [("Content-Type", "application/json")], self.echo(environ)
        if path == "/slow":
            self.release.wait(5)
            return "200 OK", plain, b"late"
        return "404 Not Found", plain, b"no such page"

    @staticmethod
    def echo(environ: Environ) -> bytes:
        """The request's method, query, content type, body, cookie and auth, as JSON."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        echo = {
            "method": environ["REQUEST_METHOD"],
            "query": environ.get("QUERY_STRING", ""),
            "type": environ.get("CONTENT_TYPE", ""),
            "body": environ["wsgi.input"].read(length).decode(),
            "cookie": environ.get("HTTP_COOKIE", ""),
            "auth": environ.get("HTTP_AUTHORIZATION", ""),
        }
        return json.dumps(echo).encode()


@pytest.fixture
def target() -> Iterator[Target]:
    """The WSGI app behind the ``server`` fixture."""
    app = Target()
    yield app
    app.release.set()


def serve(app: Target) -> WSGIServer:
    """Start a WSGI server for ``app`` on a free loopback port."""
    server = WSGIServer(("127.0.0.1", 0), app, log=None, error_log=None)
    server.start()
    return server


@pytest.fixture
def base_url(target: Target) -> Iterator[str]:
    """The base URL of a running server for ``target``."""
    server = serve(target)
    yield f"http://127.0.0.1:{server.server_port}"
    target.release.set()
    server.stop(timeout=1)


@pytest.fixture
def recorded() -> list[dict[str, Any]]:
    """The request events fired by the ``session`` fixture."""
    return []


@pytest.fixture
def session(base_url: str, recorded: list[dict[str, Any]]) -> Iterator[HttpSession]:
    """A session on the test server whose request events land in ``recorded``."""
    events = Events()
    events.request.add_listener(lambda **kwargs: recorded.append(kwargs))
    client = HttpSession(base_url, events.request)
    yield client
    client.close()


def test_success_is_timed_and_recorded(session: HttpSession, recorded: list[dict[str, Any]]):
    """A 200 response fires one request event with time, length and no exception."""
    response = session.get("/ok")
    assert response.status_code == 200
    assert response.ok
    assert response.text == "hello"
    assert response.content == b"hello"
    assert str(response.headers["content-type"]).startswith("text/plain")
    [event] = recorded
    assert event["request_type"] == "GET"
    assert event["name"] == "/ok"
    assert event["exception"] is None
    assert event["response_length"] == 5
    assert isinstance(event["response_time"], float) and event["response_time"] > 0
    assert event["response"] is response
    assert event["url"].endswith("/ok")
    assert response.request_meta == event


def test_status_404_is_a_failure_with_an_http_error(
    session: HttpSession, recorded: list[dict[str, Any]]
) -> None:
    """A 404 is recorded as failed with Locust-like text, and get() does not raise."""
    response = session.get("/missing")
    assert response.status_code == 404
    assert not response.ok
    exception = recorded[0]["exception"]
    assert isinstance(exception, HTTPError)
    assert str(exception) == "404 Client Error: Not Found for url: /missing"
    with pytest.raises(HTTPError):
        response.raise_for_status()


def test_connection_refused_is_a_failure_with_status_zero() -> None:
    """A refused connection is recorded as failed with status 0 and never raises."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    events = Events()
    recorded: list[dict[str, Any]] = []
    events.request.add_listener(lambda **kwargs: recorded.append(kwargs))
    session = HttpSession(f"http://127.0.0.1:{port}", events.request, connection_timeout=2)
    response = session.get("/ok")
    assert response.status_code == 0
    assert isinstance(response.error, ConnectionRefusedError)
    assert recorded[0]["exception"] is response.error
    assert recorded[0]["response_length"] == 0
    with pytest.raises(ConnectionRefusedError):
        response.raise_for_status()


def test_timeout_is_a_failure_with_status_zero(
    session: HttpSession, recorded: list[dict[str, Any]]
) -> None:
    """A request that outlasts its ``timeout`` is recorded as a TimeoutError failure."""
    response = session.get("/slow", timeout=0.2)
    assert response.status_code == 0
    assert isinstance(recorded[0]["exception"], TimeoutError)


def test_catch_response_failure_marks_a_200_as_failed(
    session: HttpSession, recorded: list[dict[str, Any]]
) -> None:
    """``response.failure(msg)`` records a CatchResponseError, fired when the block exits."""
    with session.get("/ok", catch_response=True) as response:
        assert recorded == []
        response.failure("wrong body")
    exception = recorded[0]["exception"]
    assert isinstance(exception, CatchResponseError)
    assert str(exception) == "wrong body"


def test_catch_response_success_marks_a_404_as_successful(
    session: HttpSession, recorded: list[dict[str, Any]]
) -> None:
    """``response.success()`` records a 404 as successful."""
    with session.get("/missing", catch_response=True) as response:
        response.success()
    assert recorded[0]["exception"] is None


def test_catch_response_without_verdict_follows_the_status(
    session: HttpSession, recorded: list[dict[str, Any]]
) -> None:
    """Without success()/failure(), the status decides and ResponseError fails silently."""
    with session.get("/missing", catch_response=True):
        pass
    with session.get("/ok", catch_response=True):
        raise ResponseError("bad content")
    assert isinstance(recorded[0]["exception"], HTTPError)
    assert str(recorded[1]["exception"]) == "bad content"


def test_other_exception_in_catch_block_propagates_and_records_nothing(
    session: HttpSession, recorded: list[dict[str, Any]]
) -> None:
    """An unexpected exception in the block propagates and, as in Locust, leaves the
    request unrecorded; after failure() or success() the verdict is still recorded."""
    with pytest.raises(KeyError), session.get("/ok", catch_response=True):
        raise KeyError("field")
    assert recorded == []
    with pytest.raises(KeyError), session.get("/ok", catch_response=True) as response:
        response.failure("seen")
        raise KeyError("field")
    assert str(recorded[0]["exception"]) == "seen"


def test_verdict_methods_need_catch_response(session: HttpSession) -> None:
    """success()/failure() and with-blocks need catch_response=True, with a clear error."""
    response = session.get("/ok")
    with pytest.raises(RuntimeError, match="catch_response=True"):
        response.success()
    with pytest.raises(RuntimeError, match="catch_response=True"), response:
        pass


def test_name_groups_requests_and_default_name_is_path_and_query(
    session: HttpSession, recorded: list[dict[str, Any]]
) -> None:
    """``name`` overrides the recorded name; by default it is the path with its query."""
    session.get("/echo?id=1", name="/echo?id=[id]")
    session.get("/echo", params={"q": "x y"})
    with session.rename_request("renamed"):
        session.get("/ok")
    assert [event["name"] for event in recorded] == ["/echo?id=[id]", "/echo?q=x+y", "renamed"]


def test_keep_alive_reuses_one_connection(session: HttpSession) -> None:
    """Successive requests travel on the same TCP connection."""
    ports = {session.get("/port").text for _ in range(5)}
    assert len(ports) == 1


def test_bodies_json_form_and_session_headers_are_sent(session: HttpSession) -> None:
    """JSON and form bodies are encoded with their content types; auth is sent."""
    sent = session.post("/echo", json={"a": 1}, auth=("ann", "pw")).json()
    assert sent["method"] == "POST"
    assert sent["type"] == "application/json"
    assert json.loads(sent["body"]) == {"a": 1}
    assert sent["auth"].startswith("Basic ")
    form = session.put("/echo", data={"k": "v"}).json()
    assert form["type"] == "application/x-www-form-urlencoded"
    assert form["body"] == "k=v"


def test_redirects_are_followed_unless_disabled(
    session: HttpSession, recorded: list[dict[str, Any]]
) -> None:
    """A redirect is followed to its target under the original name, or returned as is."""
    followed = session.get("/redirect")
    assert followed.status_code == 200
    assert followed.url.endswith("/ok")
    assert recorded[0]["name"] == "/redirect"
    assert session.get("/redirect", allow_redirects=False).status_code == 302


def test_cookies_are_kept_across_requests(session: HttpSession) -> None:
    """A cookie set by the server is sent back on later requests."""
    session.get("/login")
    assert session.get("/echo").json()["cookie"] == "sid=abc123"


def test_gzip_body_is_decoded_and_length_counts_decoded_bytes(
    session: HttpSession, recorded: list[dict[str, Any]]
) -> None:
    """A gzip response is decompressed; the recorded length is that of the content."""
    response = session.get("/gzip")
    assert response.content == b"x" * 1000
    assert recorded[0]["response_length"] == 1000


def test_absolute_url_to_another_host_uses_its_own_connection(
    session: HttpSession, target: Target
) -> None:
    """An absolute URL reaches another server through a second pooled client."""
    other = serve(target)
    try:
        response = session.get(f"http://127.0.0.1:{other.server_port}/ok")
        session.get("/ok")
        assert response.status_code == 200
        assert len(session._clients) == 2
    finally:
        other.stop(timeout=1)


def test_failing_request_listener_never_breaks_the_caller(base_url: str) -> None:
    """A request listener that raises is logged; the request and other listeners go on."""
    events = Events()
    seen: list[str] = []

    def broken(**_: Any) -> None:
        raise RuntimeError("listener bug")

    events.request.add_listener(broken)
    events.request.add_listener(lambda name, **_: seen.append(name))
    session = HttpSession(base_url, events.request)
    assert session.get("/ok").status_code == 200
    assert seen == ["/ok"]
    session.close()


def test_relative_url_without_a_host_is_rejected() -> None:
    """A relative URL with no base URL raises a ValueError naming the URL."""
    session = HttpSession(None, Events().request)
    with pytest.raises(ValueError, match="'/ok'"):
        session.get("/ok")


def test_http_users_in_a_pool_record_requests_against_the_spawn_host(base_url: str) -> None:
    """HttpUsers spawned with a host send their requests there and record them."""
    events = Events()
    names: list[str] = []
    events.request.add_listener(lambda name, **_: names.append(name))

    class Visitor(horde.HttpUser):
        @horde.task
        def visit(self) -> None:
            self.client.get("/ok")

    pool = UserPool(Environment(events=events), {"Visitor": Visitor})
    pool.apply({"Visitor": 2}, host=base_url)
    with gevent.Timeout(3, AssertionError("no requests recorded")):
        while len(names) < 10:
            gevent.sleep(0.001)
    pool.stop_all(0)
    assert set(names) == {"/ok"}
    assert pool.greenlet_count == 0


def test_an_invalid_method_is_raised_not_recorded(
    session: HttpSession, recorded: list[dict[str, Any]]
) -> None:
    """An empty or malformed HTTP method raises ValueError before anything is sent, and no
    request is recorded, as Locust's clients do."""
    for method in ("", "GE T", "GET\\r\\n"):
        with pytest.raises(ValueError, match="invalid HTTP method"):
            session.request(method, "/ok")
    assert recorded == []
